"""Canned-response templates (FEATURES.md F6): `Hi {{contact.first_name|default("there")}}`.

A deliberately tiny language with a hand-written parser, never `eval` nor a
general template engine: a template names only the variables in VARIABLES,
applies only the filters in FILTERS and holds string literals besides — no
attribute lookup, no indexing, no calls, no loops, no includes. Whatever an
agent saves, rendering reads nothing but the values the caller hands in,
and takes time linear in the template's size.

    template := (text | tag)*
    tag      := "{{" expr "}}"
    expr     := (variable | string) ("|" filter)*
    variable := name ("." name)*                   must be one of VARIABLES
    filter   := "upper" | "lower" | "default" "(" string ")"
    string   := '"' chars '"' | "'" chars "'"      no escapes, no line breaks

`{{` always opens a tag (write a literal one as `{{ "{{" }}`); `}}` outside
a tag is plain text. `default` applies when the value is empty, so an
unnamed contact gets the fallback. The output is plain text that is never
parsed again: a contact named `{{agent.name}}` stays that text. Escaping it
for a page is the transports' job (PROTOCOLS.md P7).

Two ways to parse: `check` at save time is strict and raises TemplateError
(with its position) for anything not documented; `render` at send time is
lenient about names only — a variable that is not (or no longer) allowed
renders empty and an unknown filter does nothing — so a saved response keeps
working after the list changes. Syntax and size limits hold in both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

MAX_TEMPLATE_CHARS = 10_000
MAX_TAGS = 100
MAX_TAG_CHARS = 500
MAX_STRING_CHARS = 200
MAX_FILTERS = 5
# Each tag renders at most this many characters, so the output stays under
# MAX_TEMPLATE_CHARS + MAX_TAGS * MAX_VALUE_CHARS = 60,000: below the
# largest message text (65,536) whatever the values and filters are.
MAX_VALUE_CHARS = 500

VARIABLES = (
    "contact.name",
    "contact.first_name",
    "contact.email",
    "agent.name",
    "agent.first_name",
    "conversation.id",
    "inbox.name",
)
FILTERS = ("default", "upper", "lower")

_OPEN, _CLOSE = "{{", "}}"
_PUNCTUATION = ".|()"


class TemplateError(ValueError):
    """A template that can't be saved or rendered. `offset` is 0-based in
    the source; `line` and `column` are 1-based, for people."""

    def __init__(self, source: str, offset: int, problem: str) -> None:
        self.offset = offset
        self.line = source.count("\n", 0, offset) + 1
        self.column = offset - (source.rfind("\n", 0, offset) + 1) + 1
        self.problem = problem
        super().__init__(f"line {self.line}, column {self.column}: {problem}")


@dataclasses.dataclass(frozen=True)
class Filter:
    name: str
    argument: str | None = None


@dataclasses.dataclass(frozen=True)
class Tag:
    """One `{{ ... }}`: a variable (None when unknown and parsed leniently)
    or a string literal, then its filters in order."""

    variable: str | None
    literal: str | None
    filters: tuple[Filter, ...]


@dataclasses.dataclass(frozen=True)
class Template:
    parts: tuple[str | Tag, ...]


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # "name", "string", or the punctuation character itself
    text: str
    offset: int


def first_name(name: str) -> str:
    """The first word of a full name ("" for an empty one)."""
    words = name.split()
    return words[0] if words else ""


def check(source: str) -> Template:
    """Parse strictly, as at save time: anything undocumented is an error."""
    return parse(source, strict=True)


def render(source: str, values: Mapping[str, str]) -> str:
    """Parse leniently and render with `values` (keyed like VARIABLES;
    a missing key is an empty value). Raises TemplateError only for broken
    syntax or a template over the size limits."""
    return render_template(parse(source, strict=False), values)


def render_template(template: Template, values: Mapping[str, str]) -> str:
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if part.literal is not None:
            value = part.literal
        elif part.variable in VARIABLES:
            value = values.get(part.variable, "")
        else:
            value = ""
        value = value[:MAX_VALUE_CHARS]
        for f in part.filters:
            value = _apply(f, value)
        # Again after filters: upper() may lengthen text ("ß" -> "SS").
        out.append(value[:MAX_VALUE_CHARS])
    return "".join(out)


def _apply(f: Filter, value: str) -> str:
    if f.name == "default":
        return value if value.strip() else (f.argument or "")
    if f.name == "upper":
        return value.upper()
    if f.name == "lower":
        return value.lower()
    return value  # unknown, parsed leniently: does nothing


def parse(source: str, *, strict: bool) -> Template:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            source, MAX_TEMPLATE_CHARS, f"a template is at most {MAX_TEMPLATE_CHARS} characters"
        )
    parts: list[str | Tag] = []
    position = tags = 0
    while True:
        start = source.find(_OPEN, position)
        if start < 0:
            if position < len(source):
                parts.append(source[position:])
            return Template(tuple(parts))
        if start > position:
            parts.append(source[position:start])
        tags += 1
        if tags > MAX_TAGS:
            raise TemplateError(source, start, f"a template has at most {MAX_TAGS} tags")
        tokens, position = _lex_tag(source, start)
        parts.append(_Parser(source, start, position - len(_CLOSE), tokens, strict).tag())


def _lex_tag(source: str, start: int) -> tuple[list[_Token], int]:
    """The tokens of the tag opening at `start`, and the offset after its
    `}}`. A `}}` inside a string literal does not close the tag."""
    limit = min(len(source), start + MAX_TAG_CHARS)
    tokens: list[_Token] = []
    i = start + len(_OPEN)
    while i < limit:
        ch = source[i]
        if source.startswith(_CLOSE, i):
            return tokens, i + len(_CLOSE)
        if ch.isspace():
            i += 1
        elif ch in _PUNCTUATION:
            tokens.append(_Token(ch, ch, i))
            i += 1
        elif ch in "\"'":
            end = _string_end(source, i, limit)
            tokens.append(_Token("string", source[i + 1 : end], i))
            i = end + 1
        elif _is_name_char(ch) and not ch.isdigit():
            end = i
            while end < limit and _is_name_char(source[end]):
                end += 1
            tokens.append(_Token("name", source[i:end], i))
            i = end
        elif source.startswith(_OPEN, i):
            raise TemplateError(source, i, "a tag can't contain another tag")
        elif ch == "}":
            raise TemplateError(source, i, "a single '}': a tag closes with }}")
        else:
            raise TemplateError(source, i, f"unexpected character {ch!r} in a tag")
    if limit < len(source):
        raise TemplateError(
            source, start, f"tag not closed within {MAX_TAG_CHARS} characters: add }}}}"
        )
    raise TemplateError(source, start, "tag not closed: add }}")


def _is_name_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _string_end(source: str, start: int, limit: int) -> int:
    quote = source[start]
    for i in range(start + 1, limit):
        if source[i] == quote:
            if i - start - 1 > MAX_STRING_CHARS:
                raise TemplateError(
                    source, start, f"a string is at most {MAX_STRING_CHARS} characters"
                )
            return i
        if source[i] == "\n":
            break
    raise TemplateError(source, start, f"string not closed: add {quote}")


class _Parser:
    """Recursive descent over one tag's tokens (the grammar has no nesting,
    so no recursion depth to bound)."""

    def __init__(
        self, source: str, start: int, end: int, tokens: list[_Token], strict: bool
    ) -> None:
        self.source = source
        self.start = start  # where "{{" is
        self.end = end  # where "}}" is: what a missing token is reported at
        self.tokens = tokens
        self.strict = strict
        self.i = 0

    def fail(self, problem: str, token: _Token | None = None) -> TemplateError:
        at = token.offset if token is not None else self.end
        return TemplateError(self.source, at, problem)

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str, what: str) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind:
            raise self.fail(f"expected {what}", token)
        self.i += 1
        return token

    def tag(self) -> Tag:
        first = self.peek()
        if first is None:
            problem = f"empty tag: name a variable ({', '.join(VARIABLES)})"
            raise TemplateError(self.source, self.start, problem)
        variable: str | None = None
        literal: str | None = None
        if first.kind == "string":
            self.i += 1
            literal = first.text
        else:
            variable = self.variable()
        filters: list[Filter] = []
        while (token := self.peek()) is not None:
            if token.kind != "|":
                raise self.fail(f"unexpected {token.text!r}: a filter starts with |", token)
            self.i += 1
            if len(filters) == MAX_FILTERS:
                raise self.fail(f"a tag has at most {MAX_FILTERS} filters", token)
            filters.append(self.filter())
        return Tag(variable, literal, tuple(filters))

    def variable(self) -> str | None:
        first = self.take("name", "a variable name or a string")
        names = [first.text]
        while (token := self.peek()) is not None and token.kind == ".":
            self.i += 1
            names.append(self.take("name", "a name after '.'").text)
        name = ".".join(names)
        if name in VARIABLES:
            return name
        if self.strict:
            raise self.fail(f"unknown variable {name!r}; allowed: {', '.join(VARIABLES)}", first)
        return None

    def filter(self) -> Filter:
        token = self.take("name", f"a filter name ({', '.join(FILTERS)})")
        if token.text == "default":
            self.take("(", 'an argument, like default("there")')
            argument = self.take("string", 'a string argument, like default("there")')
            self.take(")", "')' to close default(")
            return Filter("default", argument.text)
        known = token.text in FILTERS
        if not known and self.strict:
            raise self.fail(f"unknown filter {token.text!r}; allowed: {', '.join(FILTERS)}", token)
        following = self.peek()
        if following is not None and following.kind == "(":
            if known:
                raise self.fail(f"the filter {token.text!r} takes no argument", following)
            # Unknown and parsed leniently: skip its argument; it does nothing.
            self.i += 1
            argument = self.take("string", "a string argument")
            self.take(")", "')' to close the argument")
            return Filter(token.text, argument.text)
        return Filter(token.text)
