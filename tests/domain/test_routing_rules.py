"""Routing rules, pure: parsing with the field at fault named, every
condition kind, negation, first-match and all-match plans, the bounded
regular expressions and the stopword language detector."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonObject
from server.domain.languages import detect_language
from server.domain.routing_rules import (
    Decision,
    Plan,
    RoutingFacts,
    RoutingMode,
    Rule,
    Trigger,
    actions_json,
    conditions_json,
    inbox_open,
    parse_actions,
    parse_conditions,
    parse_on,
    parse_spec,
    plan_routing,
    rule_matches,
)
from server.domain.safe_patterns import MAX_PATTERN, MAX_TEXT, check_pattern, search
from server.domain.values import Priority

FACTS = RoutingFacts(
    trigger=Trigger.CONVERSATION_CREATED,
    inbox_id=10,
    channel="email",
    contact_attributes={"plan": "Pro", "seats": 12, "vip": True, "note": None},
    segment_ids=frozenset({5}),
    text="Hello, I want a REFUND for order #12345 please",
    language="en",
    open_now=True,
    priority="none",
    labels=frozenset({"vip"}),
    team_id=None,
    assignee_id=None,
    teams=frozenset({1, 2}),
    assignable=frozenset({7, 8}),
)


def holds(condition: dict[str, Any], **changes: Any) -> bool:
    spec = parse_spec(
        on=["conversation.created"],
        match="all",
        conditions=[condition],
        actions=[{"priority": "high"}],
    )
    return rule_matches(spec, dataclasses.replace(FACTS, **changes))


def rule(
    rule_id: int,
    actions: list[Any],
    conditions: list[Any] | None = None,
    *,
    position: int | None = None,
    enabled: bool = True,
) -> Rule:
    spec = parse_spec(
        on=["conversation.created", "message.created"],
        match="all",
        conditions=conditions or [],
        actions=actions,
    )
    return Rule(
        rule_id, f"Rule {rule_id}", rule_id if position is None else position, enabled, spec
    )


# -- every condition kind ------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "changes", "expected"),
    [
        ({"inbox": [10, 11]}, {}, True),
        ({"inbox": 11}, {}, False),
        ({"channel": ["widget", "email"]}, {}, True),
        ({"channel": "widget"}, {}, False),
        ({"attribute": "plan", "op": "eq", "value": "pro"}, {}, True),
        ({"attribute": "plan", "op": "ne", "value": "pro"}, {}, False),
        ({"attribute": "plan", "op": "in", "value": ["team", "PRO"]}, {}, True),
        ({"attribute": "plan", "op": "contains", "value": "r"}, {}, True),
        ({"attribute": "seats", "op": "gte", "value": 12}, {}, True),
        ({"attribute": "seats", "op": "gt", "value": 12}, {}, False),
        ({"attribute": "plan", "op": "lt", "value": 100}, {}, False),  # not a number
        ({"attribute": "vip", "op": "eq", "value": True}, {}, True),
        ({"attribute": "seats", "op": "eq", "value": True}, {}, False),
        ({"attribute": "note", "op": "missing"}, {}, True),  # null is missing
        ({"attribute": "absent", "op": "exists"}, {}, False),
        ({"attribute": "absent", "op": "ne", "value": "x"}, {}, True),
        ({"segment": 5}, {}, True),
        ({"segment": 6}, {}, False),
        ({"keywords": ["refund", "money back"]}, {}, True),
        ({"keywords": ["refund", "money back"], "match": "all"}, {}, False),
        ({"keywords": ["refun"]}, {}, False),  # whole words only
        ({"keywords": ["Order #12345"]}, {}, True),
        ({"keywords": ["refund"]}, {"text": None}, False),
        ({"pattern": r"order\s?#?\d{4,8}"}, {}, True),
        ({"pattern": "refund", "ignore_case": False}, {}, False),
        ({"pattern": "refund"}, {"text": None}, False),
        ({"language": ["en", "de"]}, {}, True),
        ({"language": ["de"]}, {}, False),
        ({"language": ["unknown"]}, {"language": None}, True),
        ({"business_hours": "in"}, {}, True),
        ({"business_hours": "out"}, {}, False),
        ({"business_hours": "out"}, {"open_now": False}, True),
        ({"priority": ["none", "low"]}, {}, True),
        ({"priority": "urgent"}, {}, False),
        ({"labels": ["vip", "press"]}, {}, True),
        ({"labels": ["press"]}, {}, False),
    ],
)
def test_each_condition_kind(
    condition: dict[str, Any], changes: dict[str, Any], expected: bool
) -> None:
    assert holds(condition, **changes) is expected
    assert holds({**condition, "negate": True}, **changes) is not expected


def test_match_all_any_empty_and_triggers() -> None:
    yes, no = {"channel": "email"}, {"channel": "widget"}
    both = {"on": ["conversation.created"], "conditions": [yes, no], "actions": [{"team": 1}]}
    assert not rule_matches(parse_spec(match="all", **both), FACTS)
    assert rule_matches(parse_spec(match="any", **both), FACTS)
    # No conditions: a catch-all.
    catch_all = parse_spec(
        on=["message.created"], match="all", conditions=[], actions=[{"team": 1}]
    )
    assert rule_matches(catch_all, dataclasses.replace(FACTS, trigger=Trigger.MESSAGE_CREATED))
    # ...but only on the triggers it names.
    assert not rule_matches(catch_all, FACTS)


def test_business_hours_of_an_inbox() -> None:
    hours: JsonObject = {"timezone": "Europe/Berlin", "weekly": {"mon": [["09:00", "17:00"]]}}
    monday_10_berlin = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    monday_18_berlin = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)
    assert inbox_open({"business_hours": hours}, monday_10_berlin)
    assert not inbox_open({"business_hours": hours}, monday_18_berlin)
    # No hours set: nothing says it is closed.
    assert inbox_open({}, monday_18_berlin)
    assert inbox_open(None, monday_18_berlin)


# -- plans -------------------------------------------------------------------


def test_first_match_stops_at_the_first_matching_rule() -> None:
    rules = [
        rule(1, [{"team": 1}], [{"channel": "widget"}]),  # does not match
        rule(2, [{"team": 2}, {"labels": ["Refund"]}], [{"keywords": ["refund"]}]),
        rule(3, [{"priority": "high"}]),  # matches, never reached
    ]
    plan = plan_routing(rules, RoutingMode.FIRST, FACTS)
    assert plan == Plan(
        decisions=(Decision(2, "Rule 2", {"labels": ["refund"], "team": 2}),),
        team_id=2,
        add_labels=("refund",),
    )


def test_all_match_later_rules_override_earlier_ones_and_labels_add_up() -> None:
    rules = [
        rule(1, [{"team": 1}, {"priority": "low"}, {"labels": ["a", "vip"]}]),
        rule(2, [{"team": 2}, {"labels": ["a", "b"]}, {"assignee": 7}]),
        rule(3, [{"priority": "urgent"}], [{"channel": "widget"}]),  # no match
        rule(4, [{"priority": "high"}]),
    ]
    plan = plan_routing(rules, RoutingMode.ALL, FACTS)
    # Rule 1 keeps only label "a" ("vip" is already there); its team and
    # priority were overridden by rules 2 and 4.
    assert plan.decisions == (
        Decision(1, "Rule 1", {"labels": ["a"]}),
        Decision(2, "Rule 2", {"assignee": 7, "labels": ["b"], "team": 2}),
        Decision(4, "Rule 4", {"priority": "high"}),
    )
    assert (plan.team_id, plan.priority, plan.add_labels, plan.assignee_id) == (
        2,
        Priority.HIGH,
        ("a", "b"),
        7,
    )


def test_position_order_disabled_rules_and_no_op_changes() -> None:
    rules = [
        rule(1, [{"team": 1}], position=5),
        rule(2, [{"team": 2}], position=0, enabled=False),
        rule(3, [{"priority": "none"}], position=1),  # already none: no change
    ]
    plan = plan_routing(rules, RoutingMode.FIRST, FACTS)
    # Rule 3 comes first and matches, but changes nothing: no decision.
    assert plan == Plan()
    plan = plan_routing(rules, RoutingMode.ALL, FACTS)
    assert plan.decisions == (Decision(1, "Rule 1", {"team": 1}),)
    # The team it already has is no change either.
    assert plan_routing(rules, RoutingMode.ALL, dataclasses.replace(FACTS, team_id=1)) == Plan()


def test_actions_naming_what_is_gone_are_skipped_and_said_so() -> None:
    rules = [rule(1, [{"team": 9}, {"assignee": 99}, {"priority": "high"}])]
    plan = plan_routing(rules, RoutingMode.FIRST, FACTS)
    assert plan.decisions == (
        Decision(
            1,
            "Rule 1",
            {"priority": "high"},
            ("team 9 no longer exists", "agent 99 is not an active member of the inbox"),
        ),
    )
    assert (plan.team_id, plan.assignee_id, plan.priority) == (None, None, Priority.HIGH)


# -- parsing -----------------------------------------------------------------

STORED_CONDITIONS = [
    {"inbox": [3, 10]},
    {"channel": ["email", "widget"]},
    {"attribute": "plan", "op": "in", "value": ["pro", 3]},
    {"attribute": "plan", "op": "exists"},
    {"segment": 5, "negate": True},
    {"keywords": ["refund"], "match": "any"},
    {"pattern": "refund", "ignore_case": True},
    {"language": ["de", "unknown"]},
    {"business_hours": "out"},
    {"priority": ["high"]},
    {"labels": ["vip"]},
]


def test_the_stored_form_reads_back_unchanged() -> None:
    assert conditions_json(parse_conditions(STORED_CONDITIONS)) == STORED_CONDITIONS
    actions = [{"team": 1}, {"priority": "high"}, {"labels": ["a", "b"]}, {"assignee": 7}]
    assert actions_json(parse_actions(actions)) == actions
    # Defaults are spelled out, labels cleaned, lists sorted and unique.
    assert conditions_json(
        parse_conditions([{"inbox": 4}, {"keywords": ["x", "x"]}, {"labels": [" VIP "]}])
    ) == [{"inbox": [4]}, {"keywords": ["x"], "match": "any"}, {"labels": ["vip"]}]


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        ("all", "conditions"),
        ([{"channel": "email"}, 3], "conditions[1]"),
        ([{}], "conditions[0]"),
        ([{"inbox": 1, "channel": "email"}], "conditions[0]"),
        ([{"inbox": 1, "colour": "red"}], "conditions[0].colour"),
        ([{"inbox": [1, "two"]}], "conditions[0].inbox[1]"),
        ([{"inbox": []}], "conditions[0].inbox"),
        ([{"channel": ["fax"]}], "conditions[0].channel[0]"),
        ([{"attribute": "plan", "op": "like", "value": "x"}], "conditions[0].op"),
        ([{"attribute": "plan", "op": "eq"}], "conditions[0].value"),
        ([{"attribute": "plan", "op": "exists", "value": 1}], "conditions[0].value"),
        ([{"attribute": "seats", "op": "gt", "value": "3"}], "conditions[0].value"),
        ([{"attribute": "", "op": "exists"}], "conditions[0].attribute"),
        ([{"segment": 0}], "conditions[0].segment"),
        ([{"keywords": []}], "conditions[0].keywords"),
        ([{"keywords": ["ok", "  "]}], "conditions[0].keywords[1]"),
        ([{"keywords": ["ok"], "match": "most"}], "conditions[0].match"),
        ([{"channel": "email"}, {"inbox": 1}, {"pattern": "(a+)+$"}], "conditions[2].pattern"),
        ([{"pattern": "["}], "conditions[0].pattern"),
        ([{"pattern": 3}], "conditions[0].pattern"),
        ([{"pattern": "x", "ignore_case": "yes"}], "conditions[0].ignore_case"),
        ([{"language": ["klingon"]}], "conditions[0].language[0]"),
        ([{"business_hours": "maybe"}], "conditions[0].business_hours"),
        ([{"priority": ["asap"]}], "conditions[0].priority[0]"),
        ([{"labels": ["a,b"]}], "conditions[0].labels[0]"),
        ([{"labels": ["x"], "negate": "no"}], "conditions[0].negate"),
        ([{"inbox": 1}] * 21, "conditions"),
    ],
)
def test_bad_conditions_name_the_field(conditions: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_conditions(conditions)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ([], "actions"),
        ({"team": 1}, "actions"),
        ([{"team": 1, "priority": "high"}], "actions[0]"),
        ([{"queue": 1}], "actions[0].queue"),
        ([{"team": "billing"}], "actions[0].team"),
        ([{"team": 1}, {"team": 2}], "actions[1].team"),
        ([{"priority": "asap"}], "actions[0].priority"),
        ([{"priority": ["high"]}], "actions[0].priority"),
        ([{"labels": []}], "actions[0].labels"),
        ([{"assignee": True}], "actions[0].assignee"),
    ],
)
def test_bad_actions_name_the_field(actions: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_actions(actions)
    assert caught.value.field == field


def test_bad_triggers_name_the_field() -> None:
    assert parse_on(["message.created"]) == {Trigger.MESSAGE_CREATED}
    for raw, field in (([], "on"), (["message.deleted"], "on[0]"), ("message.created", "on")):
        with pytest.raises(InvalidInput) as caught:
            parse_on(raw)
        assert caught.value.field == field


# -- bounded regular expressions -----------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a+)+b", "a repeated group must not hold a repeat or an alternation"),
        ("(a|ab)*c", "a repeated group must not hold a repeat or an alternation"),
        (r"(\w+\s?){2,5}", "a repeated group must not hold a repeat or an alternation"),
        ("(?:x*)*", "a repeated group must not hold a repeat or an alternation"),
        (r"(a)\1", "backreferences are not allowed"),
        ("(?P<x>a)(?P=x)", "backreferences are not allowed"),
        (r"\d+\D+\d+z", "too many repeats with a choice"),
        (".*a.*b", "too many repeats with a choice"),
        ("a{0,100}b{0,100}", "too many repeats with a choice"),
        ("x" * (MAX_PATTERN + 1), f"must be a pattern of 1 to {MAX_PATTERN} characters"),
        ("", f"must be a pattern of 1 to {MAX_PATTERN} characters"),
        ("a)", "is not a valid regular expression"),
    ],
)
def test_catastrophic_and_bad_patterns_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_pattern(pattern, "p")
    assert caught.value.field == "p"
    assert caught.value.message.startswith(f"p: {reason}")


@pytest.mark.parametrize(
    "pattern",
    [
        r"https?://\S+",
        "refund|return",
        r"order\s?#?\d{4,8}",
        r"(?:\d{3}-){2}\d{4}",  # an exact count of a group: no choice
        r"(?:refund|return)s?",  # a group with | repeated at most once
        r"[(+*]+x",  # quantifier characters inside a class are literals
        r"a{,3}b{2}",
        "(?i)refund",
        r"x\{1,\}",
        "(?#a comment)x*",
    ],
)
def test_ordinary_patterns_are_allowed(pattern: str) -> None:
    check_pattern(pattern, "p")


def test_only_the_start_of_a_long_text_is_searched() -> None:
    near = check_pattern("needle", "p")
    text = "a" * (MAX_TEXT - 6) + "needle"
    assert search(near, text)
    assert not search(near, "a" + text)


# -- language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello, my order is late", "en"),
        ("Hallo, meine Bestellung ist noch nicht da", "de"),
        ("Bonjour, je voudrais un remboursement pour ma commande", "fr"),
        ("Hola, mi pedido no ha llegado, gracias", "es"),
        ("Ciao, il mio ordine non è arrivato, grazie", "it"),
        ("Hallo, mijn bestelling is nog niet binnen", "nl"),
        ("Olá, meu pedido não chegou, obrigado", "pt"),
        ("ok", None),  # too little to tell
        ("", None),
        ("12345 !!!", None),
    ],
)
def test_language_detection(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_the_documented_example_rule_parses() -> None:
    spec = parse_spec(
        on=["conversation.created", "message.created"],
        match="all",
        conditions=[
            {"channel": ["email", "widget"]},
            {"keywords": ["refund", "money back"]},
            {"pattern": r"order\s?#?\d{4,8}", "ignore_case": True},
            {"language": ["de"], "negate": True},
            {"business_hours": "in"},
        ],
        actions=[{"team": 1}, {"priority": "high"}, {"labels": ["refund"]}, {"assignee": 7}],
    )
    assert rule_matches(spec, FACTS)
