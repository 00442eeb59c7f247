"""render_email (PROTOCOLS.md P4): outbound mail as bytes that the repo's
own parser and the standard library read back the same, that no subject,
name or reference can add a header to, and that are the same bytes every
time for the same message."""

from __future__ import annotations

import dataclasses
import datetime
import email.policy
import re
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import Address, parse_email
from connectors.email.render import (
    MAX_REFERENCES,
    OutboundAttachment,
    OutboundEmail,
    envelope_recipients,
    render_email,
    text_to_html,
)
from server.domain.email_address import envelope_address
from server.domain.email_subjects import DEFAULT_REPLY_SUBJECT, clean_text, reply_subject
from tests.connectors.email.test_parse import assert_safe_html

DATE = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
MESSAGE_ID = "<tl.aaaabbbb.ccccdddd@mail.acme.example>"
PDF = b"%PDF-1.4\n\x00\xff binary \r\n stuff"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make(**changes: Any) -> OutboundEmail:
    base = OutboundEmail(
        from_address=Address("Acme Support", "support@acme.example"),
        to=(Address("Jane Doe", "jane@example.com"),),
        subject="Your order",
        message_id=MESSAGE_ID,
        date=DATE,
        text="Hello Jane,\n\nYour order shipped.\n",
    )
    return dataclasses.replace(base, **changes)


def std(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def header_lines(raw: bytes) -> list[bytes]:
    head, sep, _ = raw.partition(b"\r\n\r\n")
    assert sep
    return head.split(b"\r\n")


def field_names(raw: bytes) -> list[str]:
    return [
        line.split(b":", 1)[0].decode("ascii")
        for line in header_lines(raw)
        if not line.startswith((b" ", b"\t"))
    ]


def check_lines(raw: bytes, *, header_limit: int = 998) -> None:
    """CRLF everywhere (no bare CR or LF), no line over 998 octets, header
    lines within `header_limit`, and nothing but ASCII in the header block."""
    assert raw.endswith(b"\r\n")
    lines = raw[:-2].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line
        assert b"\n" not in line
        assert len(line) <= 998
    for line in header_lines(raw):
        assert line.isascii()
        assert len(line) <= header_limit, line


def body_text(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


FULL = make(
    from_address=Address("Zoë from Acme", "support@acme.example"),
    to=(Address("Jane Doe", "jane@example.com"), Address("", "bob@bücher.example")),
    cc=(Address('Doe, "JD" Jr.', "jd@example.com"),),
    reply_to=Address("", "reply+tok.sig@reply.acme.example"),
    subject="Re: Ünïcödé 🎉 order",
    in_reply_to="CAF=abc+1@mail.gmail.com",
    references=("<first@example.com>", "second@example.com"),
    text="Hi Jane,\n\nSee https://acme.example/o/1?a=1&b=2.\n.\n..dots\nThanks",
    html="<p>Hi <b>Jane</b></p><p>See the order.</p>",
    attachments=(
        OutboundAttachment("résumé.pdf", "application/pdf", PDF),
        OutboundAttachment("chart.png", "image/png", PNG),
    ),
    auto_submitted="auto-replied",
    list_unsubscribe_url="https://acme.example/u/tok123",
)


# --- Round trip -----------------------------------------------------------------


def test_round_trip_through_parse_email() -> None:
    parsed = parse_email(render_email(FULL))
    assert parsed.warnings == ()
    assert parsed.subject == "Re: Ünïcödé 🎉 order"
    assert (parsed.from_name, parsed.from_address) == ("Zoë from Acme", "support@acme.example")
    assert parsed.to == (
        Address("Jane Doe", "jane@example.com"),
        Address("", "bob@xn--bcher-kva.example"),
    )
    assert parsed.cc == (Address('Doe, "JD" Jr.', "jd@example.com"),)
    assert parsed.reply_to == (Address("", "reply+tok.sig@reply.acme.example"),)
    assert parsed.message_id == "tl.aaaabbbb.ccccdddd@mail.acme.example"
    assert parsed.in_reply_to == ("CAF=abc+1@mail.gmail.com",)
    # In-Reply-To is appended to References when the caller left it out.
    assert parsed.references == (
        "first@example.com",
        "second@example.com",
        "CAF=abc+1@mail.gmail.com",
    )
    assert parsed.date == DATE
    assert parsed.text == FULL.text
    assert parsed.html is not None
    assert "<p>Hi <b>Jane</b></p><p>See the order.</p>" in parsed.html
    assert [(a.filename, a.content_type, a.data, a.inline) for a in parsed.attachments] == [
        ("résumé.pdf", "application/pdf", PDF, False),
        ("chart.png", "image/png", PNG, False),
    ]
    assert parsed.auto.reason == "Auto-Submitted: auto-replied"
    assert not parsed.auto.may_auto_respond


def test_round_trip_through_the_standard_library() -> None:
    message = std(render_email(FULL))
    assert message.defects == []
    assert message["Subject"] == "Re: Ünïcödé 🎉 order"
    assert str(message["From"]) == "Zoë from Acme <support@acme.example>"
    assert [a.display_name for a in message["To"].addresses] == ["Jane Doe", ""]
    assert [a.addr_spec for a in message["To"].addresses] == [
        "jane@example.com",
        "bob@xn--bcher-kva.example",
    ]
    assert message["Cc"].addresses[0].display_name == 'Doe, "JD" Jr.'
    assert message["Message-ID"] == MESSAGE_ID
    assert message["In-Reply-To"] == "<CAF=abc+1@mail.gmail.com>"
    assert message["References"].split() == [
        "<first@example.com>",
        "<second@example.com>",
        "<CAF=abc+1@mail.gmail.com>",
    ]
    assert message["Date"].datetime == DATE
    assert message["MIME-Version"] == "1.0"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["List-Unsubscribe"] == "<https://acme.example/u/tok123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body_text(message, "plain") == FULL.text
    assert body_text(message, "html").startswith("<!doctype html>\n<html>")
    found = [
        (a.get_filename(), a.get_content_type(), a.get_content())
        for a in message.iter_attachments()
    ]
    assert found == [("résumé.pdf", "application/pdf", PDF), ("chart.png", "image/png", PNG)]
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/pdf",
        "image/png",
    ]
    check_lines(render_email(FULL), header_limit=78)


def test_no_attachments_is_multipart_alternative_alone() -> None:
    raw = render_email(make())
    message = std(raw)
    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert field_names(raw) == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    ]
    assert "Re:" not in message["Subject"]


