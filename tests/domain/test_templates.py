"""Canned-response templates (server.domain.templates): what renders to
what, what is refused at save time and where, and that nothing a
template says can reach beyond the documented values or grow without
bound."""

from __future__ import annotations

import pytest

from server.domain.templates import (
    MAX_FILTERS,
    MAX_STRING_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TEMPLATE_CHARS,
    MAX_VALUE_CHARS,
    VARIABLES,
    TemplateError,
    check,
    first_name,
    render,
)

VALUES = {
    "contact.name": "Cora Customer",
    "contact.first_name": "Cora",
    "contact.email": "cora@shop.test",
    "agent.name": "Gus Agent",
    "agent.first_name": "Gus",
    "conversation.id": "41",
    "inbox.name": "Website",
}
ANONYMOUS = {**VALUES, "contact.name": "", "contact.first_name": "", "contact.email": ""}

RENDERS: list[tuple[str, dict[str, str], str]] = [
    ("plain text, no tags", VALUES, "plain text, no tags"),
    ("", VALUES, ""),
    ("Hi {{contact.first_name}}!", VALUES, "Hi Cora!"),
    ("Hi {{ contact.first_name }}!", VALUES, "Hi Cora!"),
    ("Hi {{\n  contact . first_name\n}}", VALUES, "Hi Cora"),
    ('Hi {{contact.first_name|default("there")}}', VALUES, "Hi Cora"),
    ('Hi {{contact.first_name|default("there")}}', ANONYMOUS, "Hi there"),
    ("Hi {{contact.first_name|default('there')}}", ANONYMOUS, "Hi there"),
    ('Hi {{ contact.first_name | default( "there" ) }}', ANONYMOUS, "Hi there"),
    ("{{contact.email}}", ANONYMOUS, ""),
    ("{{agent.name|upper}}", VALUES, "GUS AGENT"),
    ("{{agent.name|lower}}", VALUES, "gus agent"),
    ('{{contact.email|default("none")|upper}}', ANONYMOUS, "NONE"),
    ('{{contact.name|upper|default("x")}}', VALUES, "CORA CUSTOMER"),
    ("#{{conversation.id}} in {{inbox.name}}", VALUES, "#41 in Website"),
    ("— {{agent.first_name}}, {{inbox.name}} team", VALUES, "— Gus, Website team"),
    ("{{agent.name}}{{agent.name}}", VALUES, "Gus AgentGus Agent"),
    # A value missing from the mapping is empty, so `default` applies.
    ('{{inbox.name|default("us")}}', {}, "us"),
    # Whitespace-only counts as empty.
    ('{{contact.name|default("there")}}', {"contact.name": "   "}, "there"),
    # String literals: the way to write a literal "{{" or "}}".
    ('{{ "{{" }}contact.name{{ "}}" }}', VALUES, "{{contact.name}}"),
    ("{{ '{{' }}", VALUES, "{{"),
    ("{{ '{{' }}contact.name}}", VALUES, "{{contact.name}}"),
    ('{{ "}}" }}', VALUES, "}}"),
    ('{{ "say hi" | upper }}', VALUES, "SAY HI"),
    # "}}" and single braces outside a tag are plain text.
    ("}} {x} { {", VALUES, "}} {x} { {"),
    ("{%- if x %}{# no #}", VALUES, "{%- if x %}{# no #}"),
    # Values are never parsed again: a name that looks like a tag stays text.
    ("{{contact.name}}", {"contact.name": "{{agent.name}}"}, "{{agent.name}}"),
    (
        "{{contact.name}}",
        {"contact.name": "<script>alert(1)</script>"},
        "<script>alert(1)</script>",
    ),
    # Unicode around and in values passes through untouched.
    ("Grüße, {{contact.first_name}} 👋", {"contact.first_name": "Zoë"}, "Grüße, Zoë 👋"),
]


