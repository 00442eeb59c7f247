"""Raw inbound mail to a `ParsedEmail` (PROTOCOLS.md P4). Pure: no I/O.

Why `compat32` and not `email.policy.default`: the default policy parses
structured headers (addresses, Message-ID, parameters) eagerly, into
objects that hide the raw value, and its accessors raise on real-world
junk (`get_content()` raises LookupError on an unknown RFC 2231 charset;
an address header with thousands of nested comments raises RecursionError),
so every access would need a guard and a fallback. `compat32` hands back
header values as sent, and this module decodes them itself, deliberately
and tolerantly (`connectors.email.headers`): splitting addresses before
decoding names, decoding encoded words and bodies with replacement, reading
raw UTF-8 or Latin-1 headers. The MIME tree is split the same way by both.

Limits are checked on the raw bytes before parsing where possible (size,
header block, the size and parameter count of every Content-Type and
Content-Disposition field), and on the MIME tree *while* it is parsed: the
parser checks each line against the boundary of every enclosing
multipart, so a deeply nested message costs depth x lines; stopping at the
part that is one level too deep (or one part too many) keeps that cost
bounded.
"""

from __future__ import annotations

import html as html_escape
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy, compat32

from connectors.email import charsets
from connectors.email import headers as h
from connectors.email.bounce import read_report
from connectors.email.classify import classify
from connectors.email.errors import MailRefused, MailUnparseable
from connectors.email.filenames import safe_filename
from connectors.email.flowed import unflow
from connectors.email.html_text import html_to_text
from connectors.email.limits import DEFAULT_LIMITS, Limits
from connectors.email.model import Address, Attachment, Bounce, ParsedEmail
from connectors.email.payload import children, decode_payload
from connectors.email.reply_text import extract_reply
from connectors.email.sanitize import sanitize_html, strip_tags, too_costly
from server.domain.email_address import address_problem

_FIELD_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_PARAM_FIELD = re.compile(
    rb"^content-(?:type|disposition)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*", re.IGNORECASE | re.MULTILINE
)
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_SINGLE = ("from", "sender", "subject", "date", "message-id", "in-reply-to", "references")
_MAX_WARNINGS = 50
_SHOWN = 100  # of a From value quoted in a reason


def parse_email(raw: bytes, *, limits: Limits = DEFAULT_LIMITS) -> ParsedEmail:
    """Parse one message.

    Raises `MailRefused` when the message breaks one of `limits` and
    `MailUnparseable` when the bytes have no header fields at all; anything
    else decodes to *something* (see `ParsedEmail.warnings` for what was
    repaired). The caller quarantines the raw bytes on either error.
    """
    raw = bytes(raw)
    if len(raw) > limits.max_bytes:
        raise MailRefused(f"message of {len(raw)} bytes is over the {limits.max_bytes} limit")
    header_bytes, header_count = _header_block(raw, limits)
    if header_count == 0:
        raise MailUnparseable("no header fields")
    _check_param_fields(raw, limits)
    budget = _Budget(limits)
    message = BytesParser(budget.new_part, policy=compat32).parsebytes(raw)
    if not message.keys():
        raise MailUnparseable("no header fields")
    _check_headers(message, limits)
    return _build(message, raw, header_bytes, header_count, limits)


def _header_block(raw: bytes, limits: Limits) -> tuple[int, int]:
    """(bytes, fields) of the top-level header block, which ends at the
    first empty line or at the first line that is neither a field nor a
    continuation (where the parser ends it too). Refuses an oversized one
    without reading further than the limit."""
    count = 0
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end + 1
        line = raw[pos:end]
        if line.strip(b"\r\n") == b"":
            break
        if line[:1] in {b" ", b"\t"}:
            if count == 0:
                break
        elif _FIELD_LINE.match(line) or (count == 0 and line.startswith(b"From ")):
            count += 1
        else:
            break
        pos = end
        if pos > limits.max_header_bytes:
            raise MailRefused(f"header block over {limits.max_header_bytes} bytes")
        if count > limits.max_header_count:
            raise MailRefused(f"more than {limits.max_header_count} header fields")
    return pos, count


