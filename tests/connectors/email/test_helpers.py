"""The pieces parse_email is built from: header decoding, charsets,
filenames, format=flowed, HTML to text and HTML sanitising."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.email import Address, Limits, charsets, parse_email, sanitize_html
from connectors.email import headers as h
from connectors.email.filenames import safe_filename
from connectors.email.flowed import unflow
from connectors.email.html_text import html_to_text
from connectors.email.sanitize import MAX_DEPTH, MAX_ESCAPES, strip_tags, too_costly
from server import sanitize as server_sanitize
from server.domain.html_policy import LINK_REL, URL_SCHEMES

# --- Encoded words ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
        ("=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between words goes
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("=?utf-8?b?8J+T?= =?utf-8?b?pg==?=", "📦"),  # one character split in two words
        ("=?iso-8859-1?q?caf=E9?= =?utf-8?q?_ok?=", "café ok"),
        ("=?utf-8*de?q?Stra=C3=9Fe?=", "Straße"),  # RFC 2231 language suffix
        ("=?utf-8?b?R3LDvMOfZQ?=", "Grüße"),  # padding missing
        ("=?utf-8?b?R3L!!DvMOfZQ==?=", "Grüße"),  # junk in base64
        ("=?x-bogus?q?caf=E9?=", "caf\ufffd"),
        ("=?unicode-escape?q?=5Cu0041?=", "\\u0041"),  # not run as a Python codec
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("plain text", "plain text"),
    ],
)
def test_decode_words(value: str, expected: str) -> None:
    assert h.decode_words(value) == expected


def test_header_text_removes_control_and_bidi_characters() -> None:
    assert h.header_text("=?utf-8?q?a=0D=0Ab=00c=E2=80=AEd=09e?=") == "a bcd e"
    assert h.header_text("  spaced \t out  ") == "spaced out"


def test_raw_eight_bit_header_values() -> None:
    assert h.as_text("Gr\udcc3\udcbc\udcc3\udc9fe") == "Grüße"  # UTF-8 bytes
    assert h.as_text("Gr\udcfc\udcdfe") == "Grüße"  # Latin-1 bytes


def test_addresses_split_before_names_are_decoded() -> None:
    found = h.addresses(["=?utf-8?q?Doe=2C_Jane?= <jane@example.com>, bob@EXAMPLE.com"])
    assert found == [Address("Doe, Jane", "jane@example.com"), Address("", "bob@example.com")]


def test_addresses_survive_thousands_of_nested_comments() -> None:
    assert h.addresses(["(" * 5000 + "a@example.com"])[0].address.endswith("a@example.com")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@b>", ["a@b"]),
        ("  <a@b>  <c@d>\t<a@b>", ["a@b", "c@d"]),
        ("<a@b> (comment <x@y>)", ["a@b", "x@y"]),
        ("a@b c@d", ["a@b", "c@d"]),
        ("<has space@b>", ["space@b"]),
        ("", []),
        (None, []),
    ],
)
def test_message_ids(value: str | None, expected: list[str]) -> None:
    assert h.message_ids(value) == expected


def test_dates() -> None:
    assert h.date("Tue, 12 Mar 2024 10:00:00 -0000") == datetime(2024, 3, 12, 10, tzinfo=UTC)
    assert h.date("12 Mar 2024 10:00 +0100") is not None
    assert h.date("not a date") is None
    assert h.date("Tue, 12 Mar 2024 10:00:00 +9999") is None
    assert h.date(None) is None


def test_params_rfc2231_and_repeats() -> None:
    main, found = h.params("Attachment; filename*0*=utf-8''%C3%A4; filename*1=.pdf; size=1; size=2")
    assert main == "attachment"
    assert found == {"filename": "ä.pdf", "size": "1"}
    assert h.params("text/plain; charset*=x-bogus''%E9") == ("text/plain", {"charset": "\ufffd"})
    assert h.params(None) == ("", {})


# --- Charsets -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "charset", "text", "warning"),
    [
        ("Grüße".encode(), "utf-8", "Grüße", None),
        ("Grüße".encode(), None, "Grüße", None),
        ("Grüße".encode("cp1252"), None, "Grüße", "text without a charset decoded as windows-1252"),
        ("Grüße".encode(), "us-ascii", "Grüße", None),
        ("€".encode("cp1252"), "iso-8859-1", "€", None),  # labelled Latin-1, really windows-1252
        (
            "Grüße".encode("cp1252"),
            "utf-8",
            "Grüße",
            "charset utf-8 does not match; decoded as windows-1252",
        ),
        (b"\x81\x8d", "utf-8", "\ufffd\ufffd", "charset utf-8 decoded with replacement"),
        ("שלום".encode("iso8859-8"), "iso-8859-8-i", "שלום", None),
        ("見積".encode("cp932"), "Shift_JIS", "見積", None),
        (b"ok", "x-unknown", "ok", "unknown charset 'x-unknown' decoded as UTF-8"),
        (
            b"\xff",
            "x-unknown",
            "\ufffd",
            "unknown charset 'x-unknown' decoded as UTF-8 with replacement",
        ),
        (b"\\x41", "unicode_escape", "\\x41", "unknown charset 'unicode_escape' decoded as UTF-8"),
        (b"a\x00b", "utf-8", "ab", None),
        (b"+2D3-", "utf-7", "\ufffd", "charset utf-7 decoded with replacement"),
    ],
)
def test_charsets(data: bytes, charset: str | None, text: str, warning: str | None) -> None:
    assert charsets.decode(data, charset) == (text, warning)


def test_non_text_codecs_are_unknown_charsets() -> None:
    for name in [
        "zlib",
        "base64",
        "rot13",
        "hex",
        "idna",
        "punycode",
        "undefined",
        "raw_unicode_escape",
    ]:
        assert charsets.resolve(name) is None, name


# --- Filenames ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("report.pdf", "application/pdf", "report.pdf"),
        ("../../etc/passwd", "text/plain", "passwd"),
        ("C:\\Users\\x\\run.bat", "application/octet-stream", "run.bat"),
        ("invoice\u202efdp.exe", "application/octet-stream", "invoicefdp.exe"),
        ("zero\u200bwidth.txt", "text/plain", "zerowidth.txt"),
        ('a<b>c:d"e|f?g*.txt', "text/plain", "a_b_c_d_e_f_g_.txt"),
        ("  .hidden.  ", "text/plain", "hidden"),
        ("NUL", "text/plain", "_NUL"),
        ("com1.log", "text/plain", "_com1.log"),
        ("", "image/png", "attachment.png"),
        ("....", "application/x-unknown", "attachment.bin"),
        (None, "message/rfc822", "message.eml"),
        ("Cafe\u0301.txt", "text/plain", "Café.txt"),  # NFC
    ],
)
def test_safe_filename(name: str | None, content_type: str, expected: str) -> None:
    assert safe_filename(name, content_type) == expected


def test_long_filenames_keep_their_extension() -> None:
    name = safe_filename("x" * 400 + ".tar.gz", "application/gzip")
    assert name.endswith(".gz") and len(name.encode()) == 255


# --- format=flowed ----------------------------------------------------------------


def test_unflow() -> None:
    text = "one \ntwo \nthree\n> quoted \n> more\n>> deeper\n-- \nsig\n From stuffed\n"
    assert unflow(text) == "one two three\n> quoted more\n>> deeper\n-- \nsig\nFrom stuffed\n"
    assert unflow("a \nb", delsp=True) == "ab"


# --- HTML to text -----------------------------------------------------------------


def test_html_to_text() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<p>Hello&nbsp;<b>you</b>,</p><div>line one</div><div>line two<br>three</div>"
        "<ul><li>a</li><li>b</li></ul><table><tr><td>c1</td><td>c2</td></tr></table>"
        "<blockquote><p>quoted</p><blockquote>deeper</blockquote></blockquote>"
        "<pre>  keep\n  spaces</pre><hr>end &amp; &lt;done&gt;</body></html>"
    )
    assert html_to_text(html) == (
        "Hello you,\n\nline one\nline two\nthree\n\n- a\n- b\n\nc1 c2\n\n"
        "> quoted\n\n> > deeper\n\n  keep\n  spaces\n\n---\n\nend & <done>"
    )


# --- Sanitising ---------------------------------------------------------------------


def test_the_allow_list_is_shared_with_the_server() -> None:
    assert frozenset({"http", "https", "mailto", "cid"}) == URL_SCHEMES
    assert LINK_REL == "noopener noreferrer nofollow"
    html = '<a href="https://x.example">x</a><img src="cid:a@b"><a href="javascript:x">y</a>'
    assert sanitize_html(html) == server_sanitize.sanitize_html(html)


def test_sanitize_drops_the_document_title() -> None:
    assert sanitize_html("<html><head><title>Secret</title></head><body>Hi</body></html>") == "Hi"


def test_too_costly() -> None:
    assert too_costly("<p>fine &amp; dandy</p>", 1024) is None
    assert too_costly("x" * 2000, 1024) == "HTML body of 2000 bytes is over the 1024 limit"
    assert too_costly("&" * (MAX_ESCAPES + 1), 10**7) is not None
    assert too_costly("<div>" * (MAX_DEPTH + 1), 10**7) is not None
    assert too_costly("<div>" * MAX_DEPTH, 10**7) is None
    assert too_costly("<p>" * 50_000 + "<br>" * 50_000 + "<div/>" * 5000, 10**7) is None
    assert too_costly("<div></div>" * 50_000, 10**7) is None


def test_strip_tags() -> None:
    assert strip_tags("<p>a &amp; b</p>\n\n\n\n<div>c</div>") == "a & b\n\nc"


def test_costly_html_mail_is_kept_as_an_attachment() -> None:
    html = "<div>" * 2000 + "deep &amp; text"
    raw = b"From: a@example.com\nContent-Type: text/html\n\n" + html.encode()
    parsed = parse_email(raw)
    assert parsed.html is None
    assert parsed.text == "deep & text"
    assert parsed.warnings == ("HTML body nests deeper than 1000 elements; kept as an attachment",)
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.content_type, attachment.inline) == (
        "message.html",
        "text/html",
        False,
    )
    assert attachment.data == html.encode()


def test_an_html_alternative_over_the_limit_keeps_the_plain_text() -> None:
    raw = (
        b"From: a@example.com\nContent-Type: multipart/alternative; boundary=a\n\n"
        b"--a\nContent-Type: text/plain\n\nplain version\n"
        b"--a\nContent-Type: text/html\n\n<p>" + b"x" * 5000 + b"</p>\n--a--\n"
    )
    parsed = parse_email(raw, limits=Limits(max_html_bytes=1000))
    assert (parsed.text, parsed.html) == ("plain version", None)
    assert parsed.attachments[0].filename == "message.html"
