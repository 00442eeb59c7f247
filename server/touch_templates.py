"""Liquid templates for touchpoint messages (TOUCHPOINTS.md rule 8, FEATURES.md F7).

A touchpoint step is written in Liquid (what Shopify, Braze and Customer.io
users already know) and rendered with python-liquid in a sandbox: the
template sees nothing but the plain data the engine passes, cannot load
other templates, and every render is bounded in loop iterations, work,
output size, nesting and local variables, so a hostile or careless template
fails with a `TemplateError` instead of hanging a worker.

Authors write a subject (plain text) and a body that is either plain text
(blank lines separate paragraphs) or HTML (`TemplateSource.html`). A render
gives both parts of a mail: for a plain body the HTML part is the text
escaped, with paragraphs, line breaks and http(s) links; for an HTML body
every value is escaped on output (autoescape), the result is sanitised with
the shared allow-list and the text part is read back from it. Either way a
contact named `<script>` is shown as text.

The data a template sees (the engine builds it; `sample_data()` is a full
example, used by the editor's preview). Every value is plain JSON: dicts
with string keys, lists, str, int, float, bool, None; times are ISO 8601
strings (the `date` filter reads them); money amounts are numbers.

    contact      {id, name, email, attributes: {name: value, ...}}
    events       {cart: {cart_id, items: [ITEM], total, currency, url} | None,
                  last_order: {order_id, items: [ITEM], total, currency, url} | None,
                  viewed: [{name, url, image_url, price}],
                  recommendations: [{name, url, image_url, price}]}
                  ITEM = {name, price, quantity, image_url, url}
    promo        {code, expires_at} | None
    links        {unsubscribe, <name>: <tracked URL>, ...}
    workspace    {name}
    touchpoint   {name}

A missing value renders empty (`{{ contact.name | default: "there" }}`);
an unknown tag or filter is an error: `check_template` rejects it when the
step is saved (InvalidInput naming the field and line, so HTTP 422), and
`render_template` raises TemplateError if one slips through.

Besides Liquid's standard filters (`default`, `size`, `date`, `upcase`,
`escape`, `url_encode`, ...) there is `money`: `{{ item.price | money }}`
gives "12.50" and `{{ item.price | money: "EUR" }}` "12.50 EUR". The
standard `safe` filter is removed: nothing the engine passes is trusted
markup, and `include`/`render` are refused at parse time.

Whitespace is Liquid's: a tag on a line of its own leaves that line's
newline in the output, so a plain-text list is written with `-%}` to trim
it (`{% for item in events.cart.items -%}`). Runs of blank lines in a plain
body are collapsed to one, since they are nearly always left by tags.

Amounts are formatted without thousands separators or locale ("1234.50");
money amounts in `events` are numbers in the currency's major unit.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any, ClassVar

from liquid import BoundTemplate, Environment, RenderContext, Tag, TokenStream, is_undefined
from liquid.ast import Node
from liquid.builtin import DictLoader
from liquid.builtin.tags.for_tag import ForLoop
from liquid.builtin.tags.tablerow_tag import TableRow
from liquid.exceptions import (
    FilterArgumentError,
    LiquidError,
    LiquidSyntaxError,
    LoopIterationLimitError,
    ResourceLimitError,
)
from liquid.token import TOKEN_EXPRESSION, TOKEN_TAG, Token

from connectors.email.render import text_to_html
from server.domain.errors import InvalidInput
from server.sanitize import sanitize_html

# -- limits -------------------------------------------------------------------

MAX_BODY_SOURCE_CHARS = 64 * 1024
MAX_SUBJECT_SOURCE_CHARS = 2_000
MAX_SUBJECT_CHARS = 250
# Bytes (UTF-8) one render may write, captures included.
MAX_OUTPUT_BYTES = 256 * 1024
# Loop iterations in one render, all loops together: each loop adds its
# length when it starts, so nested loops count outer x inner and loops one
# after another add up (python-liquid's own limit only multiplies the
# lengths of the loops currently open).
MAX_LOOP_ITERATIONS = 10_000
# Nodes rendered plus filters applied in one render: bounds the work of a
# loop body that writes nothing (`{% if true %}{% endif %}` many times in a
# loop), which neither the loop nor the output limit sees. A cart template
# takes a few hundred.
MAX_RENDER_STEPS = 200_000
# Nested blocks at parse time, nested loop scopes at render time.
MAX_NESTING = 20
# Characters in one `{{ ... }}` or `{% tag ... %}` expression (in one line
# of a `{% liquid %}` tag): see `_screen` for why there is a limit at all.
MAX_EXPRESSION_CHARS = 1_000
# Size (sys.getsizeof, shallow) of the variables `assign` and `capture` keep:
# stops `{% assign s = s | append: s %}` in a loop from doubling into memory.
MAX_LOCALS_BYTES = 64 * 1024
# A filter result larger than this is refused before the next filter copies it.
MAX_VALUE_CHARS = MAX_OUTPUT_BYTES
MAX_LIST_ITEMS = 100_000
MAX_INT_BITS = 4096
MAX_DATA_DEPTH = 32

# -- public API ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TemplateSource:
    """One step variant's content as an author writes it."""

    subject: str  # Liquid, plain text (email subject; a widget message may use "")
    body: str  # Liquid: plain text with blank-line paragraphs, or HTML when html=True
    html: bool = False


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str  # one line, stripped, at most MAX_SUBJECT_CHARS
    text: str  # the plain-text part
    html: str  # the HTML part: escaped / sanitised, links kept


