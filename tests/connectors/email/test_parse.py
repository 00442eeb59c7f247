"""parse_email over the corpus (one table, every file), the limits of
PROTOCOLS.md P4 on generated messages, and the invariants every parsed
message keeps."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from connectors.email import (
    DEFAULT_LIMITS,
    AutoKind,
    Limits,
    MailError,
    MailRefused,
    MailUnparseable,
    ParsedEmail,
    parse_email,
)
from tests.connectors.email.expectations import EXPECTATIONS

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.eml"))

SPECIAL_KEYS = {"raises", "text_contains", "html_contains", "html_excludes", "auto"}
ATTACHMENT_KEYS = {
    "filename",
    "content_type",
    "content_id",
    "inline",
    "data",
    "data_prefix",
    "size",
}
FIELDS = {f.name for f in dataclasses.fields(ParsedEmail)} | {"may_auto_respond"}


def test_every_corpus_file_has_an_entry_and_every_entry_a_file() -> None:
    assert len(FILES) >= 30
    assert set(FILES) == set(EXPECTATIONS)


def test_expectation_keys_are_known() -> None:
    # A misspelt key would otherwise be a check that silently never runs.
    for name, expected in EXPECTATIONS.items():
        unknown = set(expected) - SPECIAL_KEYS - FIELDS
        assert not unknown, f"{name}: {unknown}"
        for attachment in expected.get("attachments", []):
            assert set(attachment) <= ATTACHMENT_KEYS, name


@pytest.mark.parametrize("name", FILES)
def test_corpus_file(name: str) -> None:
    expected = EXPECTATIONS[name]
    raw = (CORPUS / name).read_bytes()
    if "raises" in expected:
        error, reason = expected["raises"]
        with pytest.raises(error) as caught:
            parse_email(raw)
        assert reason in caught.value.reason
        return

    parsed = parse_email(raw)
    check_invariants(parsed)
    assert parsed.size == len(raw)
    assert 0 < parsed.header_bytes <= len(raw)

    defaults: dict[str, Any] = {
        "attachments": [],
        "bounce": None,
        "warnings": (),
        "from_problem": None,
        "auto": (AutoKind.NONE, ""),
    }
    if "html" not in expected and "html_contains" not in expected:
        defaults["html"] = None
    for key, value in {**defaults, **expected}.items():
        check(key, value, parsed)


def check(key: str, value: Any, parsed: ParsedEmail) -> None:
    if key == "text_contains":
        for piece in value:
            assert piece in parsed.text
    elif key == "html_contains":
        assert parsed.html is not None
        for piece in value:
            assert piece in parsed.html
    elif key == "html_excludes":
        assert parsed.html is not None
        for piece in value:
            assert piece not in parsed.html.lower(), piece
    elif key == "auto":
        assert (parsed.auto.kind, parsed.auto.reason) == value
    elif key == "may_auto_respond":
        assert parsed.auto.may_auto_respond is value
    elif key == "attachments":
        assert len(parsed.attachments) == len(value)
        for attachment, wanted in zip(parsed.attachments, value, strict=True):
            for field, expected in wanted.items():
                if field == "data_prefix":
                    assert attachment.data.startswith(expected)
                elif field == "size":
                    assert len(attachment.data) == expected
                else:
                    assert getattr(attachment, field) == expected, field
    else:
        assert getattr(parsed, key) == value, key


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_invariants(parsed: ParsedEmail) -> None:
    """What holds for every message that parses, however broken."""
    one_line = [parsed.subject, parsed.from_name]
    for address in (*parsed.to, *parsed.cc, *parsed.reply_to):
        one_line += [address.name, address.address]
    for text in one_line:
        assert not _CONTROL.search(text), text
        assert text == text.strip()
    for msg_id in (parsed.message_id, *parsed.in_reply_to, *parsed.references):
        if msg_id is not None:
            assert msg_id and not re.search(r"[<>\s\x00-\x1f]", msg_id)
    for text in (parsed.text, parsed.reply_text, parsed.html or ""):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates
    assert "\r" not in parsed.text
    assert not parsed.text.strip() or parsed.reply_text.strip()
    if parsed.date is not None:
        assert parsed.date.tzinfo is not None
    if parsed.html is not None:
        assert_safe_html(parsed.html)
    for attachment in parsed.attachments:
        name = attachment.filename
        assert name and name.strip(" .") == name
        assert "/" not in name and "\\" not in name
        assert len(name.encode("utf-8")) <= 255
        assert all(unicodedata.category(ch) not in {"Cc", "Cf"} for ch in name)
        assert re.fullmatch(
            r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", attachment.content_type
        )
        assert attachment.content_id is None or not re.search(r"[<>\s]", attachment.content_id)
    assert len(parsed.warnings) == len(set(parsed.warnings))


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]


_SCHEME = re.compile(r"^\s*([a-z][a-z0-9+.-]*):", re.I)


def assert_safe_html(html: str) -> None:
    """No script, no event handler, no URL outside the allow-list."""
    assert "<script" not in html.lower()
    markup = _Markup()
    markup.feed(html)
    markup.close()
    assert not {"script", "iframe", "object", "embed", "form", "style", "svg"} & set(markup.tags)
    for name, value in markup.attrs:
        assert not name.startswith("on"), name
        assert name != "style"
        if name in {"href", "src", "action", "formaction", "background", "poster", "cite"}:
            cleaned = "".join(ch for ch in value if ch > " ")
            scheme = _SCHEME.match(cleaned)
            assert scheme is None or scheme.group(1).lower() in {"http", "https", "mailto", "cid"}


# --- Limits (PROTOCOLS.md P4) ------------------------------------------------


def test_default_limits_are_the_protocol_limits() -> None:
    assert DEFAULT_LIMITS.max_bytes == 25 * 1024 * 1024
    assert DEFAULT_LIMITS.max_parts == 200
    assert DEFAULT_LIMITS.max_depth == 10
    assert DEFAULT_LIMITS.max_header_bytes == 256 * 1024
    assert DEFAULT_LIMITS.max_header_count == 1000
    assert DEFAULT_LIMITS.max_html_bytes == 1024 * 1024


HEAD = b"From: a@example.com\nTo: b@example.com\nSubject: s\nMessage-ID: <m@example.com>\n"


def mixed(parts: int) -> bytes:
    """A multipart/mixed with `parts` text parts: parts + 1 entities."""
    body = b"".join(b"--b\nContent-Type: text/plain\n\npart %d\n" % i for i in range(parts))
    return HEAD + b"Content-Type: multipart/mixed; boundary=b\n\n" + body + b"--b--\n"


def nested(depth: int) -> bytes:
    """The innermost text part sits at `depth`."""
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=n%d\n\n--n%d\n" % (i, i) for i in range(depth)
    )
    closing = b"".join(b"\n--n%d--\n" % i for i in reversed(range(depth)))
    return HEAD + opening + b"Content-Type: text/plain\n\ndeep\n" + closing


def test_two_hundred_parts_are_accepted() -> None:
    parsed = parse_email(mixed(199))
    assert parsed.text.count("part ") == 199


def test_more_than_two_hundred_parts_are_refused() -> None:
    with pytest.raises(MailRefused, match="more than 200 MIME parts"):
        parse_email(mixed(200))


def test_a_large_message_with_thousands_of_parts_is_refused() -> None:
    with pytest.raises(MailRefused, match="MIME parts"):
        parse_email(mixed(20_000))


def test_nesting_depth_ten_is_accepted() -> None:
    assert parse_email(nested(10)).text == "deep"


def test_nesting_deeper_than_ten_is_refused() -> None:
    with pytest.raises(MailRefused, match="nesting deeper than 10"):
        parse_email(nested(11))


def test_a_very_deep_bomb_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(MailRefused, match="nesting"):
        parse_email(nested(5000))


def test_nested_forwarded_messages_count_as_depth() -> None:
    inner = b"Subject: inner\n\nhello\n"
    for _ in range(11):
        inner = b"Content-Type: message/rfc822\n\n" + inner
    with pytest.raises(MailRefused, match="nesting"):
        parse_email(HEAD + inner)


def test_a_message_over_25_mib_is_refused_before_parsing() -> None:
    raw = HEAD + b"\n" + b"x" * DEFAULT_LIMITS.max_bytes
    with pytest.raises(MailRefused, match="over the 26214400 limit"):
        parse_email(raw)


def test_a_message_at_the_size_limit_is_accepted() -> None:
    raw = HEAD + b"\n" + b"hello\n"
    assert parse_email(raw, limits=Limits(max_bytes=len(raw))).text == "hello"
    with pytest.raises(MailRefused):
        parse_email(raw, limits=Limits(max_bytes=len(raw) - 1))


def test_a_huge_header_block_is_refused() -> None:
    folded = b"Subject: " + b"\n ".join([b"y" * 70] * 4000) + b"\n"
    assert len(folded) > 256 * 1024
    with pytest.raises(MailRefused, match="header block over 262144 bytes"):
        parse_email(b"From: a@example.com\n" + folded + b"\nbody\n")


def test_a_huge_header_without_a_body_is_refused() -> None:
    with pytest.raises(MailRefused, match="header block"):
        parse_email(b"Subject: " + b"z" * (300 * 1024))


def test_too_many_header_fields_are_refused() -> None:
    fields = b"".join(b"X-Trace-%d: hop\n" % i for i in range(1001))
    with pytest.raises(MailRefused, match="more than 1000 header fields"):
        parse_email(b"From: a@example.com\n" + fields + b"\nbody\n")
    ok = b"".join(b"X-Trace-%d: hop\n" % i for i in range(999))
    assert parse_email(b"From: a@example.com\n" + ok + b"\nbody\n").header_count == 1000


def test_a_mime_part_with_too_many_header_fields_is_refused() -> None:
    fields = b"".join(b"X-P-%d: v\n" % i for i in range(20))
    raw = HEAD + b"Content-Type: multipart/mixed; boundary=b\n\n--b\n" + fields + b"\nx\n--b--\n"
    with pytest.raises(MailRefused, match="a MIME part has more than 10 header fields"):
        parse_email(raw, limits=Limits(max_header_count=10))


def test_a_content_type_with_too_many_parameters_is_refused() -> None:
    # The standard parser reads parameters in size x count time.
    params = b"".join(b"; p%d=v" % i for i in range(101))
    raw = HEAD + b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain"
    with pytest.raises(MailRefused, match="more than 100 parameters"):
        parse_email(raw + params + b"\n\nx\n--b--\n")
    assert parse_email(raw + params[: params.rindex(b";")] + b"\n\nx\n--b--\n").text == "x"


def test_a_huge_folded_content_disposition_in_a_part_is_refused() -> None:
    field = b"Content-Disposition: attachment;\n filename=" + b"a" * 17_000
    raw = HEAD + b"Content-Type: multipart/mixed; boundary=b\n\n--b\n" + field + b"\n\nx\n--b--\n"
    with pytest.raises(MailRefused, match="a MIME field is over 16384 bytes"):
        parse_email(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n",
        b"\r\n\r\nbody only",
        b"Hello, this is just prose.\nNo headers.\n",
        b"\x00\x01\x02",
    ],
)
def test_bytes_without_header_fields_are_unparseable(raw: bytes) -> None:
    with pytest.raises(MailUnparseable, match="no header fields"):
        parse_email(raw)


def test_errors_carry_their_reason() -> None:
    assert issubclass(MailRefused, MailError) and issubclass(MailUnparseable, MailError)
    assert MailRefused("too big").reason == "too big"
    assert str(MailUnparseable("garbage")) == "garbage"


# --- Details the corpus does not pin down -----------------------------------


def test_a_headers_only_message_has_empty_text() -> None:
    parsed = parse_email(b"From: a@example.com\nSubject: hi\n")
    assert (parsed.text, parsed.reply_text, parsed.html) == ("", "", None)


def test_a_minus_zero_zone_is_utc_and_a_bad_date_is_none() -> None:
    parsed = parse_email(HEAD + b"Date: Tue, 12 Mar 2024 10:00:00 -0000\n\nx\n")
    assert parsed.date is not None and parsed.date.utcoffset() is not None
    assert parsed.date.isoformat() == "2024-03-12T10:00:00+00:00"
    assert parse_email(HEAD + b"Date: yesterday-ish\n\nx\n").date is None
    assert parse_email(HEAD + b"Date: Tue, 99 Foo 99999 99:99:99 +9999\n\nx\n").date is None


def test_message_ids_without_brackets_and_with_comments() -> None:
    raw = (
        b"From: a@example.com\nMessage-ID: plain-id@example.com\n"
        b"In-Reply-To: <a@example.com> (message from Ann on Tue)\n"
        b"References: <a@example.com>\n <b@example.com>  <a@example.com>\n\nx\n"
    )
    parsed = parse_email(raw)
    assert parsed.message_id == "plain-id@example.com"
    assert parsed.in_reply_to == ("a@example.com",)
    assert parsed.references == ("a@example.com", "b@example.com")


def test_several_from_addresses_use_the_first_with_a_warning() -> None:
    parsed = parse_email(b"From: a@example.com, b@example.com\n\nx\n")
    assert parsed.from_address == "a@example.com"
    assert "several From addresses; the first is used" in parsed.warnings


def test_an_address_domain_is_lower_cased_but_not_the_local_part() -> None:
    parsed = parse_email(b"From: Ann <Ann.Smith@Example.COM>\n\nx\n")
    assert parsed.from_address == "Ann.Smith@example.com"


def test_a_multipart_without_a_boundary_is_read_as_text() -> None:
    parsed = parse_email(HEAD + b"Content-Type: multipart/mixed\n\nplain words\n")
    assert parsed.text == "plain words"


def test_related_root_is_chosen_by_the_start_parameter() -> None:
    raw = HEAD + (
        b'Content-Type: multipart/related; boundary=r; start="<root@x>"\n\n'
        b"--r\nContent-Type: image/gif\nContent-ID: <img@x>\n\nGIF89a\n"
        b'--r\nContent-Type: text/html\nContent-ID: <root@x>\n\n<p>root <img src="cid:img@x"></p>\n'
        b"--r--\n"
    )
    parsed = parse_email(raw)
    assert parsed.text == "root"
    assert [a.content_id for a in parsed.attachments] == ["img@x"]
    assert parsed.attachments[0].inline


def test_html_and_text_pieces_in_a_mixed_message_are_both_kept() -> None:
    raw = HEAD + (
        b"Content-Type: multipart/mixed; boundary=m\n\n"
        b"--m\nContent-Type: text/html\n\n<p>first <b>bold</b></p>\n"
        b"--m\nContent-Type: text/plain\n\nsecond <tag>\n--m--\n"
    )
    parsed = parse_email(raw)
    assert parsed.text == "first bold\n\nsecond <tag>"
    assert parsed.html is not None
    assert "<b>bold</b>" in parsed.html and "second &lt;tag&gt;" in parsed.html


def test_a_text_part_with_a_filename_is_an_attachment() -> None:
    raw = HEAD + (
        b"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nbody\n"
        b'--m\nContent-Type: text/plain; name="notes.txt"\n\nnotes\n--m--\n'
    )
    parsed = parse_email(raw)
    assert parsed.text == "body"
    assert [a.filename for a in parsed.attachments] == ["notes.txt"]


def test_nul_bytes_never_reach_the_text() -> None:
    parsed = parse_email(b"From: a@example.com\nSubject: a\x00b\n\nbefore\x00after\n")
    assert parsed.text == "beforeafter"
    assert parsed.subject == "a b"


def test_an_rfc2231_charset_on_an_8bit_part_does_not_break_decoding() -> None:
    raw = HEAD + b"Content-Type: text/plain; charset*=utf-8''utf-8\n\nGr\xc3\xbc\xc3\x9fe\n"
    assert parse_email(raw).text == "Grüße"


def test_eight_bit_content_type_parameters_are_read() -> None:
    raw = HEAD + (
        b"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nx\n"
        b'--m\nContent-Type: application/pdf; name="\xc3\xa4.pdf"\n\n%PDF\n--m--\n'
    )
    assert parse_email(raw).attachments[0].filename == "ä.pdf"


def test_a_long_filename_is_cut_to_255_bytes_keeping_the_extension() -> None:
    name = "ä" * 300 + ".pdf"
    raw = HEAD + (
        b"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nx\n"
        b"--m\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=utf-8''"
        + "".join(f"%{b:02X}" for b in name.encode()).encode()
        + b"\n\n%PDF\n--m--\n"
    )
    filename = parse_email(raw).attachments[0].filename
    assert filename.endswith("ä.pdf")
    assert len(filename.encode()) <= 255
