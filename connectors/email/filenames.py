"""Attachment names that are safe to show and to save.

A sender chooses the name, so it may carry a path ("../../etc/passwd",
"C:\\Users\\x\\run.bat"), control characters, a right-to-left override
that turns "invoice\u202efdp.exe" into "invoiceexe.pdf" on screen, a
Windows device name, or nothing at all.
"""

from __future__ import annotations

import re
import unicodedata

MAX_BYTES = 255
_UNPORTABLE = re.compile(r'[<>:"|?*]')
_SPACES = re.compile(r"\s+")
_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/json": ".json",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "text/rfc822-headers": ".txt",
}
_DEFAULT_STEMS = {
    "message/rfc822": "message",
    "message/global": "message",
    "message/delivery-status": "delivery-status",
    "message/disposition-notification": "disposition-notification",
    "text/rfc822-headers": "original-headers",
}


def safe_filename(name: str | None, content_type: str) -> str:
    """The last path component of `name`, NFC-normalised, without control,
    format (bidi, zero-width) or Windows-reserved characters, trimmed of
    dots and spaces, at most 255 UTF-8 bytes with the extension kept; a
    name derived from the content type when nothing usable is left."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    text = _UNPORTABLE.sub("_", _SPACES.sub(" ", text)).strip(" .")
    stem, dot, _ = text.rpartition(".")
    if (stem if dot else text).lower() in _DEVICES:
        text = "_" + text
    if not text:
        text = _DEFAULT_STEMS.get(content_type, "attachment") + _EXTENSIONS.get(
            content_type, ".bin"
        )
    return _truncate(text)


def _truncate(text: str) -> str:
    if len(text.encode("utf-8")) <= MAX_BYTES:
        return text
    stem, dot, ext = text.rpartition(".")
    suffix = dot + ext if dot and stem and len(ext.encode("utf-8")) <= 20 else ""
    body = stem if suffix else text
    budget = MAX_BYTES - len(suffix.encode("utf-8"))
    while len(body.encode("utf-8")) > budget:
        body = body[: max(1, len(body) - max(1, (len(body.encode("utf-8")) - budget) // 4))]
    return (body.rstrip(" .") or "attachment") + suffix