class TemplateError(Exception):
    """A template that cannot be parsed or rendered. `field` is "subject",
    "body" (or "data" when the engine passed something that is not plain
    data), `line` is 1-based when known."""

    def __init__(self, field: str, line: int | None, message: str) -> None:
        self.field = field
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.field}, line {self.line}" if self.line else self.field
        return f"{where}: {self.message}"


def check_template(source: TemplateSource, *, field_prefix: str = "") -> None:
    """Parse subject and body as they will be rendered, at save time.

    Raises InvalidInput (field `{field_prefix}subject` or `...body`, message
    "body: line 3: ...") for a syntax error, a template over the size limit,
    an unknown, disallowed or misplaced tag, or a filter that does not exist
    (python-liquid only finds unknown filters when it applies them, so they
    are looked up here from the parsed template).
    """
    for field, text, html in _fields(source):
        try:
            template = _parse(text, field=field, html=html)
            _check_filters(template, text, field=field)
        except TemplateError as err:
            name = field_prefix + err.field
            where = f"line {err.line}: " if err.line else ""
            raise InvalidInput(f"{name}: {where}{err.message}", field=name) from None


def render_template(source: TemplateSource, data: Mapping[str, object]) -> Rendered:
    """Render `source` for one contact. Raises TemplateError, never another
    exception, for anything that goes wrong (syntax, unknown filter, a limit
    reached, data that is not plain JSON-like values)."""
    _check_data(data, "data", 0)
    subject = _render(source.subject, data, field="subject", html=False)
    body = _render(source.body, data, field="body", html=source.html)
    if source.html:
        html = sanitize_html(body)
        text = html_to_text(html)
    else:
        text = _tidy_text(body)
        html = text_to_html(text)
    return Rendered(subject=_one_line(subject), text=text, html=html)


def compiled(text: str, *, html: bool = False) -> BoundTemplate:
    """The parsed template for `text`, parsed once and then shared: the
    engine renders one step for thousands of contacts. Raises LiquidError
    (see `_parse` for the error a caller wants)."""
    return _compiled(text, html)


def sample_data() -> dict[str, object]:
    """Example data in the shape the engine passes (see the module
    docstring): an abandoned cart with two items, a last order, viewed
    products, recommendations and a promo code. A fresh copy each call."""
    shop = "https://shop.example.com"
    return {
        "contact": {
            "id": "ct_2f9c1a",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "attributes": {"first_name": "Ada", "city": "London", "plan": "gold"},
        },
        "events": {
            "cart": {
                "cart_id": "cart_8812",
                "items": [
                    {
                        "name": "Linen shirt",
                        "price": 49.5,
                        "quantity": 1,
                        "image_url": f"{shop}/img/linen-shirt.jpg",
                        "url": f"{shop}/p/linen-shirt",
                    },
                    {
                        "name": "Wool socks",
                        "price": 12,
                        "quantity": 3,
                        "image_url": f"{shop}/img/wool-socks.jpg",
                        "url": f"{shop}/p/wool-socks",
                    },
                ],
                "total": 85.5,
                "currency": "EUR",
                "url": f"{shop}/cart",
            },
            "last_order": {
                "order_id": "ord_5520",
                "items": [
                    {
                        "name": "Canvas tote",
                        "price": 25,
                        "quantity": 1,
                        "image_url": f"{shop}/img/canvas-tote.jpg",
                        "url": f"{shop}/p/canvas-tote",
                    }
                ],
                "total": 25,
                "currency": "EUR",
                "url": None,
            },
            "viewed": [
                {
                    "name": "Rain jacket",
                    "url": f"{shop}/p/rain-jacket",
                    "image_url": f"{shop}/img/rain-jacket.jpg",
                    "price": 120,
                }
            ],
            "recommendations": [
                {
                    "name": "Leather belt",
                    "url": f"{shop}/p/leather-belt",
                    "image_url": f"{shop}/img/leather-belt.jpg",
                    "price": 35,
                },
                {
                    "name": "Cotton scarf",
                    "url": f"{shop}/p/cotton-scarf",
                    "image_url": f"{shop}/img/cotton-scarf.jpg",
                    "price": 19.9,
                },
            ],
        },
        "promo": {"code": "ADA-7K2Q", "expires_at": "2026-12-31T23:59:59Z"},
        "links": {
            "unsubscribe": "https://threadline.example.com/u/tok_unsub",
            "cart": "https://threadline.example.com/l/tok_cart",
            "shop": "https://threadline.example.com/l/tok_shop",
        },
        "workspace": {"name": "Northwind Outfitters"},
        "touchpoint": {"name": "Abandoned cart"},
    }


