"""Size limits for inbound mail (PROTOCOLS.md P4)."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What `parse_email` accepts; a message over any limit is refused.

    - `max_bytes`: the whole raw message.
    - `max_parts`: every MIME entity counts, the top-level one and the
      containers (multipart/*, message/rfc822) included, and so does each
      field block of a delivery report.
    - `max_depth`: how deep an entity may sit; the top-level message is at
      depth 0, its parts at 1, and so on.
    - `max_header_bytes` / `max_header_count`: the top-level header block
      (raw bytes up to the blank line, and its number of fields); the field
      count also applies to each MIME part's own headers.
    - `max_param_field_bytes` / `max_params`: any Content-Type or
      Content-Disposition field, in any part (the standard parser reads
      parameters in time proportional to size x count).
    - `max_html_bytes`: the HTML body (all HTML parts together, decoded).
      Larger HTML is not sanitised or shown: it is kept as an attachment
      and the text comes from the plain-text part or a crude tag strip.
      So is HTML nested or escaped beyond what sanitising can do quickly
      (see `connectors.email.sanitize.too_costly`).
    """

    max_bytes: int = 25 * MIB
    max_parts: int = 200
    max_depth: int = 10
    max_header_bytes: int = 256 * 1024
    max_header_count: int = 1000
    max_param_field_bytes: int = 16 * 1024
    max_params: int = 100
    max_html_bytes: int = 1 * MIB


DEFAULT_LIMITS = Limits()