def test_exact_bytes_of_a_small_message() -> None:
    """The whole format in one place; any change to it shows up here."""
    raw = render_email(make(text="Hello Jane,\n\nYour order shipped."))
    boundary = re.search(rb'boundary="([^"]+)"', raw)
    assert boundary is not None
    b = boundary.group(1).decode()
    assert raw.decode("ascii") == (
        "From: Acme Support <support@acme.example>\r\n"
        "To: Jane Doe <jane@example.com>\r\n"
        "Subject: Your order\r\n"
        "Date: Mon, 06 May 2024 07:08:09 +0000\r\n"
        f"Message-ID: {MESSAGE_ID}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative;\r\n"
        f' boundary="{b}"\r\n'
        "\r\n"
        f"--{b}\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        "Hello Jane,\r\n"
        "\r\n"
        "Your order shipped.\r\n"
        f"--{b}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<!doctype html>\r\n"
        '<html><head><meta charset=3D"utf-8"></head><body>\r\n'
        "<p>Hello Jane,</p>\r\n"
        "<p>Your order shipped.</p>\r\n"
        "</body></html>\r\n"
        "\r\n"
        f"--{b}--\r\n"
    )


# --- Header injection -------------------------------------------------------------

BREAKS = ["\r\n", "\n", "\r", "\x00", "\x85", "\u2028", "\u2029", "\x0b", "\x0c"]