# -- filters ------------------------------------------------------------------

_CENT = decimal.Decimal("0.01")
_MONEY_CONTEXT = decimal.Context(prec=40, traps=[decimal.InvalidOperation, decimal.Overflow])
_MAX_AMOUNT_CHARS = 40


def money(value: object, currency: object = None) -> object:
    """A number as an amount with two decimals, "12.50", and the currency
    after it when given ("12.50 EUR"). A numeric string counts as a number;
    anything else (text, a missing value, a boolean) renders as given, so a
    bad price shows rather than breaking the whole message."""
    amount = _amount(value)
    if amount is None:
        return value
    try:
        text = f"{amount.quantize(_CENT, rounding=decimal.ROUND_HALF_UP, context=_MONEY_CONTEXT):f}"
    except decimal.DecimalException:
        return value
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]  # -0.001 rounds to "0.00", not "-0.00"
    code = "" if currency is None or is_undefined(currency) else str(currency).strip()
    return f"{text} {code}" if code else text


def _amount(value: object) -> decimal.Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = str(value).strip()
    if len(text) > _MAX_AMOUNT_CHARS:
        return None
    try:
        amount = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    return amount if amount.is_finite() else None


# -- the sandbox --------------------------------------------------------------


class _WorkLimitError(ResourceLimitError):
    """A render did more than MAX_RENDER_STEPS steps."""


class _NoPartials(Tag):
    """Stands in for `include` and `render`: a touchpoint template is one
    self-contained text and may not load another (nor anything from disk),
    so either tag is a syntax error naming its line."""

    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.expect(TOKEN_TAG)
        if stream.peek.kind == TOKEN_EXPRESSION:
            next(stream)
        raise LiquidSyntaxError(
            f"'{token.value}' is not available: a template cannot load other templates",
            token=token,
        )


class _SandboxContext(RenderContext):
    """A render context that counts the render's work.

    python-liquid reads `disabled_tags` before rendering every node, which
    makes it the hook for the step budget; `loop` adds up iterations over
    the whole render; `filter` guards each filter call. A test renders a
    loop of empty blocks to prove the hook still fires after an upgrade.
    """

    __slots__ = ("_disabled", "_iterations", "_steps")

    def __init__(self, template: BoundTemplate, **kwargs: Any) -> None:
        self._steps = 0
        self._iterations = 0
        self._disabled: list[str] = []
        super().__init__(template, **kwargs)

    @property
    def disabled_tags(self) -> list[str]:
        self._step()
        return self._disabled

    @disabled_tags.setter
    def disabled_tags(self, tags: list[str]) -> None:
        self._disabled = tags

    def _step(self) -> None:
        self._steps += 1
        if self._steps > MAX_RENDER_STEPS:
            raise _WorkLimitError(
                f"the template does too much work (more than {MAX_RENDER_STEPS} steps)",
                token=None,
            )

    @contextmanager
    def loop(
        self, namespace: Mapping[str, object], forloop: ForLoop | TableRow
    ) -> Iterator[RenderContext]:
        self._iterations += forloop.length
        if self._iterations > MAX_LOOP_ITERATIONS:
            raise LoopIterationLimitError(
                f"loop iteration limit reached (more than {MAX_LOOP_ITERATIONS} in all)",
                token=None,
            )
        with super().loop(namespace, forloop) as context:
            yield context

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:
        func = super().filter(name, token)

        def guarded(left: object, *args: object, **kwargs: object) -> object:
            self._step()
            _check_filter_inputs(name, left, args, kwargs, token)
            result = func(left, *args, **kwargs)
            _check_filter_result(name, result, token)
            return result

        return guarded


