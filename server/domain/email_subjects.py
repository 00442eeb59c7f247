"""Subject lines: one line of clean header text, and the subject a reply
goes out with. Shared by the email connector (parsing and rendering mail)
and the server (the reply an agent is offered), so both clean and prefix
a subject by the same rule."""

from __future__ import annotations

import re
import unicodedata

DEFAULT_REPLY_SUBJECT = "Re: your message"

_SPACES = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Bidirectional embeddings, overrides and isolates: used to disguise names
# ("invoice\u202efdp.exe") and never needed in a header.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
# Used on text from clean_text (no runs of spaces), so the \s* can't backtrack far.
_REPLY_PREFIX = re.compile(
    r"\s*(?:re|aw|sv|vs|antw|rif|res)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*", re.IGNORECASE
)


def clean_text(value: str) -> str:
    """Text safe for one line of a header-derived field: control characters
    (CR and LF included), line separators and bidirectional overrides become
    spaces or go; runs of whitespace collapse to one space."""
    chars = []
    for ch in value.translate(_BIDI):
        if ch in "\u2028\u2029" or unicodedata.category(ch) == "Cc":
            chars.append(" ")
        else:
            chars.append(ch)
    return _SPACES.sub(" ", "".join(chars)).strip()


def no_surrogates(text: str) -> str:
    # A lone surrogate has no UTF-8 form; it can only come from broken input.
    return _SURROGATE.sub("\ufffd", text)


def reply_subject(subject: str | None, *, fallback: str = DEFAULT_REPLY_SUBJECT) -> str:
    """The subject of a reply: "Re: " and `subject` without its own reply
    prefixes (Re:, RE:, Aw:, SV:, VS:, Antw:, Re[2]:, ... in any case,
    repeated), so they never stack: "RE: re: Order" -> "Re: Order".
    Forward prefixes are kept ("Fwd: Order" -> "Re: Fwd: Order"), as mail
    clients do. When nothing is left (None, "", "Re:"), `fallback` is
    returned as given (cleaned to one line), without a "Re:" added."""
    value = clean_text(no_surrogates(subject or ""))
    # Matched from a moving position, not by slicing again and again: a
    # customer's subject can be "Re:" a hundred thousand times.
    pos = 0
    while match := _REPLY_PREFIX.match(value, pos):
        pos = match.end()
    value = value[pos:]
    return f"Re: {value}" if value else clean_text(no_surrogates(fallback))