@pytest.mark.parametrize("brk", BREAKS)
def test_line_breaks_in_subject_and_names_never_make_a_header(brk: str) -> None:
    raw = render_email(
        make(
            subject=f"Hi{brk}Bcc: evil@x.example",
            from_address=Address(f"Eve{brk}Bcc: evil@x.example", "support@acme.example"),
            to=(Address(f"Jane{brk}Bcc: evil@x.example{brk}", "jane@example.com"),),
        )
    )
    names = field_names(raw)
    assert names.count("Subject") == 1
    assert "Bcc" not in names
    assert b"\r\nBcc" not in raw
    message = std(raw)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hi Bcc: evil@x.example"
    assert message["From"].addresses[0].display_name == "Eve Bcc: evil@x.example"
    assert message["To"].addresses[0].display_name == "Jane Bcc: evil@x.example"
    assert len(message["To"].addresses) == 1
    check_lines(raw, header_limit=78)


def test_names_that_look_like_syntax_stay_one_name() -> None:
    tricky = [
        'a@b.example, "Evil" <evil@x.example>',
        "Jane <evil@x.example>",
        "=?utf-8?q?Bcc=3A_x?=",
        'back\\slash "quote"',
        "(comment) name",
    ]
    raw = render_email(
        make(to=tuple(Address(n, f"u{i}@example.com") for i, n in enumerate(tricky)))
    )
    parsed = parse_email(raw)
    assert parsed.to == tuple(Address(n, f"u{i}@example.com") for i, n in enumerate(tricky))
    assert [a.display_name for a in std(raw)["To"].addresses] == tricky


EXPECTED_FIELDS = ["From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version"]


@PROPERTY
@given(
    subject=st.text(max_size=300),
    names=st.lists(st.text(max_size=120), min_size=3, max_size=3),
    filename=st.text(max_size=300),
    text=st.text(max_size=500),
)
def test_any_subject_name_or_file_name_gives_exactly_the_expected_headers(
    subject: str, names: list[str], filename: str, text: str
) -> None:
    mail = make(
        subject=subject,
        from_address=Address(names[0], "support@acme.example"),
        to=(Address(names[1], "jane@example.com"), Address(names[2], "bob@example.com")),
        cc=(Address(names[2], "carol@example.com"),),
        text=text,
        attachments=(OutboundAttachment(filename, "text/plain", text.encode()),),
    )
    raw = render_email(mail)
    assert sorted(field_names(raw)) == sorted([*EXPECTED_FIELDS, "Content-Type"])
    # The short addresses leave room, so every header line fits in 78.
    check_lines(raw, header_limit=78)
    parsed = parse_email(raw)
    assert parsed.subject == clean_text(subject)
    assert std(raw)["Subject"] == clean_text(subject)
    assert parsed.from_name == clean_text(names[0])
    assert [a.name for a in parsed.to] == [clean_text(names[1]), clean_text(names[2])]
    assert len(parsed.attachments) == 1
    assert parsed.attachments[0].data == text.encode()
    expected_text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    assert body_text(std(raw), "plain") == expected_text


# --- Invalid input -----------------------------------------------------------------

BAD_ADDRESSES = [
    "",
    "plain",
    "a b@example.com",
    " a@example.com",
    "a@example.com ",
    "a@b@example.com",
    "<a@example.com>",
    "Jane <a@example.com>",
    "a@example.com\r\nBcc: evil@x.example",
    "a@example.com\nBcc: evil@x.example",
    '"quoted"@example.com',
    "a\\b@example.com",
    "a\x00b@example.com",
    "a@",
    "@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@-example.com",
    "a@exa_mple.com",
    "a@example..com",
    "a@example.com.",
    "a@[192.0.2.1]",
    "a@exa mple.com",
    "a@example.com>",
    "x" * 65 + "@example.com",
    "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["b" * 60] * 5),
    "a@straße.example",  # IDNA 2003 and 2008 disagree: refused
]


