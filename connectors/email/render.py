"""Outbound mail as the bytes of one RFC 5322 message (PROTOCOLS.md P4). Pure.

`render_email` turns an `OutboundEmail` into CRLF-terminated bytes ready for
SMTP DATA (the SMTP layer dot-stuffs). Every message is multipart/alternative
(text/plain and text/html, so clients show formatting), inside a
multipart/mixed when there are attachments.

Why the header block is written here and not by `email.policy.SMTP`
(checked on Python 3.11.7): its folder turns a References value longer than
a line into RFC 2047 encoded words, which breaks threading in every client;
its boundaries are random at each serialisation; it picks 8bit bodies; and
its folding has changed between patch releases. Delivery is at-least-once
with one stable Message-ID, and tests compare what an SMTP server received
with `render_email`'s output, so the bytes must depend on the input only.
The standard library still does the encodings (quoted-printable, base64,
IDNA, the Date format).

Nothing the caller passes reaches a header unchecked: subjects and display
names are cleaned to one line (CR, LF, NUL, NEL, U+2028/2029 and other
controls become spaces) and encoded; addresses, message ids, the
unsubscribe URL and content types must match their grammar; file names
are made safe and RFC 2231 encoded. Invalid input the caller is
responsible for raises ValueError naming the field ("to[1]: ..."); message
ids that came from the customer's mail (In-Reply-To, References) are
dropped instead, so junk in their headers never stops a reply.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hashlib
import html
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from email.utils import format_datetime

from connectors.email.filenames import safe_filename
from connectors.email.limits import DEFAULT_LIMITS
from connectors.email.model import Address
from connectors.email.sanitize import sanitize_html, too_costly
from server.domain.email_address import envelope_address
from server.domain.email_subjects import clean_text, no_surrogates
from server.domain.email_threading import MAX_MESSAGE_ID_LENGTH
from server.domain.html_policy import LINK_REL

SOFT_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters...
HARD_LINE = 998  # ...and MUST be at most 998
MAX_REFERENCES = 10  # the first and the last 9, as Thunderbird and mutt trim
AUTO_SUBMITTED = frozenset({"auto-generated", "auto-replied", "auto-notified"})
MAX_URL = 900  # keeps "List-Unsubscribe: <url>" within HARD_LINE

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
# Dots anywhere on either side: real clients send ids that are not strict
# dot-atoms ("a..b@x"), and they are harmless in a header.
_MSG_ID = re.compile(rf"<[{_ATEXT}.]+@(?:[{_ATEXT}.]+|\[[!-Z^-~]*\])>")
_URL_CHARS = re.compile(r"https?://[!-~]+", re.IGNORECASE)
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# A word of a display name that can go as it is (short enough to fold),
# and a whole name that needs neither quotes nor encoding.
_ATOM = re.compile(rf"[{_ATEXT}]{{1,66}}")
_PLAIN_PHRASE = re.compile(rf"[{_ATEXT}]+(?: [{_ATEXT}]+)*")
# A subject word that can go as it is: printable ASCII, short enough to fold.
_PLAIN_WORD = re.compile(r"[!-~]{1,66}")
_PLAIN_PARAM = re.compile(r"[A-Za-z0-9!#$&+.^_`{}~ ()=,-]{1,60}")
_ENCODED_WORD_MAX = 66  # "Reply-To: " + one word stays within SOFT_LINE
_PARAM_CHUNK = 50  # " filename*0*=utf-8''" + a chunk + ";" stays within SOFT_LINE
# Chars a Q-encoded word may carry as themselves in a phrase (RFC 2047 5.3).
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LINK = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class OutboundAttachment:
    """A file to attach. `filename` is made safe (no path, no control or
    bidi characters, at most 255 UTF-8 bytes); an invalid `content_type`
    (and message/* or multipart/*, which may not be base64-encoded) is
    sent as application/octet-stream."""

    filename: str
    content_type: str
    data: bytes


@dataclasses.dataclass(frozen=True)
class OutboundEmail:
    """One message to send. `message_id` is ours: `<left@right>` with its
    angle brackets. `in_reply_to` and `references` (oldest first) come from
    the customer's mail and may be given with or without angle brackets
    (`ParsedEmail` keeps them without); invalid ones are dropped. `html` is
    an HTML fragment, sanitised again here; None means one is made from
    `text`. `auto_submitted` marks automatic mail (RFC 3834);
    `list_unsubscribe_url` adds the RFC 8058 one-click headers."""

    from_address: Address
    to: tuple[Address, ...]
    subject: str
    message_id: str
    date: datetime.datetime
    text: str
    cc: tuple[Address, ...] = ()
    reply_to: Address | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    html: str | None = None
    attachments: tuple[OutboundAttachment, ...] = ()
    auto_submitted: str | None = None
    list_unsubscribe_url: str | None = None


# -- public helpers -----------------------------------------------------------


def envelope_recipients(mail: OutboundEmail) -> tuple[str, ...]:
    """Every To and Cc address as `envelope_address` gives it, each once
    (compared without letter case), in order: the SMTP RCPT TO list."""
    seen: dict[str, str] = {}
    for field, addr in _recipient_fields(mail):
        address = envelope_address(addr.address, field=field)
        seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def text_to_html(text: str) -> str:
    """Plain text as a safe HTML fragment: everything escaped, blank lines
    separate <p> paragraphs, other line breaks become <br>, and http(s)
    URLs become links (no other scheme is ever linked)."""
    text = _normalise_text(text).strip("\n")
    if not text.strip():
        return ""
    paragraphs = []
    for block in _PARAGRAPH_BREAK.split(text):
        lines = [_linkify(line) for line in block.split("\n")]
        paragraphs.append("<p>" + "<br>\n".join(lines) + "</p>")
    return "\n".join(paragraphs)


# -- rendering ----------------------------------------------------------------


def render_email(mail: OutboundEmail) -> bytes:
    """The complete message: headers and MIME body, CRLF line endings, no
    line longer than 998 octets, the same bytes for the same `mail`.

    Raises ValueError naming the field for an invalid address, Message-ID,
    date, Auto-Submitted value or unsubscribe URL, or when `to` is empty.
    No Bcc header is ever written: blind copies are envelope-only.
    """
    head = _header_block(mail)
    alternative = _Multipart(
        "alternative",
        [
            _text_part("plain", _normalise_text(mail.text)),
            _text_part("html", _html_document(mail)),
        ],
    )
    root: _Multipart = alternative
    if mail.attachments:
        root = _Multipart("mixed", [alternative, *(_attachment(a) for a in mail.attachments)])
    root.assign_boundaries(mail.message_id)
    return head + b"MIME-Version: 1.0\r\n" + root.render()


def _header_block(mail: OutboundEmail) -> bytes:
    if not mail.to:
        raise ValueError("to: at least one recipient is needed")
    message_id = _message_id(mail.message_id)
    if message_id is None:
        raise ValueError("message_id: not a single <left@right> id")
    if mail.date.tzinfo is None or mail.date.utcoffset() is None:
        raise ValueError("date: must be timezone-aware")
    in_reply_to = _message_id(mail.in_reply_to) if mail.in_reply_to else None

    out = [_fold("From", _mailbox(mail.from_address, "from_address"))]
    out.append(_fold("To", _mailbox_list(mail.to, "to")))
    if mail.cc:
        out.append(_fold("Cc", _mailbox_list(mail.cc, "cc")))
    if mail.reply_to is not None:
        out.append(_fold("Reply-To", _mailbox(mail.reply_to, "reply_to")))
    out.append(_fold("Subject", _unstructured(mail.subject)))
    # In UTC: an offset with seconds has no RFC 5322 form, and the agent's
    # time zone is nobody else's business.
    out.append(_fold("Date", [format_datetime(mail.date.astimezone(datetime.UTC))]))
    out.append(_fold("Message-ID", [message_id]))
    if in_reply_to:
        out.append(_fold("In-Reply-To", [in_reply_to]))
    references = _references(mail.references, in_reply_to)
    if references:
        out.append(_fold("References", references))
    if mail.auto_submitted is not None:
        if mail.auto_submitted not in AUTO_SUBMITTED:
            raise ValueError(f"auto_submitted: one of {', '.join(sorted(AUTO_SUBMITTED))}")
        out.append(_fold("Auto-Submitted", [mail.auto_submitted]))
        # Exchange and Outlook ignore Auto-Submitted but honour this: no
        # out-of-office or read receipts answering our automatic mail.
        out.append(_fold("X-Auto-Response-Suppress", ["All"]))
    if mail.list_unsubscribe_url is not None:
        out.append(_fold("List-Unsubscribe", [f"<{_url(mail.list_unsubscribe_url)}>"]))
        out.append(_fold("List-Unsubscribe-Post", ["List-Unsubscribe=One-Click"]))
    return b"".join(out)


def _message_id(value: str) -> str | None:
    """`value` as one `<left@right>` id (surrounding whitespace trimmed,
    angle brackets added when missing), or None when it is anything else."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    if len(value) > MAX_MESSAGE_ID_LENGTH + 2 or not _MSG_ID.fullmatch(value):
        return None
    return value


def _references(given: Iterable[str], in_reply_to: str | None) -> list[str]:
    """The valid ids of `given`, each once, with `in_reply_to` last when
    missing (RFC 5322 3.6.4: the parent's References plus its Message-ID),
    trimmed to the first and the last MAX_REFERENCES - 1."""
    ids = [i for i in (_message_id(v) for v in given) if i is not None]
    if in_reply_to:
        ids.append(in_reply_to)
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return ids


def _url(value: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_URL
        or not _URL_CHARS.fullmatch(value)
        or any(ch in value for ch in '<>"\\')
    ):
        raise ValueError("list_unsubscribe_url: must be an http(s) URL of visible ASCII")
    return value


# -- header encoding ----------------------------------------------------------


def _fold(name: str, tokens: Sequence[str]) -> bytes:
    """One header field: tokens joined by spaces, folded before a token that
    would take the line past SOFT_LINE. Each token is ASCII and short
    enough (by construction) for the line to stay within HARD_LINE."""
    lines = [f"{name}:"]
    for token in tokens:
        if lines[-1] == f"{name}:" or len(lines[-1]) + 1 + len(token) <= SOFT_LINE:
            lines[-1] += " " + token
        else:
            lines.append(" " + token)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _unstructured(text: str) -> list[str]:
    """Subject tokens (see `_words`): any printable ASCII word may stay."""
    return _words(clean_text(no_surrogates(text)), _PLAIN_WORD)


def _mailbox(addr: Address, field: str) -> list[str]:
    """`Name <local@domain>` tokens (the name as atoms, a quoted string or
    encoded words), or the bare address when there is no name."""
    address = envelope_address(addr.address, field=field)
    name = clean_text(no_surrogates(addr.name or ""))
    if not name:
        return [address]
    if (
        not _PLAIN_PHRASE.fullmatch(name)
        and name.isascii()
        and "=?" not in name
        and len(name) + len(address) <= 60
    ):
        # A short ASCII name with specials ("Doe, Jane", "J. Doe") reads
        # best as a quoted string.
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return [f'"{quoted}"', f"<{address}>"]
    return [*_words(name, _ATOM), f"<{address}>"]


def _words(text: str, plain: re.Pattern[str]) -> list[str]:
    """Header tokens for one-line text: each space-separated word that
    `plain` matches as it is, each run of other words as RFC 2047 encoded
    words. Encoding runs rather than the whole text keeps encoded words
    apart (a space between an encoded word and a plain one is kept by
    every reader), so a long value is rarely split into adjacent encoded
    words, whose separating space some readers wrongly keep (Python 3.11's
    address parser does). A word holding "=?" is encoded: a reader would
    decode it."""
    tokens: list[str] = []
    run: list[str] = []
    for word in text.split(" ") if text else []:
        if plain.fullmatch(word) and "=?" not in word:
            if run:
                tokens.extend(_encoded_words(" ".join(run)))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens.extend(_encoded_words(" ".join(run)))
    return tokens


def _mailbox_list(addrs: Sequence[Address], field: str) -> list[str]:
    tokens: list[str] = []
    for i, addr in enumerate(addrs):
        if tokens:
            tokens[-1] += ","
        tokens.extend(_mailbox(addr, f"{field}[{i}]"))
    return tokens


def _encoded_words(text: str) -> list[str]:
    """`text` as UTF-8 RFC 2047 encoded words of at most _ENCODED_WORD_MAX
    characters, each holding whole characters. Q or B, whichever is
    shorter for the whole text; the Q form uses only the characters RFC
    2047 allows in a phrase, so the same words serve names and subjects."""
    data = text.encode("utf-8")
    use_b = 4 * -(-len(data) // 3) < sum(_q_size(b) for b in data)
    prefix = "=?utf-8?b?" if use_b else "=?utf-8?q?"
    room = _ENCODED_WORD_MAX - len(prefix) - 2
    words: list[str] = []
    chunk = bytearray()
    size = 0
    for ch in text:
        raw = ch.encode("utf-8")
        if use_b:
            grown = 4 * -(-(len(chunk) + len(raw)) // 3)
        else:
            grown = size + sum(_q_size(b) for b in raw)
        if chunk and grown > room:
            words.append(prefix + _encode_chunk(bytes(chunk), use_b) + "?=")
            chunk = bytearray()
            grown = 4 * -(-len(raw) // 3) if use_b else sum(_q_size(b) for b in raw)
        chunk += raw
        size = grown
    if chunk:
        words.append(prefix + _encode_chunk(bytes(chunk), use_b) + "?=")
    return words


def _q_size(byte: int) -> int:
    return 1 if byte in _Q_SAFE or byte == 0x20 else 3


def _encode_chunk(chunk: bytes, use_b: bool) -> str:
    if use_b:
        return base64.b64encode(chunk).decode("ascii")
    return "".join("_" if b == 0x20 else chr(b) if b in _Q_SAFE else f"={b:02X}" for b in chunk)


def _params(main: str, params: Sequence[tuple[str, str]]) -> list[str]:
    """Content-Type / Content-Disposition tokens: short printable values
    quoted; any other value RFC 2231 encoded (UTF-8, percent-escaped) and
    split into continuations of at most _PARAM_CHUNK characters."""
    pieces = [main]
    for key, value in params:
        if _PLAIN_PARAM.fullmatch(value):
            pieces.append(f'{key}="{value}"')
            continue
        # Split between characters, never inside one: some readers decode
        # each continuation on its own.
        chunks = [""]
        for ch in value:
            piece = urllib.parse.quote(ch, safe="")
            if chunks[-1] and len(chunks[-1]) + len(piece) > _PARAM_CHUNK:
                chunks.append("")
            chunks[-1] += piece
        if len(chunks) == 1:
            pieces.append(f"{key}*=utf-8''{chunks[0]}")
        else:
            pieces.append(f"{key}*0*=utf-8''{chunks[0]}")
            pieces.extend(f"{key}*{i}*={c}" for i, c in enumerate(chunks[1:], 1))
    return [p + ";" for p in pieces[:-1]] + pieces[-1:]


# -- bodies ---------------------------------------------------------------------


def _normalise_text(text: str) -> str:
    """Body text with "\n" line ends, no NUL and no lone surrogates."""
    text = no_surrogates(text).replace("\x00", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _linkify(line: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _LINK.finditer(line):
        url = _trim_url(match.group(0))
        if "://" not in url or url.endswith("://"):
            continue
        out.append(html.escape(line[pos : match.start()]))
        link = html.escape(url)
        out.append(f'<a href="{link}" rel="{LINK_REL}">{link}</a>')
        pos = match.start() + len(url)
    out.append(html.escape(line[pos:]))
    return "".join(out)


def _trim_url(url: str) -> str:
    """Without the punctuation that ends the sentence around a URL, and
    without closing brackets that the URL did not open. Linear: the
    brackets are counted once."""
    unopened = {")": url.count(")") - url.count("("), "]": url.count("]") - url.count("[")}
    end = len(url)
    while end:
        last = url[end - 1]
        if last in ".,;:!?":
            end -= 1
        elif unopened.get(last, 0) > 0:
            unopened[last] -= 1
            end -= 1
        else:
            break
    return url[:end]


def _html_document(mail: OutboundEmail) -> str:
    """A small complete document around the body: the caller's HTML,
    sanitised again in case it was not; or HTML made from the text when
    there is none or when it is too large or complex to sanitise quickly."""
    body = ""
    if mail.html is not None:
        given = _normalise_text(mail.html)
        if too_costly(given, DEFAULT_LIMITS.max_html_bytes) is None:
            body = sanitize_html(given).strip("\n")
    if not body.strip():  # none given, too costly, or nothing left
        body = text_to_html(mail.text)
    return (
        "<!doctype html>\n"
        '<html><head><meta charset="utf-8"></head><body>\n'
        f"{body}\n"
        "</body></html>\n"
    )


@dataclasses.dataclass
class _Leaf:
    headers: list[bytes]
    body: bytes  # encoded, CRLF line ends

    def render(self) -> bytes:
        return b"".join(self.headers) + b"\r\n" + self.body


def _text_part(subtype: str, text: str) -> _Leaf:
    """A UTF-8 text part: 7bit when quoted-printable would change nothing
    (printable ASCII, short lines, no trailing spaces, no "="), so it reads
    as is in any client; quoted-printable otherwise."""
    data = text.encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    cte = "7bit" if encoded == data else "quoted-printable"
    return _Leaf(
        [
            _fold("Content-Type", [f"text/{subtype};", 'charset="utf-8"']),
            _fold("Content-Transfer-Encoding", [cte]),
        ],
        encoded.replace(b"\n", b"\r\n"),
    )


def _attachment(att: OutboundAttachment) -> _Leaf:
    ctype = (att.content_type or "").strip().lower()
    if not _CONTENT_TYPE.fullmatch(ctype) or ctype.startswith(("message/", "multipart/")):
        ctype = "application/octet-stream"
    name = safe_filename(no_surrogates(att.filename or ""), ctype)
    body = base64.encodebytes(bytes(att.data)).rstrip(b"\n").replace(b"\n", b"\r\n")
    return _Leaf(
        [
            _fold("Content-Type", _params(ctype, [("name", name)])),
            _fold("Content-Disposition", _params("attachment", [("filename", name)])),
            _fold("Content-Transfer-Encoding", ["base64"]),
        ],
        body,
    )


@dataclasses.dataclass
class _Multipart:
    subtype: str
    parts: list[_Leaf | _Multipart]
    boundary: str = ""

    def assign_boundaries(self, message_id: str, index: int = 0) -> int:
        """Boundaries from a hash of the Message-ID and the part's index, so
        the same message always renders the same bytes. No body can contain
        one: a boundary has "=_", which quoted-printable and base64 output
        never do (and a part is 7bit only when it has no "=" at all).
        Returns the next free index."""
        seed = f"{message_id}\x00{index}".encode()
        self.boundary = "=_tl_" + hashlib.sha256(seed).hexdigest()[:40]
        index += 1
        for part in self.parts:
            if isinstance(part, _Multipart):
                index = part.assign_boundaries(message_id, index)
        return index

    def render(self) -> bytes:
        delimiter = f"--{self.boundary}".encode("ascii")
        out = [_fold("Content-Type", [f"multipart/{self.subtype};", f'boundary="{self.boundary}"'])]
        out.append(b"\r\n")
        for part in self.parts:
            out += [delimiter, b"\r\n", part.render(), b"\r\n"]
        out += [delimiter, b"--\r\n"]
        return b"".join(out)


def _recipient_fields(mail: OutboundEmail) -> Iterable[tuple[str, Address]]:
    yield from ((f"to[{i}]", a) for i, a in enumerate(mail.to))
    yield from ((f"cc[{i}]", a) for i, a in enumerate(mail.cc))