def _check_param_fields(raw: bytes, limits: Limits) -> None:
    """Every Content-Type / Content-Disposition field in the message, in
    any part (found on the raw bytes, before the parser reads them), is
    held to the parameter limits."""
    for match in _PARAM_FIELD.finditer(raw):
        field = match.group(0)
        if len(field) > limits.max_param_field_bytes:
            raise MailRefused(f"a MIME field is over {limits.max_param_field_bytes} bytes")
        if field.count(b";") > limits.max_params:
            raise MailRefused(f"a MIME field has more than {limits.max_params} parameters")


class _Budget:
    """Counts MIME entities as the parser attaches them and refuses the
    first one past `max_parts` or deeper than `max_depth`."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.parts = 1  # the top-level message

    def new_part(self, policy: Policy = compat32) -> Message:
        return _Part(self, policy=policy)


class _Part(Message):
    """A Message that knows its depth and reports each child it is given."""

    def __init__(self, budget: _Budget, policy: Policy = compat32) -> None:
        super().__init__(policy)
        self.budget = budget
        self.depth = 0

    def attach(self, payload: Message | str) -> None:
        limits = self.budget.limits
        self.budget.parts += 1
        if self.budget.parts > limits.max_parts:
            raise MailRefused(f"more than {limits.max_parts} MIME parts")
        if isinstance(payload, _Part):
            payload.depth = self.depth + 1
            if payload.depth > limits.max_depth:
                raise MailRefused(f"MIME nesting deeper than {limits.max_depth}")
        super().attach(payload)


def _check_headers(message: Message, limits: Limits) -> None:
    """Each part's own header block is held to the field-count limit."""
    for part in message.walk():
        if len(part.keys()) > limits.max_header_count:
            raise MailRefused(f"a MIME part has more than {limits.max_header_count} header fields")


@dataclass
class _Piece:
    """One run of body content: plain text, HTML, or both alternatives."""

    text: str | None = None
    html: str | None = None