@pytest.mark.parametrize("bad", BAD_ADDRESSES)
@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("from_address", lambda a: {"from_address": a}),
        (r"to\[1\]", lambda a: {"to": (Address("", "ok@example.com"), a)}),
        (r"cc\[0\]", lambda a: {"cc": (a,)}),
        ("reply_to", lambda a: {"reply_to": a}),
    ],
)
def test_invalid_addresses_raise_naming_the_field(bad: str, field: str, change: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        render_email(make(**change(Address("Name", bad))))


def test_non_ascii_local_parts_need_smtputf8_which_is_not_supported() -> None:
    with pytest.raises(ValueError, match=r"^to\[0\]: non-ASCII local part \(SMTPUTF8"):
        render_email(make(to=(Address("", "jürgen@example.com"),)))


def test_internationalised_domains_are_idna_encoded() -> None:
    assert envelope_address("Info@Bücher.Example") == "Info@xn--bcher-kva.example"
    assert envelope_address("a@XN--BCHER-KVA.example") == "a@xn--bcher-kva.example"
    raw = render_email(make(to=(Address("Zoë", "zoe@日本.example"),)))
    assert std(raw)["To"].addresses[0].addr_spec == "zoe@xn--wgv71a.example"


def test_envelope_recipients_are_to_and_cc_once_each() -> None:
    mail = make(
        to=(Address("", "a@example.com"), Address("", "b@bücher.example")),
        cc=(Address("", "A@EXAMPLE.com"), Address("", "c@example.com")),
    )
    assert envelope_recipients(mail) == (
        "a@example.com",
        "b@xn--bcher-kva.example",
        "c@example.com",
    )
    with pytest.raises(ValueError, match=r"^cc\[0\]: "):
        envelope_recipients(make(cc=(Address("", "bad"),)))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "<abc>",
        "<a b@example.com>",
        "<a@example.com> <b@example.com>",
        "<a@example.com>\r\nBcc: evil@x.example",
        "<<a@example.com>>",
        "<a@example.com",
        "<a@b@example.com>",
        '<"a"@example.com>',
        "<a@exa mple.com>",
        "<é@example.com>",
        "<" + "a" * 600 + "@example.com>",
    ],
)
def test_invalid_message_ids_raise(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^message_id: "):
        render_email(make(message_id=bad))


def test_a_message_id_may_be_given_without_brackets() -> None:
    assert (
        std(render_email(make(message_id="m1@acme.example")))["Message-ID"] == "<m1@acme.example>"
    )


def test_junk_references_and_in_reply_to_are_dropped() -> None:
    raw = render_email(
        make(
            in_reply_to="not an id",
            references=(
                "<ok@example.com>",
                "junk",
                "<a b@example.com>",
                "<x@example.com>\r\nBcc: evil@x.example",
                "<ok@example.com>",  # a repeat
                "bare@example.com",
                "<lit@[192.0.2.1]>",
            ),
        )
    )
    assert "In-Reply-To" not in field_names(raw)
    assert "Bcc" not in field_names(raw)
    assert std(raw)["References"].split() == [
        "<ok@example.com>",
        "<bare@example.com>",
        "<lit@[192.0.2.1]>",
    ]


def test_long_references_keep_the_first_and_the_last_nine() -> None:
    refs = tuple(f"<ref{i}.{'x' * 60}@mail.example.com>" for i in range(30))
    raw = render_email(make(references=refs, in_reply_to=refs[-1]))
    assert std(raw)["References"].split() == [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
    check_lines(raw, header_limit=998)
    # Each id stays whole on its own line: never split or encoded.
    assert all(b"=?" not in line for line in header_lines(raw))


def test_other_invalid_fields_raise_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"^to: "):
        render_email(make(to=()))
    with pytest.raises(ValueError, match=r"^date: "):
        render_email(make(date=datetime.datetime(2024, 1, 1)))
    with pytest.raises(ValueError, match=r"^auto_submitted: "):
        render_email(make(auto_submitted="yes\r\nBcc: evil@x.example"))
    for url in [
        "javascript:alert(1)",
        "mailto:u@acme.example",
        "https://acme.example/u/a b",
        "https://acme.example/u/<a>",
        "https://acme.example/u/\r\nBcc: evil@x.example",
        "https://acme.example/u/é",
        "https://acme.example/" + "a" * 1000,
    ]:
        with pytest.raises(ValueError, match=r"^list_unsubscribe_url: "):
            render_email(make(list_unsubscribe_url=url))


def test_the_date_is_written_in_utc() -> None:
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    raw = render_email(make(date=datetime.datetime(2024, 5, 6, 12, 38, 9, tzinfo=india)))
    assert std(raw)["Date"] == "Mon, 06 May 2024 07:08:09 +0000"


# --- Non-ASCII ---------------------------------------------------------------------


def test_non_ascii_subject_names_and_file_names() -> None:
    raw = render_email(
        make(
            subject="Ünïcödé 🎉",
            from_address=Address("Zoë", "support@acme.example"),
            attachments=(OutboundAttachment("résumé.pdf", "application/pdf", PDF),),
        )
    )
    check_lines(raw, header_limit=78)
    assert b"=?utf-8?" in raw  # RFC 2047 in the headers
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9.pdf" in raw  # RFC 2231 in the parameters
    message = std(raw)
    assert message["Subject"] == "Ünïcödé 🎉"
    assert message["From"].addresses[0].display_name == "Zoë"
    assert [a.get_filename() for a in message.iter_attachments()] == ["résumé.pdf"]


def test_only_the_words_that_need_it_are_encoded() -> None:
    """Runs of plain words stay as they are, so long names are seldom split
    into adjacent encoded words (whose separating space Python 3.11's
    address parser wrongly keeps; every other reader drops it)."""
    name = "Jürgen Müller-Lüdenscheidt vom Kundendienst der Acme Großhandel GmbH"
    raw = render_email(make(from_address=Address(name, "support@acme.example"), subject=name))
    check_lines(raw, header_limit=78)
    assert re.search(rb"\?=\s+=\?", raw.partition(b"\r\n\r\n")[0]) is None
    message = std(raw)
    assert message["From"].addresses[0].display_name == name
    assert message["Subject"] == name
    assert b"?= vom Kundendienst" in raw
    assert b" der Acme =?utf-8?q?Gro=C3=9Fhandel?= GmbH\r\n" in raw


def test_long_subjects_and_file_names_fold() -> None:
    subject = "Ärger mit der Bestellung " * 12 + "x" * 200
    name = "Überweisungsbestätigung für die Rechnung vom März " * 4 + ".pdf"
    raw = render_email(
        make(subject=subject, attachments=(OutboundAttachment(name, "application/pdf", PDF),))
    )
    check_lines(raw, header_limit=78)
    parsed = parse_email(raw)
    assert parsed.subject == clean_text(subject)
    assert parsed.attachments[0].filename == clean_text(name)
    assert std(raw)["Subject"] == clean_text(subject)


def test_a_long_ascii_word_in_a_subject_is_encoded_to_fold() -> None:
    subject = "see https://acme.example/" + "a" * 300
    raw = render_email(make(subject=subject))
    check_lines(raw, header_limit=78)
    assert std(raw)["Subject"] == subject


def test_attachment_names_and_types_are_made_safe() -> None:
    raw = render_email(
        make(
            attachments=(
                OutboundAttachment("../../etc/passwd", "text/plain\r\nBcc: evil@x.example", b"x"),
                OutboundAttachment("evil\u202egpj.exe", "message/rfc822", b"y"),
                OutboundAttachment('a"b\r\nc.txt', "Text/Plain", b"z"),
                OutboundAttachment("", "image/png", b"w"),
            )
        )
    )
    assert "Bcc" not in field_names(raw)
    found = [(a.get_filename(), a.get_content_type()) for a in std(raw).iter_attachments()]
    assert found == [
        ("passwd", "application/octet-stream"),
        ("evilgpj.exe", "application/octet-stream"),
        ("a_bc.txt", "text/plain"),
        ("attachment.png", "image/png"),
    ]


# --- Bodies ------------------------------------------------------------------------


def test_bodies_have_crlf_lines_within_the_limit_and_round_trip() -> None:
    text = (
        "bare\rcr and\r\ncrlf and\nlf\n"
        + "long " * 2000
        + "\n.\n..two dots\n.leading dot\nFrom the start\ntrailing space \n"
        + "tab\tin = equals\n"
        + "é" * 3000
    )
    raw = render_email(make(text=text, html="<p>" + "x" * 5000 + "</p>"))
    check_lines(raw)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert body_text(std(raw), "plain") == expected
    assert parse_email(raw).text == expected
    # What an SMTP client sends (dot-stuffed) and a server gives back.
    stuffed = re.sub(rb"(?m)^\.", b"..", raw)
    assert re.sub(rb"(?m)^\.\.", b".", stuffed) == raw


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Plain short lines.\nAnother one.", "7bit"),
        ("Has = sign", "quoted-printable"),
        ("Trailing space ", "quoted-printable"),
        ("Grüße", "quoted-printable"),
        ("x" * 100, "quoted-printable"),
        ("bell\x07", "quoted-printable"),
    ],
)
def test_text_is_7bit_only_when_nothing_needs_encoding(text: str, encoding: str) -> None:
    plain = std(render_email(make(text=text))).get_body(("plain",))
    assert plain is not None
    assert plain["Content-Transfer-Encoding"] == encoding


