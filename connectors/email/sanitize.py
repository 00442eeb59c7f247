"""Sanitising inbound email HTML (PROTOCOLS.md P4, P7).

The allow-list (tags and attributes are nh3's defaults; URL schemes, the
URL filter and the link rel come from `server.domain.html_policy`) is the one `server.sanitize`
applies to messages written through the API, so an email body and a chat
message are held to the same rules. Mail adds one thing: a document's
<title> is dropped with its text instead of leaking into the body.
Remote images stay in the markup; blocking or proxying them is the
renderer's job (it shows the HTML in a sandboxed iframe).
"""

from __future__ import annotations

import html as html_lib
import re

import nh3

from server.domain.html_policy import LINK_REL, URL_SCHEMES, url_filter

_CLEAN_CONTENT_TAGS = frozenset(nh3.CLEAN_CONTENT_TAGS | {"title"})

# nh3's cost grows with the square of the number of "&" and no-break
# spaces in one text node or attribute, and with the square of the nesting
# depth: a crafted 1 MiB body could take minutes. Below these bounds the
# worst case is a fraction of a second; real mail is far below them.
MAX_ESCAPES = 100_000
MAX_DEPTH = 1000
# Elements that never nest (void) or that the HTML parser closes by itself
# when the next one starts; they don't count towards the depth estimate.
_FLAT = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option"}
    | {"optgroup", "thead", "tbody", "tfoot", "colgroup", "caption", "html", "head", "body"}
)
# [^<>] keeps every match attempt within one "<...>": linear on any input.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,20})(?:[\s/][^<>]*)?>")
_ANY_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_BLANKS = re.compile(r"\n{3,}")


def too_costly(html: str, max_bytes: int) -> str | None:
    """Why `html` should not be sanitised (too large, too many escapes,
    nested too deep), or None. Linear in the length of `html`."""
    size = len(html.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return f"HTML body of {size} bytes is over the {max_bytes} limit"
    if html.count("&") + html.count("\xa0") > MAX_ESCAPES:
        return f"HTML body has more than {MAX_ESCAPES} character references"
    depth = deepest = 0
    for match in _TAG.finditer(html):
        if match.group(2).lower() in _FLAT:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        elif not match.group(0).endswith("/>"):
            depth += 1
            deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        return f"HTML body nests deeper than {MAX_DEPTH} elements"
    return None


def strip_tags(html: str) -> str:
    """Crude, linear plain text of HTML that is too costly to sanitise:
    tags become spaces, character references are decoded."""
    text = html_lib.unescape(_ANY_TAG.sub(" ", html))
    lines = "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return _BLANKS.sub("\n\n", lines).strip()


def sanitize_html(html: str) -> str:
    """An allow-list clean: no script, no event handlers, no javascript:
    (or any non-allowed) URLs, even with invisible characters in the
    scheme, no forms, no frames, no styles."""
    return nh3.clean(
        html,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        attribute_filter=url_filter,
        clean_content_tags=_CLEAN_CONTENT_TAGS,
    )
