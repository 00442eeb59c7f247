"""Macro steps (server.domain.macros): every step type's accepted and
stored form, and refusals naming the exact field."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.macros import (
    MAX_SNOOZE_MINUTES,
    MAX_STEPS,
    STEP_FIELDS,
    MacroScope,
    clean_name,
    owner_key,
    parse_actions,
    step_field,
    step_schema,
)
from server.domain.values import Priority


@pytest.mark.parametrize(
    ("step", "stored"),
    [
        ({"type": "send_canned_response", "canned_response_id": 4}, None),
        ({"type": "add_label", "label": " VIP "}, {"type": "add_label", "label": "vip"}),
        (
            {"type": "remove_label", "label": "Billing"},
            {"type": "remove_label", "label": "billing"},
        ),
        ({"type": "assign_team", "team_id": 3}, None),
        ({"type": "assign_team", "team_id": None}, None),
        ({"type": "assign_agent", "agent_id": 7}, None),
        ({"type": "assign_agent", "agent_id": "me"}, None),
        ({"type": "assign_agent", "agent_id": None}, None),
        *[({"type": "set_priority", "priority": p.value}, None) for p in Priority],
        ({"type": "snooze", "minutes": 1}, None),
        ({"type": "snooze", "minutes": MAX_SNOOZE_MINUTES}, None),
        ({"type": "resolve"}, None),
        ({"type": "reopen"}, None),
    ],
)
def test_each_step_type_is_accepted(step: dict[str, Any], stored: dict[str, Any] | None) -> None:
    assert parse_actions([step]) == [stored or step]
    # The stored form parses to itself: a run re-checks what was saved.
    assert parse_actions(parse_actions([step])) == parse_actions([step])


RESOLVE = {"type": "resolve"}


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ("resolve", "actions"),
        ({"type": "resolve"}, "actions"),
        ([], "actions"),
        ([RESOLVE] * (MAX_STEPS + 1), "actions"),
        ([RESOLVE, "resolve"], "actions[1]"),
        ([RESOLVE, None], "actions[1]"),
        ([{}], "actions[0].type"),
        ([{"label": "x"}], "actions[0].type"),
        ([{"type": "close"}], "actions[0].type"),
        ([{"type": 3}], "actions[0].type"),
        ([{"type": "resolve", "minutes": 5}], "actions[0].minutes"),
        ([{"type": "add_label"}], "actions[0].label"),
        ([{"type": "add_label", "label": "x", "team_id": 1}], "actions[0].team_id"),
        ([RESOLVE, RESOLVE, {"type": "add_label", "label": ""}], "actions[2].label"),
        ([RESOLVE, RESOLVE, {"type": "add_label", "label": "a,b"}], "actions[2].label"),
        ([{"type": "add_label", "label": "x" * 101}], "actions[0].label"),
        ([{"type": "add_label", "label": 5}], "actions[0].label"),
        ([{"type": "add_label", "label": "nul\x00"}], "actions[0].label"),
        ([{"type": "remove_label", "label": "\ud800"}], "actions[0].label"),
        (
            [{"type": "send_canned_response", "canned_response_id": 0}],
            "actions[0].canned_response_id",
        ),
        (
            [{"type": "send_canned_response", "canned_response_id": "4"}],
            "actions[0].canned_response_id",
        ),
        (
            [{"type": "send_canned_response", "canned_response_id": True}],
            "actions[0].canned_response_id",
        ),
        (
            [{"type": "send_canned_response", "canned_response_id": None}],
            "actions[0].canned_response_id",
        ),
        (
            [{"type": "send_canned_response", "canned_response_id": 2**63}],
            "actions[0].canned_response_id",
        ),
        ([{"type": "assign_team", "team_id": "me"}], "actions[0].team_id"),
        ([{"type": "assign_team", "team_id": 1.5}], "actions[0].team_id"),
        ([{"type": "assign_agent", "agent_id": "you"}], "actions[0].agent_id"),
        ([{"type": "assign_agent", "agent_id": -1}], "actions[0].agent_id"),
        ([{"type": "assign_agent"}], "actions[0].agent_id"),
        ([{"type": "set_priority", "priority": "critical"}], "actions[0].priority"),
        ([{"type": "set_priority", "priority": 1}], "actions[0].priority"),
        ([{"type": "snooze", "minutes": 0}], "actions[0].minutes"),
        ([{"type": "snooze", "minutes": MAX_SNOOZE_MINUTES + 1}], "actions[0].minutes"),
        ([{"type": "snooze", "minutes": 30.0}], "actions[0].minutes"),
        ([{"type": "snooze", "minutes": True}], "actions[0].minutes"),
    ],
)
def test_bad_steps_name_the_field(actions: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_actions(actions)
    assert caught.value.field == field
    assert caught.value.message.startswith(field + ":")


def test_twenty_steps_is_the_limit() -> None:
    assert len(parse_actions([RESOLVE] * MAX_STEPS)) == MAX_STEPS


@pytest.mark.parametrize(
    ("scope", "agent_id", "key"),
    [(MacroScope.WORKSPACE, None, "workspace"), (MacroScope.PERSONAL, 7, "agent:7")],
)
def test_owner_key(scope: MacroScope, agent_id: int | None, key: str) -> None:
    assert owner_key(scope, agent_id) == key


def test_a_personal_owner_key_needs_the_agent() -> None:
    with pytest.raises(ValueError, match="owner"):
        owner_key(MacroScope.PERSONAL, None)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "a\x00b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_name(name)
    assert caught.value.field == "name"


def test_names_are_trimmed() -> None:
    assert clean_name("  Refund and close ") == "Refund and close"


def test_step_field_names_the_value_or_the_step() -> None:
    assert step_field({"type": "assign_team", "team_id": 3}, "actions[1]") == "actions[1].team_id"
    assert step_field({"type": "resolve"}, "actions[4]") == "actions[4]"


def test_the_openapi_schema_has_one_shape_per_type() -> None:
    variants = step_schema()["oneOf"]
    assert [v["properties"]["type"]["enum"] for v in variants] == [[t.value] for t in STEP_FIELDS]
    for variant, name in zip(variants, STEP_FIELDS.values(), strict=True):
        assert set(variant["required"]) == {"type"} | ({name} if name else set())