def test_nul_and_lone_surrogates_never_break_rendering() -> None:
    raw = render_email(make(text="a\x00b \ud800 c", subject="s \udfff", html="<p>\ud800</p>"))
    assert body_text(std(raw), "plain") == "ab \ufffd c"
    assert std(raw)["Subject"] == "s \ufffd"


# --- HTML --------------------------------------------------------------------------

HOSTILE = (
    '<p onclick="steal()">Hi</p><script>alert(1)</script>'
    '<img src="x" onerror="alert(1)"><a href="javascript:alert(1)">link</a>'
    '<iframe src="https://evil.example"></iframe><style>p{}</style>'
    '<a href="https://ok.example/">ok</a>'
)


def test_hostile_html_is_sanitised_even_if_the_caller_forgot() -> None:
    html_part = body_text(std(render_email(make(html=HOSTILE))), "html")
    assert_safe_html(html_part)
    lowered = html_part.lower()
    assert "script" not in lowered
    assert "onerror" not in lowered
    assert "javascript:" not in lowered
    assert "Hi" in html_part
    assert '<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>' in html_part
    assert html_part.startswith('<!doctype html>\n<html><head><meta charset="utf-8"></head><body>')
    assert html_part.endswith("</body></html>\n")


def test_html_is_made_from_the_text_when_none_is_given_or_nothing_is_left() -> None:
    text = "Hi <Jane> & co\n\nhttps://acme.example/x"
    for html in [None, "<script>alert(1)</script>", "   "]:
        html_part = body_text(std(render_email(make(text=text, html=html))), "html")
        assert text_to_html(text) in html_part


