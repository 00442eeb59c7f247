"""Short plain-text renderings of message bodies: the one-line preview a
conversation list shows and the snippet around a search hit.

Both are shown as text (escaped by whoever displays them), never as
markup, so tags are dropped rather than sanitised.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

PREVIEW_CHARS = 140
SNIPPET_CHARS = 160
ELLIPSIS = "…"

_SPACES = re.compile(r"\s+")
# Elements whose content is not readable text.
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Elements that end a line or block: a space keeps their words apart
# ("<p>a</p><p>b</p>" reads "a b", not "ab").
_BREAKS = frozenset(
    {"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"blockquote", "pre", "hr", "table", "ul", "ol", "section", "article"}
)


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(self._skipping - 1, 0)
        elif tag in _BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The readable text of `html`, entities decoded, whitespace collapsed.
    Tolerates fragments and a document cut off mid-tag (callers may pass
    only a prefix of a long body)."""
    # A tag cut off at the end would be flushed as text by close().
    # (Stored HTML is sanitised, so a literal "<" in text is "&lt;".)
    open_at = html.rfind("<")
    if open_at > html.rfind(">"):
        html = html[:open_at]
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    return collapse("".join(parser.parts))


def collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _cut(text: str, limit: int) -> str:
    """`text` if it fits, else its first `limit` characters ending in an
    ellipsis, cut at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS)]
    space = head.rfind(" ")
    if space >= limit * 2 // 3:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def message_preview(text: str, html: str | None, limit: int = PREVIEW_CHARS) -> str:
    """One line for a conversation list: the message's text, or for a
    message that only has HTML its text content; at most `limit`
    characters, whitespace collapsed."""
    plain = collapse(text)
    if not plain and html:
        plain = html_to_text(html)
    return _cut(plain, limit)


def snippet(text: str, needle: str, limit: int = SNIPPET_CHARS) -> str:
    """The part of `text` around the first case-insensitive occurrence of
    `needle`, whitespace collapsed, at most `limit` characters, with an
    ellipsis on each side that was cut. Starts at the beginning when the
    needle is not found (the database may fold case differently)."""
    plain = collapse(text)
    if len(plain) <= limit:
        return plain
    found = re.search(re.escape(collapse(needle)), plain, re.IGNORECASE)
    if found is None:
        return _cut(plain, limit)
    # Centre the hit in the window, then shift the window to stay inside.
    room = limit - 2 * len(ELLIPSIS)
    start = max(found.start() - max((room - (found.end() - found.start())) // 2, 0), 0)
    end = min(start + room, len(plain))
    start = max(end - room, 0)
    if start == 0:
        return plain[: limit - len(ELLIPSIS)] + ELLIPSIS
    if end == len(plain):
        return ELLIPSIS + plain[len(plain) - (limit - len(ELLIPSIS)) :]
    return ELLIPSIS + plain[start:end] + ELLIPSIS
