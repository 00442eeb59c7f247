"""Sniffing a file's type from its bytes, and cleaning its name
(PROTOCOLS.md P7). Pure: no I/O."""

from __future__ import annotations

import pytest

from server.domain.sniff import MAX_FILENAME, clean_filename, is_inline_image, sniff

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def ooxml(part: bytes) -> bytes:
    return b"PK\x03\x04" + b"\x00" * 26 + b"[Content_Types].xml" + b"PK\x03\x04" + part


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "text/html", "image/png"),
        (b"\xff\xd8\xff\xdb....", None, "image/jpeg"),
        (b"GIF87a....", None, "image/gif"),
        (b"GIF89a....", None, "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "image/webp", "application/octet-stream"),
        (b"%PDF-1.4\n", None, "application/pdf"),
        (b"PK\x03\x04 some archive", None, "application/zip"),
        (b"PK\x05\x06" + b"\x00" * 18, None, "application/zip"),
        (ooxml(b"word/document.xml"), None, DOCX),
        (ooxml(b"xl/workbook.xml"), "application/zip", XLSX),
        (b"hello\nworld\n", "image/png", "text/plain"),
        ("héllo wörld".encode(), None, "text/plain"),
        (b"a,b\n1,2\n", "text/csv; charset=utf-8", "text/csv"),
        (b"# Title\n", "text/markdown", "text/markdown"),
        # The hint can't make text anything but plain data.
        (b"hello", "text/html", "text/plain"),
        (b"alert(1)", "application/javascript", "text/plain"),
        # Markup is never text: nothing may be tempted to render it.
        (b"<!doctype html><p>hi", "image/png", "application/octet-stream"),
        (b"  \n<html>", "text/plain", "application/octet-stream"),
        (b"\xef\xbb\xbf<svg/>", None, "application/octet-stream"),
        (b'<?xml version="1.0"?><svg onload="x"/>', "image/svg+xml", "application/octet-stream"),
        (b"Dear sir, <script>alert(1)</script>", None, "application/octet-stream"),
        (b"text with a \x00 NUL", None, "application/octet-stream"),
        (b"\xff\xfe not utf-8", None, "application/octet-stream"),
        (b"\x7fELF\x02\x01\x01", None, "application/octet-stream"),
    ],
)
def test_sniff(data: bytes, declared: str | None, expected: str) -> None:
    assert sniff(data, declared) == expected


def test_only_raster_images_are_inline() -> None:
    assert [t for t in ("image/png", "image/jpeg", "image/gif", "image/webp") if is_inline_image(t)]
    for other in ("image/svg+xml", "text/html", "text/plain", "application/pdf", "image/bmp"):
        assert not is_inline_image(other)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ann\\photo.jpg", "photo.jpg"),
        ("/abs/path/", "file"),
        ("..", "file"),
        ("", "file"),
        (".htaccess", "htaccess"),
        ("  spaced \t  out .txt ", "spaced out .txt"),
        ("new\nline\r.txt", "newline.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # right-to-left override
        ("zero\u200bwidth.png", "zerowidth.png"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("tail dots...", "tail dots"),
        ("Cafe\u0301.txt", "Café.txt"),  # NFC
    ],
)
def test_clean_filename(raw: str, expected: str) -> None:
    assert clean_filename(raw) == expected


def test_long_names_keep_their_extension() -> None:
    name = clean_filename("a" * 500 + ".docx")
    assert len(name) == MAX_FILENAME and name.endswith("a.docx")
    odd = clean_filename("b" * 500 + "." + "x" * 40)  # an "extension" too long to be one
    assert len(odd) == MAX_FILENAME and odd == "b" * MAX_FILENAME
