"""The HTML allow-list every sanitiser shares (PROTOCOLS.md P4, P7).

Only the policy lives here, as plain constants and one pure function: the
domain stays standard library only, and each sanitiser (`server.sanitize`
for messages written through the API, `connectors.email.sanitize` for
inbound mail and our own outbound HTML, `server.queries.message_html` for
the page an email is shown in) applies it with nh3. Connectors may import
the domain but not the rest of the server, so this is the one place all of
them read the same rules from.
"""

from __future__ import annotations

import re
import unicodedata

# URL schemes a link or image may use; anything else (javascript:, data:,
# vbscript:, ...) is dropped with the attribute.
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto", "cid"})

# The rel every kept link gets: no opener access, no referrer, no SEO credit.
LINK_REL = "noopener noreferrer nofollow"

# Attributes whose value is a URL. nh3's defaults keep only href, src and
# cite; the rest are listed so that widening the allow-list later can't
# let a URL attribute past `url_filter` unchecked.
URL_ATTRIBUTES: frozenset[str] = frozenset(
    {"href", "src", "cite", "longdesc", "action", "formaction", "poster", "background"}
    | {"srcset", "usemap", "xlink:href", "data", "codebase", "manifest", "ping", "icon"}
    | {"profile", "dynsrc", "lowsrc", "archive", "classid"}
)

# Default-ignorable characters that are letters or marks by category (so
# not caught by the Cc/Cf/Z* test) but render as nothing: the combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian
# variation selectors, variation selectors.
_IGNORABLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _invisible(ch: str) -> bool:
    # Cc: controls (tab, CR, LF, NUL...); Cf: format characters (soft
    # hyphen, zero-width space/joiners, BOM, word joiner, bidi controls,
    # tags); Z*: spaces and line/paragraph separators.
    # The rest are default-ignorable code points of other categories.
    if unicodedata.category(ch) in {"Cc", "Cf", "Zs", "Zl", "Zp"} or ch in _IGNORABLE:
        return True
    return 0xE0100 <= ord(ch) <= 0xE01EF  # variation selectors supplement


def url_scheme(url: str) -> str | None:
    """The scheme of `url` (lower-cased) as a reader could take it: read
    with every invisible, control and space character removed, so
    `java\\u200bscript:` is `javascript`. None for a relative URL."""
    visible = "".join(ch for ch in url if not _invisible(ch))
    match = _SCHEME.match(visible)
    return match.group(1).lower() if match else None


def allowed_url(url: str) -> bool:
    """Whether a link or image may keep `url`: a relative URL, or one whose
    scheme (see `url_scheme`) is in `URL_SCHEMES`. Invisible characters
    anywhere else (a path, a query) are no reason to drop it."""
    scheme = url_scheme(url)
    return scheme is None or scheme in URL_SCHEMES


def url_filter(tag: str, attribute: str, value: str) -> str | None:
    """An nh3 `attribute_filter`: drops a URL attribute whose scheme is not
    allowed once invisible characters are read out of it. nh3's own scheme
    check reads `java\\u200bscript:` as a relative URL and keeps it; nh3
    hands the filter the value with character references decoded, so
    `java&#8203;script:` and `java&shy;script:` are caught here too."""
    if attribute.lower() in URL_ATTRIBUTES and not allowed_url(value):
        return None
    return value
