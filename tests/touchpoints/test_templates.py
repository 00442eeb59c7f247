"""Touchpoint templates (server.touch_templates): what a Liquid step renders
to in both parts of a message, what is refused at save time and on which
line, and that no template, however hostile, escapes the data, escapes
the escaping or runs without bound."""

from __future__ import annotations

import pytest

from server.domain.errors import InvalidInput
from server.touch_templates import (
    MAX_BODY_SOURCE_CHARS,
    MAX_LOOP_ITERATIONS,
    MAX_RENDER_STEPS,
    MAX_SUBJECT_CHARS,
    TemplateError,
    TemplateSource,
    check_template,
    compiled,
    html_to_text,
    money,
    render_template,
    sample_data,
)

CART_TEXT = """Hi {{ contact.attributes.first_name | default: "there" }},

You left these in your cart:
{% for item in events.cart.items -%}
- {{ item.quantity }} x {{ item.name }}: {{ item.price | money: events.cart.currency }}
{% endfor -%}
Total: {{ events.cart.total | money: events.cart.currency }}

Finish your order: {{ links.cart }}"""

CART_HTML = """<p>Hi {{ contact.attributes.first_name | default: "there" }},</p>
<ul>{% for item in events.cart.items %}
  <li><a href="{{ item.url }}">{{ item.name }}</a> {{ item.price | money: events.cart.currency }}</li>
{% endfor %}</ul>
<p><a href="{{ links.cart }}">Finish your order</a></p>"""

HOSTILE_NAME = "<script>alert(1)</script>"


def text(body: str, data: dict[str, object] | None = None, subject: str = "Hi") -> str:
    return render_template(
        TemplateSource(subject, body), sample_data() if data is None else data
    ).text


def failure(body: str, *, html: bool = False, subject: str = "") -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render_template(TemplateSource(subject, body, html=html), sample_data())
    return caught.value


def refusal(body: str, *, html: bool = False, subject: str = "") -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check_template(TemplateSource(subject, body, html=html), field_prefix="steps.0.")
    return caught.value


def with_contact_name(name: str) -> dict[str, object]:
    data = sample_data()
    contact = data["contact"]
    assert isinstance(contact, dict)
    contact["name"] = name
    return data


# -- what renders ---------------------------------------------------------------


def test_a_plain_cart_template_lists_the_items_in_both_parts() -> None:
    rendered = render_template(TemplateSource("Your cart", CART_TEXT), sample_data())

    assert rendered.text == (
        "Hi Ada,\n\nYou left these in your cart:\n"
        "- 1 x Linen shirt: 49.50 EUR\n"
        "- 3 x Wool socks: 12.00 EUR\n"
        "Total: 85.50 EUR\n\n"
        "Finish your order: https://threadline.example.com/l/tok_cart"
    )
    assert rendered.html.startswith("<p>Hi Ada,</p>\n<p>You left these in your cart:<br>\n")
    assert "- 3 x Wool socks: 12.00 EUR<br>" in rendered.html
    assert rendered.subject == "Your cart"


def test_an_html_cart_template_lists_the_items_and_keeps_the_links() -> None:
    rendered = render_template(TemplateSource("Your cart", CART_HTML, html=True), sample_data())

    assert (
        '<a href="https://shop.example.com/p/wool-socks" rel="noopener noreferrer nofollow">Wool socks</a> 12.00 EUR'
        in rendered.html
    )
    assert rendered.text == (
        "Hi Ada,\n\n"
        "- Linen shirt (https://shop.example.com/p/linen-shirt) 49.50 EUR\n"
        "- Wool socks (https://shop.example.com/p/wool-socks) 12.00 EUR\n\n"
        "Finish your order (https://threadline.example.com/l/tok_cart)"
    )


def test_an_empty_cart_takes_the_else_branch() -> None:
    body = "{% for item in events.cart.items %}{{ item.name }};{% else %}Nothing left behind{% endfor %}"
    data = sample_data()
    events = data["events"]
    assert isinstance(events, dict)

    assert text(body) == "Linen shirt;Wool socks;"
    events["cart"] = {"items": [], "total": 0, "currency": "EUR", "cart_id": "c"}
    assert text(body, data) == "Nothing left behind"