@pytest.mark.parametrize(("source", "values", "expected"), RENDERS)
def test_renders(source: str, values: dict[str, str], expected: str) -> None:
    check(source)  # every one of these is also valid at save time
    assert render(source, values) == expected


# source -> (line, column, words the message must contain)
REFUSED: list[tuple[str, int, int, str]] = [
    # Only the documented variables: no attribute walking, no dunders.
    ("{{contact.__class__}}", 1, 3, "unknown variable 'contact.__class__'"),
    ("{{contact.name.__class__}}", 1, 3, "unknown variable"),
    ("{{ contact.name.__globals__ }}", 1, 4, "unknown variable"),
    ("{{__import__}}", 1, 3, "unknown variable '__import__'"),
    ("{{contact}}", 1, 3, "unknown variable 'contact'"),
    ("{{contact.phone}}", 1, 3, "allowed: contact.name"),
    ("{{ self }}", 1, 4, "unknown variable"),
    # No indexing, calls, arithmetic or expressions.
    ("{{contact['name']}}", 1, 10, "unexpected character '['"),
    ("{{contact.name()}}", 1, 15, "a filter starts with |"),
    ("{{contact.name + agent.name}}", 1, 16, "unexpected character '+'"),
    ("{{ 7*7 }}", 1, 4, "unexpected character '7'"),
    ("{{contact.name contact.email}}", 1, 16, "a filter starts with |"),
    ("{{ contact. }}", 1, 13, "a name after '.'"),
    ("{{ .name }}", 1, 4, "a variable name or a string"),
    # Filters: only the documented ones, with the documented arguments.
    ("{{contact.name|title}}", 1, 16, "unknown filter 'title'"),
    ("{{contact.name|attr('x')}}", 1, 16, "unknown filter 'attr'"),
    ("{{contact.name|upper()}}", 1, 21, "takes no argument"),
    ("{{contact.name|default(there)}}", 1, 24, 'a string argument, like default("there")'),
    ("{{contact.name|default}}", 1, 23, "an argument"),
    ("{{contact.name|default('a', 'b')}}", 1, 27, "unexpected character ','"),
    ('{{contact.name|default("a"}}', 1, 27, "')' to close default("),
    ("{{contact.name|}}", 1, 16, "a filter name"),
    # Tags: closed, not empty, not nested.
    ("{{}}", 1, 1, "empty tag"),
    ("{{   }}", 1, 1, "empty tag"),
    ("Hello {{contact.name", 1, 7, "tag not closed"),
    ("Hello {{contact.name}", 1, 21, "a tag closes with }}"),
    ("Hi\nthere {{", 2, 7, "tag not closed"),
    ("{{ {{contact.name}} }}", 1, 4, "can't contain another tag"),
    # Strings: closed on their own line, no escapes.
    ("{{ 'abc }}", 1, 4, "string not closed"),
    ('{{ "abc\n" }}', 1, 4, "string not closed"),
    ("{{ '{{' }", 1, 9, "a tag closes with }}"),
]


@pytest.mark.parametrize(("source", "line", "column", "words"), REFUSED)
def test_refused_at_save_time_with_its_position(
    source: str, line: int, column: int, words: str
) -> None:
    with pytest.raises(TemplateError) as err:
        check(source)
    assert (err.value.line, err.value.column) == (line, column), str(err.value)
    assert words in str(err.value)
    assert str(err.value).startswith(f"line {line}, column {column}: ")


def test_the_error_for_an_unknown_variable_lists_the_allowed_ones() -> None:
    with pytest.raises(TemplateError) as err:
        check("Dear {{customer.name}}")
    assert err.value.offset == 7
    for name in VARIABLES:
        assert name in str(err.value)