@dataclass
class _Body:
    pieces: list[_Piece] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def visit(self, part: Message) -> None:
        ctype = part.get_content_type()
        parts = children(part)
        if ctype in {"message/delivery-status", "message/global-delivery-status"}:
            self.attachments.append(self.attachment(part, data=_report_text(part)))
        elif parts is not None and ctype.startswith("message/"):
            self.attachments.append(self.attachment(part, data=self.embedded(part)))
        elif parts is not None:
            if ctype == "multipart/alternative":
                self.alternative(parts)
            elif ctype == "multipart/related":
                self.related(part, parts)
            else:
                for child in parts:
                    self.visit(child)
        else:
            self.leaf(part, ctype)

    def leaf(self, part: Message, ctype: str) -> None:
        fields = h.HeaderFields.of(part)
        disposition, _ = h.params(fields.get("content-disposition"))
        if ctype.startswith("multipart/"):
            self.warnings.append(f"{ctype} without parts read as text")
            ctype = "text/plain"
        if ctype in _BODY_TYPES and disposition != "attachment" and not _filename(fields):
            text = self.text(part, fields)
            self.pieces.append(_Piece(html=text) if ctype == "text/html" else _Piece(text=text))
        else:
            self.attachments.append(self.attachment(part))

    def alternative(self, children: list[Message]) -> None:
        subs = []
        for child in children:
            sub = _Body()
            sub.visit(child)
            subs.append(sub)
            self.attachments.extend(sub.attachments)
            self.warnings.extend(sub.warnings)
        plain = next((s for s in subs if any(p.text is not None for p in s.pieces)), None)
        rich = next((s for s in reversed(subs) if any(p.html is not None for p in s.pieces)), None)
        piece = _Piece(
            text=_join([p.text for p in plain.pieces if p.text is not None]) if plain else None,
            html=_join([p.html for p in rich.pieces if p.html is not None]) if rich else None,
        )
        if piece.text is not None or piece.html is not None:
            self.pieces.append(piece)

    def related(self, part: Message, children: list[Message]) -> None:
        if not children:
            return
        _, ct_params = h.params(h.field(part, "content-type"))
        start = h.message_ids(ct_params.get("start"))
        root = next(
            (c for c in children if start and _content_id(h.field(c, "content-id")) == start[0]),
            children[0],
        )
        self.visit(root)
        for child in children:
            if child is root:
                continue
            if child.is_multipart():
                self.visit(child)
            else:
                self.attachments.append(self.attachment(child, related=True))

    def text(self, part: Message, fields: h.HeaderFields) -> str:
        data, warning = decode_payload(part)
        if warning:
            self.warnings.append(warning)
        ctype, ct_params = h.params(fields.get("content-type"))
        text, warning = charsets.decode(data, ct_params.get("charset"))
        if warning:
            self.warnings.append(warning)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if ctype == "text/plain" and ct_params.get("format", "").lower() == "flowed":
            text = unflow(text, delsp=ct_params.get("delsp", "").lower() == "yes")
        return text

    def attachment(
        self, part: Message, *, data: bytes | None = None, related: bool = False
    ) -> Attachment:
        fields = h.HeaderFields.of(part)
        if data is None:
            data, warning = decode_payload(part)
            if warning:
                self.warnings.append(warning)
        ctype = part.get_content_type()
        if not _CONTENT_TYPE.fullmatch(ctype):
            ctype = "application/octet-stream"
        disposition, _ = h.params(fields.get("content-disposition"))
        content_id = _content_id(fields.get("content-id"))
        name = _filename(fields)
        if not name and ctype in {"message/rfc822", "message/global"}:
            inner = children(part)
            if inner:
                subject = h.header_text(h.field(inner[0], "subject"))
                name = f"{subject}.eml" if subject else ""
        inline = disposition != "attachment" and (
            disposition == "inline" or related or content_id is not None
        )
        return Attachment(
            filename=safe_filename(h.header_text(name), ctype),
            content_type=ctype,
            data=data,
            content_id=content_id,
            inline=inline,
        )

    def embedded(self, part: Message) -> bytes:
        """A message/rfc822 part's message, serialised again (the parser
        keeps no byte offsets)."""
        inner = children(part)
        if not inner:
            return b""
        try:
            return inner[0].as_bytes(policy=compat32)
        except Exception:  # the generator on a tree it was never meant to see
            self.warnings.append("an attached message could not be serialised")
            return b""


def _join(texts: list[str]) -> str | None:
    return "\n\n".join(texts) if texts else None


def _filename(fields: h.HeaderFields) -> str:
    _, disposition = h.params(fields.get("content-disposition"))
    _, content_type = h.params(fields.get("content-type"))
    return disposition.get("filename") or content_type.get("name") or ""


def _content_id(value: str | None) -> str | None:
    ids = h.message_ids(value)
    if ids:
        return ids[0]
    bare = (value or "").strip().strip("<>").strip()
    if bare and not any(ch.isspace() or ord(ch) < 32 for ch in bare):
        return bare[:998]
    return None


def _report_text(part: Message) -> bytes:
    parsed = children(part)
    if parsed is None:
        return decode_payload(part)[0]
    blocks = ["\n".join(f"{k}: {h.as_text(v)}" for k, v in b.raw_items()) for b in parsed]
    return "\n\n".join(blocks).encode("utf-8")