@pytest.mark.parametrize(
    ("promo", "expected"),
    [
        ({"code": "SAVE10", "expires_at": "2026-12-31T23:59:59Z"}, "Use SAVE10 by 31 Dec 2026"),
        (None, "See you soon"),
    ],
)
def test_branches_follow_the_data(promo: dict[str, str] | None, expected: str) -> None:
    body = (
        "{% if promo %}Use {{ promo.code }} by {{ promo.expires_at | date: '%d %b %Y' }}"
        "{% elsif contact.email %}See you soon{% else %}Bye{% endif %}"
    )
    data = sample_data()
    data["promo"] = promo

    assert text(body, data) == expected


def test_a_missing_value_renders_empty_or_its_default() -> None:
    data = sample_data()
    data["contact"] = {"id": "c1", "email": "x@example.com", "attributes": {}}

    assert text("Hi {{ contact.name | default: 'there' }}!", data) == "Hi there!"
    assert (
        text("[{{ contact.name }}][{{ nothing.at.all }}][{{ contact.attributes.plan }}]", data)
        == "[][][]"
    )


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (12.5, None, "12.50"),
        (12, "EUR", "12.00 EUR"),
        ("3.455", None, "3.46"),  # half up, from the decimal digits (no float rounding)
        (2.675, "USD", "2.68 USD"),
        (-0.001, None, "0.00"),
        ("abc", "EUR", "abc"),  # not a number: as given
        (True, None, True),
        (None, "EUR", None),
        ("1" * 60, None, "1" * 60),
    ],
)
def test_money_formats_two_decimals_and_an_optional_currency(
    value: object, currency: object, expected: object
) -> None:
    assert money(value, currency) == expected


def test_money_in_a_template_renders_bad_input_as_given() -> None:
    body = "{{ 12.5 | money }}|{{ item.price | money: 'EUR' }}|{{ 'n/a' | money: 'EUR' }}|{{ nope | money: 'EUR' }}"

    assert text(body, {"item": {"price": 9}}) == "12.50|9.00 EUR|n/a|"


def test_standard_filters_work() -> None:
    body = (
        "{{ events.cart.items | size }}|{{ promo.expires_at | date: '%Y-%m-%d' }}|"
        "{{ contact.name | upcase }}|{{ '<b>&' | escape }}|{{ 'a b&c/é' | url_encode }}|"
        "{{ events.cart.items | map: 'name' | join: ', ' }}"
    )

    assert text(body) == (
        "2|2026-12-31|ADA LOVELACE|&lt;b&gt;&amp;|a+b%26c%2F%C3%A9|Linen shirt, Wool socks"
    )


def test_the_subject_is_one_stripped_line_of_at_most_250_characters() -> None:
    subject = "  {% for item in events.cart.items %}\n{{ item.name }}\t{% endfor %}\r\n left\x07 "
    long_subject = "{% for i in (1..100) %}word {% endfor %}"

    assert render_template(TemplateSource(subject, ""), sample_data()).subject == (
        "Linen shirt Wool socks left"
    )
    assert len(render_template(TemplateSource(long_subject, ""), sample_data()).subject) == (
        MAX_SUBJECT_CHARS - 1  # cut at 250 then the trailing space stripped
    )


# -- escaping -------------------------------------------------------------------


def test_a_plain_body_escapes_values_in_the_html_part_only() -> None:
    rendered = render_template(
        TemplateSource("Hi {{ contact.name }}", "Hi {{ contact.name }}"),
        with_contact_name(HOSTILE_NAME),
    )

    assert rendered.text == f"Hi {HOSTILE_NAME}"
    assert rendered.subject == f"Hi {HOSTILE_NAME}"  # a header is text, never markup
    assert rendered.html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_an_html_body_escapes_values_on_output() -> None:
    body = (
        '<p title="{{ contact.name }}">Hi {{ contact.name }}</p><p>{{ contact.name | escape }}</p>'
    )
    rendered = render_template(TemplateSource("", body, html=True), with_contact_name(HOSTILE_NAME))

    assert "<script" not in rendered.html
    assert rendered.html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3  # not escaped twice
    assert rendered.text == f"Hi {HOSTILE_NAME}\n\n{HOSTILE_NAME}"


