"""What an uploaded file really is, from its bytes (PROTOCOLS.md P7).

The type a browser declares is whatever the uploader wants it to be, so it
is never what a file is served as: `sniff` looks at the bytes and answers
one of a few known types, or `application/octet-stream`. Only the four
raster image types may ever be shown inline; anything that could be markup
(HTML, SVG, XML) is never labelled as text, so no browser is tempted to
render it.
"""

from __future__ import annotations

import posixpath
import unicodedata

OCTET_STREAM = "application/octet-stream"
PLAIN_TEXT = "text/plain"
ZIP = "application/zip"

# Safe to show inline: decoders for these don't run scripts. SVG is an
# XML document that can carry script, so it is deliberately not here.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),  # an empty archive
)

# Office Open XML files are zip archives; a part name that only one of
# them has tells them apart without unpacking anything.
_OOXML: tuple[tuple[bytes, str], ...] = (
    (
        b"word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (b"xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (
        b"ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
)

# Text types a declared Content-Type may narrow `text/plain` to: plain
# data, never rendered by a browser as a document.
_TEXT_HINTS = frozenset({"text/csv", "text/markdown"})

# Markup a browser (or an old content sniffer) would render; such text is
# served as opaque bytes. Matched case-insensitively anywhere in the head.
_MARKUP = (b"<script", b"<html", b"<svg", b"<iframe", b"<body", b"<!doctype", b"<?xml")
_SNIFF_WINDOW = 4096
_TEXT_CONTROLS = bytes(b for b in [*range(0x20), 0x7F] if b not in b"\t\n\r\f")

MAX_FILENAME = 200
_MAX_EXTENSION = 16
_FORBIDDEN_IN_NAMES = frozenset('<>:"/\\|?*')


def sniff(data: bytes, declared: str | None = None) -> str:
    """The content type of `data`. `declared` (the uploader's Content-Type)
    is a hint only: it can narrow plain text to CSV or Markdown, nothing
    else, so a lie can never make a file more trusted than its bytes."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return _zip_kind(data) if content_type == ZIP else content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if _is_plain_text(data):
        hint = (declared or "").split(";")[0].strip().lower()
        return hint if hint in _TEXT_HINTS else PLAIN_TEXT
    return OCTET_STREAM


def is_inline_image(content_type: str) -> bool:
    return content_type in INLINE_IMAGE_TYPES


def _zip_kind(data: bytes) -> str:
    if b"[Content_Types].xml" not in data:
        return ZIP
    for part, content_type in _OOXML:
        if part in data:
            return content_type
    return ZIP


def _is_plain_text(data: bytes) -> bool:
    # Control bytes other than layout ones mean a binary format.
    if data.translate(None, _TEXT_CONTROLS) != data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # Anything that opens like markup, or carries a tag a sniffer would
    # act on, is not "text" for our purposes.
    if text.lstrip("\ufeff \t\r\n\f").startswith("<"):
        return False
    head = data[:_SNIFF_WINDOW].lower()
    return not any(tag in head for tag in _MARKUP)


def clean_filename(raw: str) -> str:
    """A file name safe to store and to put in a header: no directories,
    no control or invisible formatting characters (a right-to-left
    override can disguise `exe.pdf`), none of the characters Windows
    forbids, no leading dots, at most MAX_FILENAME characters with the
    extension kept. Never empty."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/"))
    name = posixpath.basename(name)
    name = "".join(
        "_" if ch in _FORBIDDEN_IN_NAMES else ch
        for ch in name
        if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    )
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    if not name:
        return "file"
    if len(name) <= MAX_FILENAME:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and len(extension) <= _MAX_EXTENSION:
        return stem[: MAX_FILENAME - len(extension) - 1].rstrip(". ") + "." + extension
    return name[:MAX_FILENAME].rstrip(". ")
