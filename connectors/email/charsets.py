"""Bytes in a declared charset to text, never raising.

Mail declares charsets that Python doesn't know (`x-unknown`,
`iso-8859-8-i`), that lie (`us-ascii` over UTF-8 bytes) or that name one of
Python's non-text codecs (`unicode_escape`, `idna`). Each case decodes to
*some* text, with U+FFFD where bytes are lost, and a warning saying so.
"""

from __future__ import annotations

import codecs

# Names mail uses that Python spells differently, and labels whose real-world
# content is a superset encoding (what browsers do too: WHATWG Encoding).
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-8-e": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "iso-8859-6-e": "iso8859-6",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}

# Python codecs that are not charsets: they would interpret escapes or
# always fail, so a message naming them is treated as an unknown charset.
_NOT_CHARSETS = frozenset(
    {"undefined", "unicode-escape", "raw-unicode-escape", "punycode", "idna", "mbcs", "oem"}
)


def resolve(charset: str | None) -> str | None:
    """The Python codec name for a mail charset label, or None if unknown."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if not label or len(label) > 64:
        return None
    label = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name.replace("_", "-") in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """`data` as text in `charset`, and a warning when something was lost or
    guessed. An absent or unknown charset tries UTF-8 first; an absent one
    falls back to windows-1252 (which maps every byte), an unknown one to
    UTF-8 with replacement."""
    codec = resolve(charset)
    shown = (charset or "").strip()[:64]
    if codec is None:
        try:
            return _clean(data.decode("utf-8")), _unknown(shown, replaced=False)
        except UnicodeDecodeError:
            pass
        if not shown:
            return _clean(data.decode("cp1252", "replace")), (
                "text without a charset decoded as windows-1252"
            )
        return _clean(data.decode("utf-8", "replace")), _unknown(shown, replaced=True)
    try:
        return _clean(data.decode(codec)), None
    except (UnicodeDecodeError, ValueError, LookupError):
        pass
    if codec == "utf-8":
        # Declared UTF-8 or ASCII, but not: most often windows-1252 text.
        try:
            return _clean(
                data.decode("cp1252")
            ), f"charset {shown} does not match; decoded as windows-1252"
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode(codec, "replace")
    except (ValueError, LookupError):
        text = data.decode("utf-8", "replace")
    return _clean(text), f"charset {shown} decoded with replacement"


def _unknown(shown: str, *, replaced: bool) -> str | None:
    if not shown:
        return None
    how = "UTF-8 with replacement" if replaced else "UTF-8"
    return f"unknown charset {shown!r} decoded as {how}"


def _clean(text: str) -> str:
    """No NUL (PostgreSQL text can't hold it) and no lone surrogates (some
    codecs, UTF-7 among them, can produce them; they can't be stored)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