def _check_filter_inputs(
    name: str,
    left: object,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    token: Token | None,
) -> None:
    """Refuse inputs whose result would be huge before computing it: a range
    literal fed to a filter (`(1..100000000) | join`), and the two filters
    whose output multiplies their inputs (`replace`, `join`)."""
    for value in (left, *args, *kwargs.values()):
        if isinstance(value, range) and len(value) > MAX_LOOP_ITERATIONS:
            raise FilterArgumentError(
                f"{name}: range too large (more than {MAX_LOOP_ITERATIONS} numbers)", token=token
            )
    estimate = 0
    if name == "replace" and len(args) >= 1:
        text, old = _as_text(left), _as_text(args[0])
        new = _as_text(args[1]) if len(args) > 1 else ""
        count = len(text) + 1 if not old else text.count(old)
        estimate = len(text) + count * (len(new) - len(old))
    elif name == "join" and isinstance(left, list | tuple):
        separator = _as_text(args[0]) if args else " "
        estimate = len(left) * len(separator)
    if estimate > MAX_VALUE_CHARS:
        raise FilterArgumentError(f"{name}: result too large", token=token)


def _check_filter_result(name: str, result: object, token: Token | None) -> None:
    too_large = (
        (isinstance(result, str) and len(result) > MAX_VALUE_CHARS)
        or (isinstance(result, list | tuple) and len(result) > MAX_LIST_ITEMS)
        or (
            isinstance(result, int)
            and not isinstance(result, bool)
            and result.bit_length() > MAX_INT_BITS
        )
    )
    if too_large:
        raise FilterArgumentError(f"{name}: result too large", token=token)


def _as_text(value: object) -> str:
    if is_undefined(value) or value is None:
        return ""
    return value if isinstance(value, str) else str(value)


class _SandboxTemplate(BoundTemplate):
    context_class = _SandboxContext


class _SandboxEnvironment(Environment):
    """Standard Liquid minus everything that reaches outside the data."""

    block_nesting_limit: ClassVar[int] = MAX_NESTING
    context_depth_limit: ClassVar[int] = MAX_NESTING
    loop_iteration_limit: ClassVar[int | None] = MAX_LOOP_ITERATIONS
    local_namespace_limit: ClassVar[int | None] = MAX_LOCALS_BYTES
    output_stream_limit: ClassVar[int | None] = MAX_OUTPUT_BYTES
    template_class = _SandboxTemplate

    def __init__(self, *, autoescape: bool) -> None:
        # An empty loader: nothing can be loaded even if a partial tag came
        # back; the default Undefined renders a missing value as nothing.
        super().__init__(autoescape=autoescape, loader=DictLoader({}), strict_filters=True)

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        for name in ("include", "render"):
            self.tags[name] = _NoPartials(self)
        del self.filters["safe"]
        self.add_filter("money", money)

    def error(
        self,
        exc: type[LiquidError] | LiquidError,
        msg: str | None = None,
        token: Token | None = None,
    ) -> None:
        # An error at the end of an expression (`{{ x | }}`) carries
        # python-liquid's shared end-of-input token, which has no position;
        # the token the parser was on when it failed has, so keep that.
        placed = token is not None and token.start_index >= 0
        if placed and isinstance(exc, LiquidError) and not _has_position(exc):
            exc.token = token
        super().error(exc, msg, token)


_TEXT_ENV = _SandboxEnvironment(autoescape=False)
_HTML_ENV = _SandboxEnvironment(autoescape=True)


@functools.lru_cache(maxsize=512)
def _compiled(text: str, html: bool) -> BoundTemplate:
    env = _HTML_ENV if html else _TEXT_ENV
    _screen(env, text)
    return env.from_string(text)


_RAW_OPEN = re.compile(r"\{%-?\s*raw\s*-?%\}")
_RAW_CLOSE = re.compile(r"\{%-?\s*endraw\s*-?%\}")
_DOC_OPEN = re.compile(r"\{%-?\s*doc\s*-?%\}")
_DOC_CLOSE = re.compile(r"\{%-?\s*enddoc\s*-?%\}")