def test_html_too_costly_to_sanitise_falls_back_to_the_text() -> None:
    html_part = body_text(std(render_email(make(text="plain", html="<div>" * 5000))), "html")
    assert "<div>" not in html_part
    assert "<p>plain</p>" in html_part


def test_text_to_html_escapes_and_links_http_only() -> None:
    rel = 'rel="noopener noreferrer nofollow"'
    assert text_to_html("a < b & \"c\" 'd'") == "<p>a &lt; b &amp; &quot;c&quot; &#x27;d&#x27;</p>"
    assert text_to_html("one\ntwo\n\n\n three\r\n") == "<p>one<br>\ntwo</p>\n<p>three</p>"
    assert text_to_html("") == ""
    assert text_to_html("\n \n") == ""
    assert text_to_html("see https://a.example/x?y=1&z=2.") == (
        f'<p>see <a href="https://a.example/x?y=1&amp;z=2" {rel}>https://a.example/x?y=1&amp;z=2</a>.</p>'
    )
    assert text_to_html("(HTTP://a.example/w_(b))") == (
        f'<p>(<a href="HTTP://a.example/w_(b)" {rel}>HTTP://a.example/w_(b)</a>)</p>'
    )
    for unlinked in [
        "javascript:alert(1)",
        "ftp://x.example",
        "data:text/html,x",
        "https://",
        "xhttps://a.example",
    ]:
        assert "<a " not in text_to_html(unlinked), unlinked
    # Only the http(s) URL inside is linked, never the javascript: around it.
    assert text_to_html("javascript://https://x.example") == (
        f'<p>javascript://<a href="https://x.example" {rel}>https://x.example</a></p>'
    )
    assert text_to_html('https://a.example/"onmouseover="x') == (
        f'<p><a href="https://a.example/" {rel}>https://a.example/</a>&quot;onmouseover=&quot;x</p>'
    )


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


