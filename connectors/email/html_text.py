"""HTML mail as plain text, for a message that has no plain-text part.

Block elements end lines, paragraphs are separated by a blank line, list
items get a dash, and a <blockquote> (how Gmail, Apple Mail and Thunderbird
quote in HTML) becomes "> " lines, so reply stripping works the same on
HTML-only mail as on plain text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Elements that end a line.
_LINES = frozenset(
    {"div", "tr", "li", "dt", "dd", "section", "article", "header", "footer"}
    | {"address", "center", "tbody", "thead", "tfoot", "form", "dl"}
)
# Elements that also leave a blank line around them.
_PARAGRAPHS = frozenset(
    {"p", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr"}
)
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_MAX_QUOTE_DEPTH = 20
_BLANKS = re.compile(r"\n{3,}")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.skip = 0
        self.pre = 0
        self.quote = 0
        self.blank = False

    def add_line(self, text: str) -> None:
        if self.blank and self.lines and self.lines[-1]:
            self.lines.append("")
        self.blank = False
        prefix = "> " * min(self.quote, _MAX_QUOTE_DEPTH)
        self.lines.append((prefix + text).rstrip())

    def end_line(self, *, force: bool = False) -> None:
        text = "".join(self.line)
        text = text.rstrip(" ") if self.pre else text.strip(" ")
        self.line = []
        if text or force:
            self.add_line(text)

    def paragraph(self) -> None:
        self.end_line()
        self.blank = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip += 1
        elif tag == "br":
            self.end_line(force=True)
        elif tag in _PARAGRAPHS:
            self.paragraph()
            if tag == "blockquote":
                self.quote += 1
            elif tag == "pre":
                self.pre += 1
            elif tag == "hr":
                self.add_line("---")
                self.blank = True
        elif tag in _LINES:
            self.end_line()
            if tag == "li":
                self.line.append("- ")
        elif tag in {"td", "th"} and self.line:
            self.line.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip = max(0, self.skip - 1)
        elif tag in _PARAGRAPHS:
            self.paragraph()
            if tag == "blockquote":
                self.quote = max(0, self.quote - 1)
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag in _LINES:
            self.end_line()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            first, *rest = data.replace("\r\n", "\n").split("\n")
            self.line.append(first)
            for piece in rest:
                self.end_line(force=True)
                self.line.append(piece)
            return
        text = _SPACES.sub(" ", data.replace("\xa0", " "))
        if not self.line or self.line[-1].endswith(" "):
            text = text.lstrip(" ")
        if text:
            self.line.append(text)


def html_to_text(html: str) -> str:
    """Readable plain text of `html` (entities decoded, tags dropped)."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    parser.end_line()
    text = "\n".join(parser.lines)
    return _BLANKS.sub("\n\n", text).strip("\n")