def _screen(env: Environment, text: str) -> None:
    """Refuse, in linear time, the sources python-liquid's regular
    expressions take quadratic time over: its lexer scans to the end of the
    text for every `{{`, `{%`, `{% raw %}` or `{% doc %}` that is never
    closed (64 KiB of `{{` takes minutes), and its expression tokenizer
    does the same inside one long expression (`((((...` looks ahead for
    `..` from every parenthesis). Once each opener is closed somewhere after
    it and no expression (no line of a `{% liquid %}` tag) is longer than
    MAX_EXPRESSION_CHARS, lexing is linear and parsing cheap.

    The one source refused that python-liquid would take: a `{{` or `{%`
    inside `{% raw %}` with no closer anywhere after it."""
    for opener, closer in (("{{", "}}"), ("{%", "%}")):
        last_close = text.rfind(closer)
        unclosed = text.find(opener, max(0, last_close - 1))
        if unclosed >= 0:
            raise LiquidSyntaxError(
                f"'{opener}' is never closed with '{closer}'",
                token=Token(TOKEN_TAG, opener, unclosed, text),
            )
    for name, opens, closes in (("raw", _RAW_OPEN, _RAW_CLOSE), ("doc", _DOC_OPEN, _DOC_CLOSE)):
        last_open = None
        for last_open in opens.finditer(text):  # noqa: B007 - the last one is wanted
            pass
        if last_open is not None and not closes.search(text, last_open.end()):
            raise LiquidSyntaxError(
                f"'{name}' is never closed",
                token=Token(TOKEN_TAG, name, last_open.start(), text),
            )
    previous: Token | None = None
    for token in env.tokenizer()(text):
        if token.kind == TOKEN_EXPRESSION:
            liquid_tag = previous is not None and previous.value == "liquid"
            pieces = token.value.split("\n") if liquid_tag else [token.value]
            if max(len(piece) for piece in pieces) > MAX_EXPRESSION_CHARS:
                raise LiquidSyntaxError(
                    f"expression too long (more than {MAX_EXPRESSION_CHARS} characters)",
                    token=token,
                )
        previous = token


# -- parsing and rendering ----------------------------------------------------


def _fields(source: TemplateSource) -> tuple[tuple[str, str, bool], ...]:
    return (("subject", source.subject, False), ("body", source.body, source.html))


def _parse(text: str, *, field: str, html: bool) -> BoundTemplate:
    limit = MAX_SUBJECT_SOURCE_CHARS if field == "subject" else MAX_BODY_SOURCE_CHARS
    if len(text) > limit:
        raise TemplateError(field, None, f"too long: {len(text)} characters, at most {limit}")
    try:
        return _compiled(text, html)
    except LiquidError as err:
        raise _template_error(err, text, field=field, html=html) from None
    except Exception as err:  # python-liquid wraps most; a stray one still is an error here
        raise TemplateError(field, None, f"cannot parse the template ({err})") from None


def _render(text: str, data: Mapping[str, object], *, field: str, html: bool) -> str:
    template = _parse(text, field=field, html=html)
    try:
        return template.render(data)
    except LiquidError as err:
        raise _template_error(err, text, field=field, html=html) from None
    except Exception as err:  # e.g. RecursionError, MemoryError: never let one out
        raise TemplateError(field, None, f"cannot render the template ({err})") from None


def _check_filters(template: BoundTemplate, text: str, *, field: str) -> None:
    known = template.env.filters
    try:
        used = template.analyze(include_partials=False).filters
    except Exception as err:
        raise TemplateError(field, None, f"cannot analyse the template ({err})") from None
    unknown = [
        (span.index, name) for name, spans in used.items() if name not in known for span in spans
    ]
    if unknown:
        index, name = min(unknown)
        raise TemplateError(field, _line_at(text, index), f"unknown filter '{name}'")


def _template_error(err: LiquidError, text: str, *, field: str, html: bool) -> TemplateError:
    message = str(err.message) if err.message is not None else type(err).__name__
    if err.token is not None and _has_position(err) and err.token.source == text:
        return TemplateError(field, _line_at(text, err.token.start_index), message)
    # No position: the parser ran off the end of the template, which is an
    # unclosed block; the tag audit finds the block that was opened.
    env = _HTML_ENV if html else _TEXT_ENV
    try:
        unclosed = env.analyze_tags_from_string(text).unclosed_tags
    except Exception:
        unclosed = {}
    spans = sorted((span.index, name) for name, found in unclosed.items() for span in found)
    if spans:
        index, name = spans[0]
        return TemplateError(field, _line_at(text, index), f"'{name}' is never closed")
    return TemplateError(field, None, message)