def _build(
    message: Message, raw: bytes, header_bytes: int, header_count: int, limits: Limits
) -> ParsedEmail:
    warnings: list[str] = []
    fields = h.HeaderFields.of(message)
    for name in _SINGLE:
        if len(fields.get_all(name)) > 1:
            warnings.append(f"duplicate {name} header; the first is used")

    from_values = fields.get_all("from")[:1]
    senders = h.addresses(from_values, warnings)
    if len(senders) > 1:
        warnings.append("several From addresses; the first is used")
    sender = senders[0] if senders else Address("", "")
    from_problem = _sender_problem(from_values, sender.address, warnings)
    subject = h.header_text(fields.get("subject"), warnings)

    ctype, ct_params = h.params(fields.get("content-type"))
    report_type = ct_params.get("report-type", "").lower() if ctype == "multipart/report" else ""
    bounce: Bounce | None = None
    if report_type == "delivery-status":
        bounce = read_report(message)

    body = _Body()
    body.visit(message)
    warnings.extend(body.warnings)
    text, html = _body_text(body, limits, warnings)

    message_ids = h.message_ids(fields.get("message-id"))
    return ParsedEmail(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=tuple(h.message_ids(fields.get("in-reply-to"))),
        references=tuple(h.message_ids(fields.get("references"))),
        from_name=sender.name,
        from_address=None if from_problem else sender.address,
        to=_unique(h.addresses(fields.get_all("to"), warnings)),
        cc=_unique(h.addresses(fields.get_all("cc"), warnings)),
        reply_to=_unique(h.addresses(fields.get_all("reply-to")[:1], warnings)),
        subject=subject,
        date=h.date(fields.get("date")),
        text=text,
        html=html,
        reply_text=extract_reply(text, subject=subject),
        attachments=tuple(body.attachments),
        auto=classify(fields.items, report_type=report_type or None),
        bounce=bounce,
        header_bytes=header_bytes,
        header_count=header_count,
        size=len(raw),
        warnings=tuple(dict.fromkeys(warnings))[:_MAX_WARNINGS],
        from_problem=from_problem,
    )


def _sender_problem(values: list[str], address: str, warnings: list[str]) -> str | None:
    """Why the From field gives no address a reply could go to, or None.
    The shared rule (`server.domain.email_address`) decides, the one every
    reply's recipients are held to: a bare word (`From: Evil`, `Jane
    <jane>`, a name whose line a raw CR cut short) is no address."""
    shown = h.header_text(values[0], warnings)[:_SHOWN] if values else ""
    if not address:
        return f"From: no sender address in {shown!r}" if shown else "From: no sender address"
    problem = address_problem(address)
    if problem:
        return f"From: {shown!r} is not a usable address ({problem})"
    return None


def _body_text(body: _Body, limits: Limits, warnings: list[str]) -> tuple[str, str | None]:
    """The plain text and the sanitised HTML of the body pieces. Plain-text
    pieces join the HTML as <pre>; HTML-only pieces give their text. HTML
    too costly to sanitise is kept as an attachment instead."""
    raw_html = [p.html for p in body.pieces if p.html is not None]
    refused = too_costly("\n".join(raw_html), limits.max_html_bytes) if raw_html else None
    if refused:
        warnings.append(f"{refused}; kept as an attachment")
        data = "\n".join(raw_html).encode("utf-8", "replace")
        body.attachments.append(Attachment("message.html", "text/html", data, None, False))
    texts: list[str] = []
    markup: list[str] = []
    for piece in body.pieces:
        if piece.html is None:
            texts.append(piece.text or "")
            markup.append(f"<pre>{html_escape.escape(piece.text or '')}</pre>")
        elif refused:
            texts.append(piece.text if piece.text is not None else strip_tags(piece.html))
        else:
            clean = sanitize_html(piece.html)
            markup.append(clean)
            texts.append(piece.text if piece.text is not None else html_to_text(clean))
    text = "\n\n".join(t.strip("\n") for t in texts if t.strip())
    html = "\n".join(markup) if raw_html and not refused else None
    return text, html


def _unique(found: list[Address]) -> tuple[Address, ...]:
    seen: dict[str, Address] = {}
    for address in found:
        seen.setdefault(address.address.lower(), address)
    return tuple(seen.values())
