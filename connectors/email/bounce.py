"""Reading a delivery status notification (RFC 3464, PROTOCOLS.md P4).

A bounce is a multipart/report with a message/delivery-status part (one
block of per-message fields, then one block per recipient) and, usually,
the original message (message/rfc822) or just its headers
(text/rfc822-headers), where the original Message-ID is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from connectors.email import charsets
from connectors.email import headers as h
from connectors.email.model import Bounce
from connectors.email.payload import children, decode_payload
from server.domain.email_subjects import clean_text

_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ORIGINAL_TYPES = frozenset({"message/rfc822", "message/global"})
_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n")
_FIELD = re.compile(r"([!-9;-~]+)[ \t]*:(.*)")
_DIAGNOSTIC_CHARS = 500

Fields = list[tuple[str, str]]


def read_report(report: Message) -> Bounce | None:
    """The bounce described by a multipart/report, or None when it has no
    delivery-status part. With several recipients, the first that failed
    (else the first listed) is the one reported."""
    status_part = _find(report, _STATUS_TYPES)
    if status_part is None:
        return None
    blocks = _blocks(status_part)
    recipients = [b for b in blocks[1:] if _get(b, "final-recipient") or _get(b, "status")]
    if not recipients:
        recipients = [b for b in blocks if _get(b, "final-recipient") or _get(b, "status")]
    chosen = next((b for b in recipients if _token(_get(b, "action")) == "failed"), None)
    if chosen is None and recipients:
        chosen = recipients[0]
    fields = chosen or []
    action = _token(_get(fields, "action")) or None
    diagnostic = _after_type(_get(fields, "diagnostic-code"))
    status = _status(_get(fields, "status")) or _status(diagnostic)
    recipient = _after_type(_get(fields, "final-recipient") or _get(fields, "original-recipient"))
    return Bounce(
        status=status,
        action=action,
        recipient=h.clean_address(recipient) or None,
        original_message_id=_original_message_id(report),
        permanent=status[0] == "5" if status else action == "failed",
        diagnostic=clean_text(diagnostic)[:_DIAGNOSTIC_CHARS] or None,
    )


def _parts(message: Message) -> Iterator[Message]:
    """Direct children first (where RFC 3464 puts them), then the rest."""
    direct = children(message) or []
    yield from direct
    for child in direct:
        if child.get_content_type() not in _STATUS_TYPES and child.is_multipart():
            yield from _parts(child)


def _find(message: Message, types: frozenset[str]) -> Message | None:
    return next((p for p in _parts(message) if p.get_content_type() in types), None)


def _blocks(part: Message) -> list[Fields]:
    parsed = children(part)
    if parsed is not None:
        blocks = [h.HeaderFields.of(b).items for b in parsed]
        if any(_get(list(b), "status") or _get(list(b), "final-recipient") for b in blocks):
            return [list(b) for b in blocks]
        return []
    data, _ = decode_payload(part)
    text = charsets.decode(data, "utf-8")[0].replace("\r\n", "\n")
    return [_fields(block) for block in _BLOCK_BREAK.split(text)]


def _fields(block: str) -> Fields:
    out: Fields = []
    for line in block.split("\n"):
        if line[:1] in {" ", "\t"} and out:
            name, value = out[-1]
            out[-1] = (name, f"{value} {line.strip()}")
            continue
        match = _FIELD.match(line)
        if match:
            out.append((match.group(1).lower(), match.group(2).strip()))
    return out


def _get(fields: Fields, name: str) -> str | None:
    return next((value for key, value in fields if key == name), None)


def _token(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower().split(" ", 1)[0]


def _after_type(value: str | None) -> str:
    """`rfc822; user@example.com` -> `user@example.com`."""
    if not value:
        return ""
    kind, sep, rest = value.partition(";")
    return (rest if sep else kind).strip()


def _status(value: str | None) -> str | None:
    match = _STATUS.search(value or "")
    return ".".join(match.groups()) if match else None


def _original_message_id(report: Message) -> str | None:
    original = _find(report, _ORIGINAL_TYPES)
    if original is not None:
        inner = children(original)
        if inner:
            ids = h.message_ids(h.field(inner[0], "message-id"))
            if ids:
                return ids[0]
    header_part = _find(report, _HEADER_TYPES)
    if header_part is not None:
        data, _ = decode_payload(header_part)
        text = charsets.decode(data, "utf-8")[0]
        ids = h.message_ids(h.field(HeaderParser(policy=compat32).parsestr(text), "message-id"))
        if ids:
            return ids[0]
    return None
