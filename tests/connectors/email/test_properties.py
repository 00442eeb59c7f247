"""Property tests: whatever the bytes, parse_email answers a ParsedEmail
(keeping the invariants of test_parse) or one of its two errors; sanitised
HTML never carries script, handlers or javascript: URLs."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import MailError, charsets, parse_email, sanitize_html
from connectors.email import headers as h
from connectors.email.reply_text import extract_reply
from tests.connectors.email.test_parse import assert_safe_html, check_invariants

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.eml"))
FILES = {p.name: p.read_bytes() for p in CORPUS}

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_refuse(raw: bytes) -> None:
    try:
        parsed = parse_email(raw)
    except MailError as error:  # MailRefused or MailUnparseable, with a reason
        assert error.reason
        return
    check_invariants(parsed)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    parse_or_refuse(raw)


# Pieces that MIME parsers trip on, glued together at random.
TOKENS = [
    b"\n",
    b"\r\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b'"',
    b"\\",
    b"<",
    b">",
    b"(",
    b")",
    b"=",
    b"?",
    b"=?",
    b"?=",
    b"=?utf-8?b?",
    b"=?x-bogus?q?",
    b"=?utf-8*en?Q?a=C3?=",
    b"*0*=",
    b"--",
    b"--b",
    b"--b--",
    b"boundary=b",
    b'boundary="b"',
    b"charset=",
    b"utf-8",
    b"utf-7",
    b"unicode_escape",
    b"idna",
    b"From: ",
    b"To: ",
    b"Subject: ",
    b"Message-ID: ",
    b"References: ",
    b"Date: ",
    b"Content-Type: ",
    b"Content-Transfer-Encoding: ",
    b"Content-Disposition: ",
    b"multipart/mixed",
    b"multipart/alternative",
    b"multipart/related",
    b"multipart/report",
    b"message/rfc822",
    b"message/delivery-status",
    b"text/html",
    b"text/plain",
    b"base64",
    b"quoted-printable",
    b"x-uuencode",
    b"begin 644 f\n",
    b"filename*=utf-8''%FF%00",
    b'name="../x"',
    b"report-type=delivery-status",
    b"Status: 5.1.1",
    b"Action: failed",
    b"Final-Recipient: rfc822; a@b",
    b"<script>",
    b"<img onerror=x>",
    b"javascript:",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xc3\xa4",
    b"\xe2\x80\xae",
    b"\xed\xa0\x80",
    b"a@b.example",
    b"On Mon, A wrote:",
    b"> ",
    b"-- ",
    b"format=flowed",
    b"delsp=yes",
]


@st.composite
def mime_soup(draw: st.DrawFn) -> bytes:
    head = b"From: a@b.example\nContent-Type: multipart/mixed; boundary=b\n"
    body = draw(st.lists(st.sampled_from(TOKENS) | st.binary(max_size=12), max_size=120))
    return head + b"".join(body)


@FUZZ
@given(mime_soup())
def test_mime_soup(raw: bytes) -> None:
    parse_or_refuse(raw)


@st.composite
def mutated_corpus_file(draw: st.DrawFn) -> bytes:
    data = bytearray(FILES[draw(st.sampled_from(sorted(FILES)))])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate", "token"])):
            case "flip":
                data[at] = draw(st.integers(0, 255))
            case "delete":
                del data[at : at + draw(st.integers(1, 64))]
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=32))
            case "duplicate":
                data[at:at] = data[at : at + draw(st.integers(1, 256))]
            case "truncate":
                del data[at:]
            case "token":
                data[at:at] = draw(st.sampled_from(TOKENS))
    return bytes(data)


@FUZZ
@given(mutated_corpus_file())
def test_mutated_corpus_files(raw: bytes) -> None:
    parse_or_refuse(raw)


@FUZZ
@given(name=st.sampled_from(sorted(FILES)), cut=st.integers(0, 4000))
def test_truncated_corpus_files(name: str, cut: int) -> None:
    parse_or_refuse(FILES[name][:cut])


# --- Headers ------------------------------------------------------------------

HEADER_TEXT = st.text(
    alphabet=st.sampled_from(list('aZ09 :;,<>@"\\()=?_*-.\t\r\n\x00\x7fé€😀\u202e')),
    max_size=80,
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["From", "To", "Cc", "Reply-To", "Subject", "Message-ID", "Date", "References"]
            ),
            HEADER_TEXT | st.builds(lambda t: f"=?utf-8?q?{t}?=", HEADER_TEXT),
            st.sampled_from(["utf-8", "latin-1"]),
        ),
        max_size=12,
    )
)
def test_hostile_header_values(fields: list[tuple[str, str, str]]) -> None:
    raw = b"".join(
        name.encode() + b": " + value.encode(encoding, "replace") + b"\n"
        for name, value, encoding in fields
    )
    parse_or_refuse(b"X-First: 1\n" + raw + b"\nbody\n")


@FUZZ
@given(HEADER_TEXT)
def test_header_text_is_one_clean_line(value: str) -> None:
    text = h.header_text(value)
    assert not any(ch in text for ch in "\r\n\x00\x7f\u202e")
    assert text == text.strip()


@FUZZ
@given(
    st.binary(max_size=256),
    st.text(max_size=24)
    | st.sampled_from(
        ["utf-7", "idna", "rot13", "zlib", "unicode_escape", "utf-16", "x-unknown", ""]
    ),
)
def test_any_bytes_in_any_charset_decode(data: bytes, charset: str) -> None:
    text, _ = charsets.decode(data, charset)
    assert "\x00" not in text
    text.encode("utf-8")


# --- Reply text ---------------------------------------------------------------

LINES = st.sampled_from(
    [
        "Thanks!",
        "",
        "> quoted",
        ">",
        "-- ",
        "--",
        "Sent from my iPhone",
        "On Mon, Ann wrote:",
        "From: A",
        "Sent: Monday",
        "Subject: x",
        "To: B",
        "-----Original Message-----",
        "________________________________",
        "---------- Forwarded message ---------",
        "Am 1.1.2024 schrieb A:",
        "Le 1 janv. 2024, A a écrit :",
        "plain words",
        "  indented",
    ]
)


@FUZZ
@given(
    st.lists(LINES | st.text(max_size=30), max_size=40),
    st.none() | st.sampled_from(["Re: x", "Fwd: x"]),
)
def test_reply_text_is_made_of_the_original_lines(lines: list[str], subject: str | None) -> None:
    text = "\n".join(lines)
    reply = extract_reply(text, subject=subject)
    assert bool(reply) == bool(text.strip())
    original = {
        line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    }
    assert all(not line or line in original for line in reply.split("\n"))


# --- Sanitised HTML -----------------------------------------------------------

HOSTILE_HTML = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<script",
    "<img src=x onerror=alert(1)>",
    "<img src=\"x\" OnError = 'alert(1)'>",
    "<svg/onload=alert(1)>",
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">a</a>',
    "<a href=' javascript:x'>",
    '<a href="java&#x09;script:alert(1)">',
    '<a href="&#106;avascript:alert(1)">',
    '<a href="jav\tascript:alert(1)">',
    '<a href="vbscript:x">',
    '<a href="data:text/html,x">',
    '<iframe src="javascript:alert(1)"></iframe>',
    "<object data=x>",
    "<embed src=x>",
    '<form action="javascript:x"><button formaction="javascript:x">',
    '<math><mi xlink:href="javascript:x">',
    "<style>@import 'x'</style>",
    '<div style="background:url(javascript:x)">',
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<a href="https://ok.example">ok</a>',
    '<img src="cid:a@b">',
    "<p>",
    "</p>",
    "<b>",
    '"',
    "'",
    "<",
    ">",
    "=",
    " onmouseover=alert(1) ",
    "javascript:",
    "&lt;script&gt;",
    '<table background="javascript:x">',
    "<input onfocus=alert(1) autofocus>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)>",
    '<base href="javascript:x//">',
    '<meta http-equiv=refresh content="0;url=javascript:x">',
]


@FUZZ
@given(st.lists(st.sampled_from(HOSTILE_HTML) | st.text(max_size=8), max_size=40))
def test_sanitised_html_is_safe(pieces: list[str]) -> None:
    html = "".join(pieces)
    assert_safe_html(sanitize_html(html))


@FUZZ
@given(st.lists(st.sampled_from(HOSTILE_HTML) | st.text(max_size=8), max_size=30))
def test_html_mail_is_sanitised(pieces: list[str]) -> None:
    body = "".join(pieces).encode("utf-8", "surrogatepass")
    raw = b"From: a@b.example\nContent-Type: text/html; charset=utf-8\n\n" + body
    parsed = parse_email(raw)
    check_invariants(parsed)