def test_an_html_body_is_sanitised() -> None:
    body = (
        '<p onclick="steal()">Hi</p><script>steal()</script>'
        '<a href="javascript:steal()">bad</a> <a href="{{ links.shop }}">shop</a>'
    )
    rendered = render_template(TemplateSource("", body, html=True), sample_data())

    assert "steal" not in rendered.html
    assert "javascript" not in rendered.html
    assert (
        '<a href="https://threadline.example.com/l/tok_shop" rel="noopener noreferrer nofollow">shop</a>'
        in rendered.html
    )


def test_a_value_cannot_be_marked_safe() -> None:
    # `safe` is removed: the engine's data is never trusted markup.
    assert failure("{{ contact.name | safe }}", html=True).message == "unknown filter 'safe'"


# -- the two parts ----------------------------------------------------------------


def test_the_text_part_of_html_reads_like_text() -> None:
    html = (
        "<h1>Title</h1>\n<p>Tom &amp; Jerry&nbsp;say   <b>hi</b>,<br>friend</p>"
        "<style>p { color: red }</style><ul>\n <li>One</li>\n <li>Two</li>\n</ul>"
        '<p><a href="https://x.example/a">the shop</a> · <a href="https://x.example">https://x.example</a>'
        ' · <a href="mailto:help@x.example">help@x.example</a>'
        ' · <a href="https://x.example/b"><img src="https://x.example/i.png" alt="Shop now"></a></p>'
        '<img src="https://x.example/photo.png" alt="A photo">'
    )

    assert html_to_text(html) == (
        "Title\n\nTom & Jerry say hi,\nfriend\n\n- One\n- Two\n\n"
        "the shop (https://x.example/a) · https://x.example · help@x.example"
        " · Shop now (https://x.example/b)"
    )


def test_bare_urls_in_a_plain_body_become_links() -> None:
    rendered = render_template(
        TemplateSource("", "Back to {{ links.cart }}.\nOr javascript:alert(1) or www.example.com"),
        sample_data(),
    )

    assert rendered.html == (
        '<p>Back to <a href="https://threadline.example.com/l/tok_cart" rel="noopener noreferrer nofollow">'
        "https://threadline.example.com/l/tok_cart</a>.<br>\nOr javascript:alert(1) or www.example.com</p>"
    )


def test_a_plain_body_keeps_paragraphs_and_drops_the_blank_lines_tags_leave() -> None:
    body = "First line\nsecond line\n\n{% if true %}\n\n\n  \nNext paragraph{% endif %}\n\n-- \nSignature"

    rendered = render_template(TemplateSource("", body), sample_data())

    assert rendered.text == "First line\nsecond line\n\nNext paragraph\n\n-- \nSignature"
    assert rendered.html == (
        "<p>First line<br>\nsecond line</p>\n<p>Next paragraph</p>\n<p>-- <br>\nSignature</p>"
    )


# -- save-time checks -------------------------------------------------------------


def test_a_syntax_error_names_the_field_and_the_line() -> None:
    error = refusal("Hello\n{{ contact.name }}\n{% if %}\nbye")

    assert error.field == "steps.0.body"
    assert error.message == "steps.0.body: line 3: missing expression"


def test_an_error_at_the_end_of_an_expression_still_names_its_line() -> None:
    # python-liquid gives these its position-less end-of-input token.
    assert refusal("a\nb\n{{ contact.name | }}").message == (
        "steps.0.body: line 3: expected word, found end of expression"
    )


