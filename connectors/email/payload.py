"""A leaf part's body as bytes, undoing its Content-Transfer-Encoding.

Tolerant where the standard library is not: base64 with junk characters,
missing padding or a truncated last group is decoded as far as it goes
(with a warning) instead of coming back still encoded.
"""

from __future__ import annotations

import base64
import binascii
import re
from email.message import Message

from connectors.email import headers as h

_B64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/\s]")


def children(part: Message) -> list[Message] | None:
    """The sub-parts of a multipart or message/* part; None for a leaf.

    Only containers are read through `get_payload()`: on a leaf it decodes
    8-bit text with the declared charset (losing bytes, and raising
    TypeError on an RFC 2231 `charset*=`)."""
    if not part.is_multipart():
        return None
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, Message)]


def raw_payload(part: Message) -> bytes:
    """A leaf's body exactly as sent (transfer encoding not undone). Read
    from where the parser stored it, as the email package's own generator
    does, since `get_payload()` would decode 8-bit bytes (see `children`)."""
    payload = getattr(part, "_payload", None)
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        return b""
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return payload.encode("utf-8", "surrogateescape")


def decode_payload(part: Message) -> tuple[bytes, str | None]:
    """The decoded body of a non-multipart part, and a warning if it had
    to be repaired."""
    if part.is_multipart():
        return b"", None
    raw = raw_payload(part)
    cte = (h.field(part, "content-transfer-encoding") or "").lower()
    cte = cte.split(";", 1)[0].strip().strip('"')
    if cte == "base64":
        return _base64(raw)
    if cte == "quoted-printable":
        return binascii.a2b_qp(raw), None
    if cte in {"x-uuencode", "uuencode", "uue", "x-uue"}:
        try:
            decoded = part.get_payload(decode=True)
        except (ValueError, TypeError, LookupError):
            decoded = None
        return (decoded if isinstance(decoded, bytes) else raw), None
    return raw, None


def _base64(raw: bytes) -> tuple[bytes, str | None]:
    # Concatenated base64 blocks ("...==" then more) are decoded one by one.
    warning = None
    out = []
    for chunk in re.split(rb"=+", raw):
        cleaned = _B64_ALPHABET.sub(b"", chunk)
        if not cleaned:
            continue
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
            warning = "broken base64 decoded as far as possible"
        if _B64_JUNK.search(chunk):
            warning = warning or "base64 with invalid characters"
        try:
            out.append(base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4)))
        except binascii.Error:
            warning = "broken base64 decoded as far as possible"
    return b"".join(out), warning