# Pieces of links, markup and line breaks, glued together at random.
LINKISH = st.lists(
    st.sampled_from(
        [
            *("https://", "http://", "HTTPS://a.example/", "javascript:", "data:", "x", " "),
            *("\n", "\r\n", "<", ">", "&", '"', "'", "(", ")", "[", "]", ".", ":", "/", "="),
        ]
    )
    | st.text(max_size=4),
    max_size=60,
).map("".join)


@PROPERTY
@given(LINKISH)
def test_text_to_html_only_ever_makes_paragraphs_breaks_and_http_links(text: str) -> None:
    fragment = text_to_html(text)
    assert_safe_html(fragment)
    tags = _Tags()
    tags.feed(fragment)
    tags.close()
    for tag, attrs in tags.tags:
        assert tag in {"p", "br", "a"}
        if tag == "a":
            names = [name for name, _ in attrs]
            assert names == ["href", "rel"]
            href = dict(attrs)["href"] or ""
            assert href.lower().startswith(("http://", "https://"))


# --- Determinism -------------------------------------------------------------------


def test_rendering_is_deterministic() -> None:
    assert render_email(FULL) == render_email(FULL)
    assert render_email(FULL) == render_email(dataclasses.replace(FULL))


def boundaries(raw: bytes) -> list[bytes]:
    return re.findall(rb'boundary="([^"]+)"', raw)


def test_boundaries_depend_on_the_message_id() -> None:
    one = boundaries(render_email(FULL))
    other = boundaries(render_email(dataclasses.replace(FULL, message_id="<other@acme.example>")))
    assert len(one) == len(set(one)) == 2
    assert not set(one) & set(other)


def test_a_body_holding_the_boundary_cannot_end_its_part() -> None:
    first = boundaries(render_email(FULL))
    planted = "\n".join(f"--{b.decode()}\n--{b.decode()}--" for b in first)
    mail = dataclasses.replace(FULL, text=planted, html=f"<pre>{planted}</pre>")
    raw = render_email(mail)
    assert boundaries(raw) == first
    assert body_text(std(raw), "plain") == planted
    assert len(list(std(raw).iter_attachments())) == 2


# --- reply_subject -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Order", "Re: Order"),
        ("Re: Order", "Re: Order"),
        ("RE: re: Order", "Re: Order"),
        ("Re:Order", "Re: Order"),
        ("Re[2]: Order", "Re: Order"),
        ("AW: Re: SV: Antw: VS: Order", "Re: Order"),
        ("Re\uff1a Order", "Re: Order"),
        ("Fwd: Order", "Re: Fwd: Order"),
        ("Re: Fwd: Order", "Re: Fwd: Order"),
        ("Fwd: Re: Order", "Re: Fwd: Re: Order"),
        ("Regarding: Order", "Re: Regarding: Order"),
        ("  Order \r\n  #12\x00 ", "Re: Order #12"),
        ("", DEFAULT_REPLY_SUBJECT),
        (None, DEFAULT_REPLY_SUBJECT),
        ("Re:", DEFAULT_REPLY_SUBJECT),
        ("  RE:  re: ", DEFAULT_REPLY_SUBJECT),
    ],
)
def test_reply_subject(subject: str | None, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_huge_inputs_take_linear_time() -> None:
    """Each of these is quadratic in a naive implementation: minutes, not
    milliseconds, at these sizes."""
    assert reply_subject("Re:" * 100_000 + " Order") == "Re: Order"
    assert reply_subject("Re: " * 100_000) == DEFAULT_REPLY_SUBJECT
    fragment = text_to_html("https://a.example/" + ")" * 200_000)
    assert fragment.endswith(")" * 200_000 + "</p>")
    raw = render_email(make(subject="Ünï " * 50_000, text="x " * 200_000 + "\n" * 50_000))
    check_lines(raw, header_limit=78)


def test_reply_subject_fallback_is_the_callers() -> None:
    assert DEFAULT_REPLY_SUBJECT == "Re: your message"
    assert reply_subject(None, fallback="Your message to Acme") == "Your message to Acme"
    assert reply_subject("", fallback="A\r\nBcc: x") == "A Bcc: x"