def test_an_unclosed_block_names_the_line_it_opens_on() -> None:
    assert refusal("a\n{% for item in events.cart.items %}\n{{ item.name }}").message == (
        "steps.0.body: line 2: 'for' is never closed"
    )


def test_unknown_tags_and_subject_errors_are_refused() -> None:
    assert refusal("x\n\n{% foo %}").message == "steps.0.body: line 3: unexpected tag 'foo'"
    error = refusal("fine", subject="Hi {{ contact.name | }}")
    assert error.field == "steps.0.subject"
    assert error.message == "steps.0.subject: line 1: expected word, found end of expression"


def test_an_unknown_filter_is_refused_at_save_time_and_fails_at_render_time() -> None:
    # python-liquid parses `{{ x | nope }}` fine and only fails when it
    # applies the filter; check_template looks the filters up itself.
    assert refusal("a\nb\n{{ contact.name | upcase | nope: 2 }}").message == (
        "steps.0.body: line 3: unknown filter 'nope'"
    )
    error = failure("a\nb\n{{ contact.name | upcase | nope: 2 }}")
    assert (error.field, error.line, error.message) == ("body", 3, "unknown filter 'nope'")
    assert str(error) == "body, line 3: unknown filter 'nope'"


def test_good_templates_pass_the_check() -> None:
    check_template(TemplateSource("Your cart, {{ contact.name }}", CART_TEXT))
    check_template(TemplateSource("Your cart", CART_HTML, html=True))


def test_a_template_over_the_size_limit_is_refused() -> None:
    error = refusal("x" * (MAX_BODY_SOURCE_CHARS + 1))
    assert (
        error.message
        == f"steps.0.body: too long: {MAX_BODY_SOURCE_CHARS + 1} characters, at most {MAX_BODY_SOURCE_CHARS}"
    )
    assert failure("x" * (MAX_BODY_SOURCE_CHARS + 1)).field == "body"


# -- hostile templates ------------------------------------------------------------


def test_a_huge_loop_is_stopped_before_it_starts() -> None:
    error = failure("{% for i in (1..100000000) %}x{% endfor %}")

    assert error.message == f"loop iteration limit reached (more than {MAX_LOOP_ITERATIONS} in all)"


def test_loops_one_after_another_count_together() -> None:
    loop = "{% for i in (1..6000) %}{% endfor %}"

    text(loop)  # one is fine
    assert "loop iteration limit" in failure(loop + loop).message


def test_nested_loops_count_outer_times_inner() -> None:
    assert (
        "loop iteration limit"
        in failure("{% for i in (1..200) %}{% for j in (1..200) %}{% endfor %}{% endfor %}").message
    )
    assert (
        "loop iteration limit"
        in failure(
            "{% tablerow i in (1..200) %}{% tablerow j in (1..200) %}x{% endtablerow %}{% endtablerow %}"
        ).message
    )


def test_giant_output_is_stopped() -> None:
    body = "{% for i in (1..99) %}{% for j in (1..99) %}" + "x" * 100 + "{% endfor %}{% endfor %}"

    assert failure(body).message == "output stream limit reached"
    assert (
        failure("{% capture c %}" + body + "{% endcapture %}").message
        == "output stream limit reached"
    )


def test_work_that_writes_nothing_is_bounded() -> None:
    # Empty blocks in a loop pass the loop and output limits; the step
    # budget (counted by the hook python-liquid calls per node) stops them.
    body = "{% for i in (1..9000) %}" + "{% if true %}{% endif %}" * 30 + "{% endfor %}"

    assert (
        failure(body).message
        == f"the template does too much work (more than {MAX_RENDER_STEPS} steps)"
    )


def test_doubling_a_variable_is_stopped() -> None:
    grow_text = (
        "{% assign s = 'xx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}"
    )
    grow_number = (
        "{% assign n = 10 %}{% for i in (1..40) %}{% assign n = n | times: n %}{% endfor %}"
    )

    assert failure(grow_text).message == "local namespace limit reached"
    assert failure(grow_number).message in {
        "local namespace limit reached",
        "times: result too large",
    }