def _has_position(err: LiquidError) -> bool:
    return err.token is not None and err.token.start_index >= 0


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _check_data(value: object, path: str, depth: int) -> None:
    """Plain JSON-like values only: the engine's contract, checked so an
    object with behaviour (a model row, a datetime) never reaches Liquid."""
    if depth > MAX_DATA_DEPTH:
        raise TemplateError("data", None, f"{path} is nested too deeply")
    if value is None or isinstance(value, str | int | float):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TemplateError("data", None, f"{path} has a key that is not a string")
            _check_data(item, f"{path}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_data(item, f"{path}[{i}]", depth + 1)
        return
    raise TemplateError("data", None, f"{path} is a {type(value).__name__}, not plain data")


# -- the parts of the message -------------------------------------------------

_BLANK_RUNS = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")
_LINE_EDGES = re.compile(r"[ \t]*\n[ \t]*")


def _tidy_text(text: str) -> str:
    """The plain body as sent: "\\n" line ends, lines that hold only the
    indentation of a tag emptied, at most one blank line in a row (tags on
    lines of their own leave extra ones), no blank lines around it. Trailing
    spaces on text lines stay (the "-- " signature separator has one)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = ["" if not line.strip() else line for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def _one_line(subject: str) -> str:
    # Control characters have no place in a header; whitespace of any kind
    # (a loop's line breaks) becomes one space.
    subject = subject[: MAX_SUBJECT_CHARS * 4]
    subject = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in subject)
    return _WHITESPACE.sub(" ", subject).strip()[:MAX_SUBJECT_CHARS].rstrip()


# Elements whose content is not readable text.
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Elements that start and end a paragraph (a blank line around them).
_PARAGRAPHS = frozenset(
    {"p", "div", "table", "ul", "ol", "blockquote", "pre", "hr", "section", "article"}
    | {"header", "footer", "h1", "h2", "h3", "h4", "h5", "h6"}
)
# Elements that start and end a line.
_LINES = frozenset({"tr", "li", "dt", "dd", "address", "center"})


class _HtmlText(HTMLParser):
    """Collects the readable text of sanitised HTML; each link keeps its
    URL after its text, since a plain-text reader cannot click the words.

    Block boundaries are held back as a pending break (1: new line, 2:
    blank line) until the next text, so `</li>\n<li>` or `</p><p>` give one
    break, not a stack of them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.pending = 0
        self.skip = 0
        self.links: list[tuple[int, str]] = []  # (index in parts, href) of open <a>

    def brk(self, level: int) -> None:
        self.pending = max(self.pending, level)

    def add(self, text: str) -> None:
        if self.pending:
            if not text.strip():
                return
            self.parts.append("\n" * self.pending)
            self.pending = 0
        self.parts.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip += 1
        elif self.skip:
            return
        elif tag == "br":
            self.add("\n")
        elif tag in _PARAGRAPHS:
            self.brk(2)
        elif tag in _LINES:
            self.brk(1)
            if tag == "li":
                self.add("- ")
        elif tag in {"td", "th"}:
            self.add(" ")
        elif tag == "a":
            self.links.append((len(self.parts), dict(attrs).get("href") or ""))
        elif tag == "img" and self.links:
            # An image that is a link's only content names the link; other
            # images (product photos beside their names) would only repeat.
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.add(f" {alt} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip = max(0, self.skip - 1)
        elif self.skip:
            return
        elif tag in _PARAGRAPHS:
            self.brk(2)
        elif tag in _LINES:
            self.brk(1)
        elif tag == "a" and self.links:
            start, href = self.links.pop()
            words = _WHITESPACE.sub(" ", "".join(self.parts[start:])).strip()
            if href and href not in {words, f"mailto:{words}"}:
                self.add(f" ({href})" if words else href)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.add(_WHITESPACE.sub(" ", data.replace("\xa0", " ")))


def html_to_text(html: str) -> str:
    """The plain-text part of an HTML message: tags dropped, entities
    decoded, paragraphs separated by a blank line, list items dashed, each
    link as "text (url)"."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = _LINE_EDGES.sub("\n", "".join(parser.parts))
    text = re.sub(r"[ \t]{2,}", " ", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()
