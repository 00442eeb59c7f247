"""Reading header fields robustly: raw values to clean text.

The message is parsed with the `compat32` policy, which hands back header
values exactly as they were sent (folded, encoded words intact, 8-bit bytes
as surrogate escapes). Everything here turns such a value into text without
ever raising: RFC 2047 encoded words with unknown charsets or broken base64,
raw UTF-8 (RFC 6532) or Latin-1 bytes, CR/LF smuggled inside encoded words.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from connectors.email import charsets
from connectors.email.model import Address
from server.domain.email_subjects import clean_text

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_NEWLINE = re.compile(r"[\r\n]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{0,80})\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"[ \t\r\n]*")
_PLACEHOLDER = "qqencodedwordqq"
_PLACEHOLDER_RE = re.compile(_PLACEHOLDER + r"(\d+)x")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_MSG_ID = re.compile(r"<([^<>\s\x00-\x1f\x7f]{1,998})>")
_BARE_ID = re.compile(r"[^<>\s\x00-\x1f\x7f@]{1,500}@[^<>\s\x00-\x1f\x7f@]{1,500}")


@dataclass(frozen=True)
class HeaderFields:
    """A part's header fields in order: lower-cased names, values as text
    (8-bit bytes decoded, unfolded) but with encoded words still encoded,
    so structured values (addresses, parameters) can be split first."""

    items: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, part: Message) -> HeaderFields:
        out = []
        for name, value in part.raw_items():
            out.append((str(name).strip().lower(), unfold(as_text(value))))
        return cls(tuple(out))

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self.items if n == name]

    def get(self, name: str) -> str | None:
        for n, v in self.items:
            if n == name:
                return v
        return None


def field(part: Message, name: str) -> str | None:
    """The first `name` field of `part` as unfolded text (encoded words
    still encoded), or None."""
    for key, value in part.raw_items():
        if str(key).strip().lower() == name:
            return unfold(as_text(value))
    return None


def as_text(value: object) -> str:
    """A raw header value as text: surrogate-escaped 8-bit bytes decoded as
    UTF-8 (RFC 6532), or windows-1252 when they are not UTF-8."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def unfold(value: str) -> str:
    """RFC 5322 unfolding; any CR or LF left over becomes a space."""
    return _NEWLINE.sub(" ", _FOLD.sub("", value)).strip()


def decode_words(value: str, warnings: list[str] | None = None) -> str:
    """Decode RFC 2047 encoded words. Adjacent words in the same charset
    are joined as bytes first (a multi-byte character may be split across
    two of them); whitespace between encoded words is dropped."""
    out: list[str] = []
    pos = 0
    pending: list[bytes] = []
    pending_charset = ""

    def flush() -> None:
        nonlocal pending
        if pending:
            text, warning = charsets.decode(b"".join(pending), pending_charset)
            out.append(text)
            if warning and warnings is not None:
                warnings.append(f"header: {warning}")
            pending = []

    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        if pending and _BETWEEN_WORDS.fullmatch(gap) is None:
            flush()
        if not pending:
            out.append(gap)
        charset = match.group(1).split("*", 1)[0]
        if pending and charset.lower() != pending_charset.lower():
            flush()
        pending_charset = charset
        pending.append(_word_bytes(match.group(2), match.group(3), warnings))
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(encoding: str, payload: str, warnings: list[str] | None) -> bytes:
    data = payload.encode("ascii", "replace")
    if encoding in "Qq":
        return binascii.a2b_qp(data, header=True)
    cleaned = _B64_JUNK.sub(b"", data)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    if cleaned != data.rstrip(b"=") and warnings is not None:
        warnings.append("header: broken base64 in an encoded word")
    try:
        return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
    except binascii.Error:
        return b""


def header_text(value: str | None, warnings: list[str] | None = None) -> str:
    """An unstructured header (Subject, a display name) as clean text."""
    if not value:
        return ""
    return clean_text(decode_words(value, warnings))


def addresses(values: Iterable[str], warnings: list[str] | None = None) -> list[Address]:
    """Every mailbox in these address header values, in order.

    Names are decoded after the value is split, so an encoded comma, colon
    or `<` can't create a second address. Encoded words are first swapped
    for plain atoms: the splitter would otherwise read the ":" or "," of a
    (non-conforming but common) `=?utf-8?q?a:_b?=` as syntax."""
    words: list[str] = []

    def protect(match: re.Match[str]) -> str:
        words.append(match.group(0))
        return f"{_PLACEHOLDER}{len(words) - 1}x"

    def restore(text: str) -> str:
        return _PLACEHOLDER_RE.sub(lambda m: words[int(m.group(1))], text)

    protected = [_ENCODED_WORD.sub(protect, value) for value in values]
    if any(_PLACEHOLDER in value for value in values):
        protected, words = list(values), []
    try:
        pairs = getaddresses(protected)
    except RecursionError:
        # The standard parser reads nested comments recursively; thousands
        # of "(" would exhaust the stack. Such a header has no comment worth
        # keeping, so it is read again with the parentheses as spaces.
        pairs = getaddresses([value.replace("(", " ").replace(")", " ") for value in protected])
    found = []
    for name, addr in pairs:
        address = clean_address(restore(addr))
        if not address:
            continue
        found.append(Address(header_text(restore(name), warnings), address))
    return found


def clean_address(addr: str) -> str:
    """An address with whitespace, control characters and angle brackets
    removed and the domain lower-cased ("" when it has an empty side of @)."""
    addr = "".join(ch for ch in addr if not ch.isspace() and unicodedata.category(ch) != "Cc")
    addr = addr.strip("<>")
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr[:320]
    if not local or not domain:
        return ""
    return f"{local}@{domain.lower()}"[:320]


def message_ids(value: str | None) -> list[str]:
    """The message ids in a Message-ID, In-Reply-To or References value,
    without angle brackets, in order, each once. Ids sent without brackets
    (some old clients) are taken from whitespace-separated tokens with an @."""
    if not value:
        return []
    ids = _MSG_ID.findall(value)
    if not ids:
        ids = _BARE_ID.findall(value)
    seen: dict[str, None] = {}
    for msg_id in ids:
        seen.setdefault(msg_id, None)
    return list(seen)


def date(value: str | None) -> datetime | None:
    """The Date header as an aware datetime (a `-0000` zone means UTC), or
    None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def params(value: str | None) -> tuple[str, dict[str, str]]:
    """A Content-Type or Content-Disposition value split into its lower-cased
    main value and its parameters (names lower-cased; RFC 2231 extended
    values and continuations decoded, unknown charsets with replacement;
    RFC 2047 encoded words left for the caller). The first of a repeated
    parameter wins."""
    if not value:
        return "", {}
    main, _, rest = value.partition(";")
    scratch = Message()
    scratch["Content-Type"] = "x/x;" + rest
    try:
        pairs = scratch.get_params(header="content-type") or []
    except (ValueError, TypeError, IndexError, LookupError, UnicodeError):
        return main.strip().lower(), {}
    found: dict[str, str] = {}
    for key, raw in pairs[1:]:
        text = _rfc2231(*raw) if isinstance(raw, tuple) else raw
        found.setdefault(key.strip().lower(), text)
    return main.strip().lower(), found


def _rfc2231(charset: str | None, _language: str | None, text: str) -> str:
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogateescape")
    return charsets.decode(data, charset or "utf-8")[0]
