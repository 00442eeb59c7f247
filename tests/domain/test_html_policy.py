"""The URL rule every HTML sanitiser shares (PROTOCOLS.md P4, P7): a link's
scheme is read with invisible and control characters taken out, and only
http, https, mailto and cid (or a relative URL) survive. Checked on the
policy itself and on both sanitisers, which must agree."""

from __future__ import annotations

import html
from collections.abc import Callable

import pytest

from connectors.email import sanitize_html as mail_sanitize
from server.domain.html_policy import allowed_url, url_scheme
from server.sanitize import sanitize_html as api_sanitize

# A scheme written with characters a reader (or a lenient client) skips.
# Each is given raw and, where HTML allows it, as a character reference:
# the sanitiser sees attribute values with references decoded.
HOSTILE = [
    "java\u200bscript:alert(1)",  # zero-width space
    "java&#8203;script:alert(1)",
    "java&ZeroWidthSpace;script:alert(1)",
    "java\u00adscript:alert(1)",  # soft hyphen
    "java&shy;script:alert(1)",
    "java&#173;script:alert(1)",
    "java\u200cscript:alert(1)",  # zero-width non-joiner
    "java&zwnj;script:alert(1)",
    "java\u200dscript:alert(1)",  # zero-width joiner
    "java&#x200D;script:alert(1)",
    "\ufeffjavascript:alert(1)",  # BOM in front
    "java\ufeffscript:alert(1)",
    "java&#xFEFF;script:alert(1)",
    "java\u2060script:alert(1)",  # word joiner
    "java&NoBreak;script:alert(1)",
    "java\u202escript:alert(1)",  # right-to-left override
    "java\u2066script:alert(1)",  # left-to-right isolate
    "java\u200escript:alert(1)",  # left-to-right mark
    "java&rlm;script:alert(1)",
    "java\u061cscript:alert(1)",  # Arabic letter mark
    "java\tscript:alert(1)",
    "java&Tab;script:alert(1)",
    "java\nscript:alert(1)",
    "java&#10;script:alert(1)",
    "java\rscript:alert(1)",
    "jav\x01ascript:alert(1)",  # C0 control
    "java\x7fscript:alert(1)",
    "java\x85script:alert(1)",  # NEL, a C1 control
    "java\u3164script:alert(1)",  # Hangul filler (a letter that shows nothing)
    "java\u034fscript:alert(1)",  # combining grapheme joiner
    "java\ufe0fscript:alert(1)",  # variation selector
    "java\U000e0020script:alert(1)",  # tag space
    "javascript\u200b:alert(1)",  # before the colon
    "\u200b\u200bJaVaScRiPt:alert(1)",
    "vb\u200bscript:msgbox(1)",
    "da\u00adta:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file\u200b:///etc/passwd",
]

# Legitimate links with the same characters where they do no harm (none
# needs escaping in an attribute, so each comes out as it went in).
KEPT = [
    "https://shop.example/orders/10\u200b42",
    "https://shop.example/a\u00adb?q=c\u200dd#e\ufefff",
    "http://shop.example/\u2060path",
    "mailto:help\u00ad@shop.example",
    "cid:logo\u200b@customer.example",
    "/orders/1042?next=javascript:alert(1)",  # relative: the colon is in the query
    "orders/10\u200b42",
    "#top",
    "//cdn.shop.example/x\u200b.png",
]


@pytest.mark.parametrize("href", HOSTILE)
def test_a_scheme_with_invisible_characters_is_read_without_them(href: str) -> None:
    value = html.unescape(href)
    assert url_scheme(value) in {"javascript", "vbscript", "data", "file"}
    assert not allowed_url(value)


@pytest.mark.parametrize("href", KEPT)
def test_invisible_characters_outside_the_scheme_are_no_reason_to_drop(href: str) -> None:
    assert allowed_url(href)


@pytest.mark.parametrize("sanitize", [mail_sanitize, api_sanitize], ids=["mail", "api"])
@pytest.mark.parametrize("href", HOSTILE)
def test_both_sanitisers_drop_every_url_attribute_with_such_a_scheme(
    sanitize: Callable[[str], str], href: str
) -> None:
    markup = (
        f'<div><a href="{href}">link</a><img src="{href}" alt="i">'
        f'<blockquote cite="{href}">q</blockquote><q cite="{href}">x</q></div>'
    )
    assert sanitize(markup) == (
        '<div><a rel="noopener noreferrer nofollow">link</a><img alt="i">'
        "<blockquote>q</blockquote><q>x</q></div>"
    )


@pytest.mark.parametrize("sanitize", [mail_sanitize, api_sanitize], ids=["mail", "api"])
@pytest.mark.parametrize("href", KEPT)
def test_both_sanitisers_keep_legitimate_links_as_they_are(
    sanitize: Callable[[str], str], href: str
) -> None:
    clean = sanitize(f'<a href="{href}">link</a><img src="{href}">')
    assert (
        clean == f'<a href="{href}" rel="noopener noreferrer nofollow">link</a><img src="{href}">'
    )