def test_positions_count_lines_and_columns_from_one() -> None:
    source = "line one\nline two {{ok}}\n"
    with pytest.raises(TemplateError) as err:
        check(source)
    assert (err.value.offset, err.value.line, err.value.column) == (20, 2, 12)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hi {{contact.phone}}!", "Hi !"),
        ("{{contact.__class__}}", ""),
        ('{{contact.phone|default("n/a")}}', "n/a"),
        ("{{contact.name|title}}", "Cora Customer"),
        ("{{contact.name|truncate('3')}}", "Cora Customer"),
    ],
)
def test_at_send_time_unknown_names_render_empty_and_unknown_filters_do_nothing(
    source: str, expected: str
) -> None:
    assert render(source, VALUES) == expected


def test_render_looks_up_nothing_but_the_documented_variables() -> None:
    # Even a caller that passes more values can't have a template read them.
    values = {**VALUES, "secret.key": "s3cr3t", "contact.__class__": "leak"}
    assert render("{{secret.key}}{{contact.__class__}}", values) == ""


@pytest.mark.parametrize(
    "source",
    ["Hi {{contact.name", "{{ {{x}} }}", "{{ 'abc }}", "{{}}", "{{contact.name|upper()}}"],
)
def test_broken_syntax_is_refused_at_send_time_too(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source, VALUES)


def test_size_limits() -> None:
    check("x" * MAX_TEMPLATE_CHARS)
    with pytest.raises(TemplateError) as err:
        check("x" * (MAX_TEMPLATE_CHARS + 1))
    assert f"at most {MAX_TEMPLATE_CHARS} characters" in str(err.value)
    # Huge input is refused by size before any parsing, strict or not.
    with pytest.raises(TemplateError):
        render("{{" * 5_000_000, VALUES)

    check("{{inbox.name}}" * MAX_TAGS)
    with pytest.raises(TemplateError) as err:
        check("{{inbox.name}}" * (MAX_TAGS + 1))
    assert err.value.offset == len("{{inbox.name}}") * MAX_TAGS

    check("{{ " + "'" + "a" * MAX_STRING_CHARS + "' }}")
    with pytest.raises(TemplateError) as err:
        check("{{ '" + "a" * (MAX_STRING_CHARS + 1) + "' }}")
    assert f"at most {MAX_STRING_CHARS} characters" in str(err.value)

    check("{{inbox.name" + "|upper" * MAX_FILTERS + "}}")
    with pytest.raises(TemplateError) as err:
        check("{{inbox.name" + "|upper" * (MAX_FILTERS + 1) + "}}")
    assert f"at most {MAX_FILTERS} filters" in str(err.value)

    # A tag that never closes is reported where it opens, without scanning on.
    with pytest.raises(TemplateError) as err:
        check("{{ inbox.name " + " " * MAX_TAG_CHARS + "}}")
    assert err.value.offset == 0
    assert f"within {MAX_TAG_CHARS} characters" in str(err.value)


def test_output_is_bounded_whatever_the_values() -> None:
    huge = {name: "ß" * 100_000 for name in VARIABLES}
    source = "{{contact.name|upper}}" * MAX_TAGS
    out = render(source, huge)
    assert len(out) == MAX_TAGS * MAX_VALUE_CHARS
    assert len(out) + MAX_TEMPLATE_CHARS <= 65_536


@pytest.mark.parametrize(
    "source",
    [
        "{{" * 3000,
        "{{'" * 3000,
        "{{ '{{' }}" * 1000,
        "}}" * 5000,
        "{{contact.name|" + "default('x')|" * 1000 + "}}",
        "\x00{{\x00}}",
        "{{ contact.name }" * 600,
    ],
)
def test_hostile_templates_fail_cleanly_or_render_as_text(source: str) -> None:
    try:
        template = check(source[:MAX_TEMPLATE_CHARS])
    except TemplateError as exc:
        assert exc.line >= 1 and exc.column >= 1
    else:
        assert template.parts is not None


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("Cora Customer", "Cora"),
        ("  Zoë  ", "Zoë"),
        ("", ""),
        ("   ", ""),
        ("Ann-Marie Li", "Ann-Marie"),
    ],
)
def test_first_name(name: str, first: str) -> None:
    assert first_name(name) == first
