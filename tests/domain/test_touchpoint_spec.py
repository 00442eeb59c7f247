"""Parsing a touchpoint as an author sends it: every field checked by
name, defaults filled in, and the stored form read back the same."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.touchpoints import (
    ExitKind,
    Reentry,
    TouchKind,
    TriggerKind,
    decision_key,
    episode_key,
    implied_exits,
    matches,
    parse_touchpoint,
    resolve_match,
    touchpoint_json,
)


def cart_reminder(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Abandoned cart",
        "trigger": {"kind": "contact_event", "name": "cart_updated"},
        "episode_key": "cart:{cart_id}",
        "exit_rules": [
            {"kind": "contact_event", "name": "order_placed", "match": {"cart_id": "{cart_id}"}}
        ],
        "steps": [
            {
                "delay": {"after": "4h"},
                "variants": [{"subject": "Still thinking?", "body": "{{ contact.name }}"}],
            }
        ],
    }
    body.update(overrides)
    return body


def test_a_cart_reminder_parses_with_its_defaults() -> None:
    spec = parse_touchpoint(cart_reminder())
    assert spec.kind is TouchKind.MARKETING
    assert spec.trigger.kind is TriggerKind.CONTACT_EVENT
    assert spec.trigger.key == "contact_event:cart_updated"
    assert spec.reentry is Reentry.PER_EPISODE
    assert spec.steps[0].variants[0].id == "a"
    assert spec.exit_rules[0].kind is ExitKind.CONTACT_EVENT
    assert spec.max_lateness_seconds == 6 * 3600


def test_the_stored_form_parses_back_to_the_same_spec() -> None:
    spec = parse_touchpoint(cart_reminder(priority=80, holdout_percent=10))
    assert parse_touchpoint(touchpoint_json(spec)) == spec


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"kind": "spam"}, "kind"),
        ({"trigger": {"kind": "event", "name": "agent.created"}}, "trigger.name"),
        ({"trigger": {"kind": "contact_event", "name": "Cart Updated"}}, "trigger.name"),
        ({"trigger": {"kind": "no_customer_reply"}}, "trigger.wait"),
        (
            {"trigger": {"kind": "broadcast", "segment_id": 1, "at_local": "soon"}},
            "trigger.at_local",
        ),
        ({"steps": []}, "steps"),
        ({"steps": [{"variants": []}]}, "steps[0].variants"),
        ({"steps": [{"variants": [{"subject": "s", "body": " "}]}]}, "steps[0].variants[0].body"),
        ({"steps": [{"channel": "fax", "variants": [{"body": "x"}]}]}, "steps[0].channel"),
        ({"episode_key": "cart:{cart id}"}, "episode_key"),
        ({"exit_rules": [{"kind": "contact_event"}]}, "exit_rules[0].name"),
        ({"reentry": "cooldown"}, "cooldown"),
        ({"holdout_percent": 90}, "holdout_percent"),
        ({"priority": True}, "priority"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_bad_field_is_named(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_touchpoint(cart_reminder(**overrides))
    assert caught.value.field == field


def test_episode_keys_need_every_placeholder() -> None:
    assert episode_key("cart:{cart_id}", {"cart_id": 17}) == "cart:17"
    assert episode_key("cart:{cart_id}", {"cart_id": ""}) is None
    assert episode_key("cart:{cart_id}", {}) is None


def test_exit_matches_compare_the_episode_values_as_text() -> None:
    match = resolve_match({"cart_id": "{cart_id}"}, {"cart_id": 17})
    assert matches(match, {"cart_id": "17"})
    assert not matches(match, {"cart_id": "18"})
    assert not matches(resolve_match({"cart_id": "{cart_id}"}, {}), {"cart_id": ""})


def test_reply_chases_end_when_the_reply_comes() -> None:
    body = cart_reminder(trigger={"kind": "no_customer_reply", "wait": "24h"})
    del body["episode_key"]
    spec = parse_touchpoint(body)
    assert spec.episode_key == "awaiting_reply:{message_id}"
    assert [rule.kind for rule in implied_exits(spec.trigger)] == [ExitKind.CUSTOMER_REPLY]


def test_one_decision_key_per_episode_and_step() -> None:
    assert decision_key(7, 0) != decision_key(7, 1) != decision_key(8, 0)