def test_filters_cannot_build_huge_values() -> None:
    s = "{% assign s = '" + "x" * 200 + "' %}"

    assert failure("{{ (1..100000000) | join: ',' }}").message == (
        f"join: range too large (more than {MAX_LOOP_ITERATIONS} numbers)"
    )
    assert (
        failure(s + "{{ s | replace: 'x', s | replace: 'x', s }}").message
        == "replace: result too large"
    )
    s600 = "{% assign s = '" + "x" * 600 + "' %}"  # 600 items joined by 600 characters
    assert failure(s600 + "{{ s | split: '' | join: s }}").message == "join: result too large"
    big = "{% assign b = " + "9" * 300 + " %}"  # about 1000 bits; five of them multiplied pass 4096
    assert failure(big + "{{ b | times: b | times: b | times: b | times: b }}").message == (
        "times: result too large"
    )


def test_deep_nesting_is_refused() -> None:
    error = failure("{% if true %}" * 25 + "x" + "{% endif %}" * 25)

    assert error.message == "block nesting limit reached"


@pytest.mark.parametrize(
    "tag", ["{% include 'etc/passwd' %}", "{% render '/etc/passwd' %}", "{% include page %}"]
)
def test_templates_cannot_load_other_templates(tag: str) -> None:
    name = tag.split()[1]
    message = f"'{name}' is not available: a template cannot load other templates"

    assert refusal(f"a\n{tag}").message == f"steps.0.body: line 2: {message}"
    assert failure(f"a\n{tag}").message == message


def test_python_internals_are_out_of_reach() -> None:
    body = (
        "[{{ contact.__class__ }}][{{ contact.name.__class__.__mro__ }}][{{ contact['__class__'] }}]"
        "[{{ events.cart.items.__len__ }}][{{ events.cart.items | map: '__class__' | join: ',' }}]"
        "{% for i in (1..1) %}[{{ forloop.__class__.__init__.__globals__ }}][{{ forloop.__dict__ }}]{% endfor %}"
        "{% assign r = (1..2) %}[{{ r.start }}][{{ nothing.__globals__ }}]"
    )

    assert text(body) == "[][][][][,][][][][]"  # map found no such key in either item


def test_data_must_be_plain() -> None:
    data = sample_data()
    data["contact"] = {"name": object()}

    with pytest.raises(TemplateError) as caught:
        render_template(TemplateSource("", "{{ contact.name }}"), data)
    assert str(caught.value) == "data: data.contact.name is a object, not plain data"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{" * 30_000, "'{{' is never closed with '}}'"),
        ("{% a" * 15_000, "'{%' is never closed with '%}'"),
        ("{% raw %}" * 7_000, "'raw' is never closed"),
        ("{{ " + "(" * 5_000 + " }}", "expression too long (more than 1000 characters)"),
        ("{{ " + '["' * 2_000 + " }}", "expression too long (more than 1000 characters)"),
    ],
)
def test_sources_that_make_the_lexer_quadratic_are_refused_quickly(body: str, message: str) -> None:
    # Each of these took python-liquid's lexer from seconds to minutes.
    assert failure(body).message == message


def test_render_time_errors_are_template_errors() -> None:
    error = failure("a\n{{ 10 | divided_by: 0 }}")

    assert (error.field, error.line, error.message) == ("body", 2, "divided_by: can't divide by 0")


# -- the cache --------------------------------------------------------------------


def test_a_source_is_parsed_once() -> None:
    source = "Cached {{ contact.name }} " + __name__

    assert compiled(source) is compiled(source)
    assert compiled(source, html=True) is compiled(source, html=True)
    assert compiled(source) is not compiled(source, html=True)  # autoescape differs
    render_template(TemplateSource("", source), sample_data())
    assert compiled(source) is compiled(source)


def test_sample_data_is_a_fresh_copy() -> None:
    first = sample_data()
    first["promo"] = None

    assert sample_data()["promo"] == {"code": "ADA-7K2Q", "expires_at": "2026-12-31T23:59:59Z"}
