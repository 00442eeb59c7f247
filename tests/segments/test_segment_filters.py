"""The filter spec (server.domain.segments): what it accepts, its stored
form read back unchanged, and refusals naming the exact field path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.segments import (
    MAX_CONDITIONS,
    AttributeCondition,
    AttributeOp,
    EventCondition,
    Group,
    Match,
    filter_json,
    parse_duration,
    parse_filter,
)
from tests.support import T0

EXAMPLE: dict[str, Any] = {
    "match": "all",
    "conditions": [
        {"event": "cart_updated", "within": "4h", "where": {"currency": "EUR"}},
        {"event": "order_placed", "within": "4h", "count": {"max": 0}},
        {"attribute": "plan", "op": "in", "value": ["pro", 3, True]},
        {
            "match": "any",
            "conditions": [
                {"last_seen": {"within": "30d"}},
                {"created": {"before": 3600}},
                {"identity": "phone", "exists": False},
                {"consent": {"channel": "email", "topic": "marketing", "state": "granted"}},
                {"label": " VIP "},
                {"conditions": [{"attribute": "seats", "op": "gte", "value": 2.5}]},
            ],
        },
    ],
}


def test_the_example_parses_and_reads_back_unchanged() -> None:
    group = parse_filter(EXAMPLE)
    assert group.match is Match.ALL
    cart, order, plan, _ = group.conditions
    assert isinstance(cart, EventCondition) and cart.within is not None
    assert cart.within.seconds == 4 * 3600 and cart.within.before(T0) == T0 - timedelta(hours=4)
    assert (cart.min_count, cart.max_count, cart.where) == (1, None, (("currency", "EUR"),))
    assert isinstance(order, EventCondition) and (order.min_count, order.max_count) == (None, 0)
    assert plan == AttributeCondition("plan", AttributeOp.IN, ("pro", 3, True))
    stored = filter_json(group)
    nested: Any = stored["conditions"]
    assert nested[3]["conditions"][4] == {"label": "vip"}
    assert nested[3]["conditions"][5]["match"] == "all"
    assert parse_filter(stored) == group
    assert filter_json(parse_filter(stored)) == stored


def test_an_empty_all_is_everyone() -> None:
    assert parse_filter({"conditions": []}) == Group(Match.ALL, ())


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("90s", 90), ("15m", 900), ("4h", 14_400), ("30d", 2_592_000), ("2w", 1_209_600), (60, 60)],
)
def test_durations(raw: Any, seconds: int) -> None:
    assert parse_duration(raw, "d").seconds == seconds


def bad(conditions: list[Any], **top: Any) -> dict[str, Any]:
    return {"conditions": conditions, **top}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("everyone", "filter"),
        ({"match": "all"}, "filter.conditions"),
        ({"conditions": {}}, "filter.conditions"),
        (bad([], match="sometimes"), "filter.match"),
        (bad([], match="any"), "filter.conditions"),
        (bad([], extra=1), "filter.extra"),
        (bad([{}, {"label": "a"}, "x"]), "filter.conditions[0]"),
        (bad([{"label": "a"}, {"label": "a", "event": "b"}]), "filter.conditions[1]"),
        (
            bad([{"label": "a"}, {"label": "b"}, {"event": "x", "within": "4 h"}]),
            "filter.conditions[2].within",
        ),
        (bad([{"event": "x", "within": 0}]), "filter.conditions[0].within"),
        (bad([{"event": "x", "within": True}]), "filter.conditions[0].within"),
        (bad([{"event": "x", "within": "9999w"}]), "filter.conditions[0].within"),
        (bad([{"event": ""}]), "filter.conditions[0].event"),
        (bad([{"event": "x", "count": {}}]), "filter.conditions[0].count"),
        (bad([{"event": "x", "count": {"min": -1}}]), "filter.conditions[0].count.min"),
        (bad([{"event": "x", "count": {"min": 3, "max": 2}}]), "filter.conditions[0].count.max"),
        (bad([{"event": "x", "count": {"least": 2}}]), "filter.conditions[0].count.least"),
        (bad([{"event": "x", "where": {"k": [1]}}]), "filter.conditions[0].where.k"),
        (bad([{"event": "x", "where": {}}]), "filter.conditions[0].where"),
        (bad([{"attribute": "plan"}]), "filter.conditions[0].op"),
        (bad([{"attribute": "plan", "op": "like", "value": "x"}]), "filter.conditions[0].op"),
        (bad([{"attribute": "plan", "op": "eq"}]), "filter.conditions[0].value"),
        (bad([{"attribute": "plan", "op": "eq", "value": None}]), "filter.conditions[0].value"),
        (bad([{"attribute": "plan", "op": "exists", "value": 1}]), "filter.conditions[0].value"),
        (bad([{"attribute": "n", "op": "gt", "value": "5"}]), "filter.conditions[0].value"),
        (bad([{"attribute": "n", "op": "gt", "value": True}]), "filter.conditions[0].value"),
        (bad([{"attribute": "n", "op": "in", "value": []}]), "filter.conditions[0].value"),
        (
            bad([{"attribute": "n", "op": "in", "value": ["a", {}]}]),
            "filter.conditions[0].value[1]",
        ),
        (bad([{"attribute": "n", "op": "contains", "value": 5}]), "filter.conditions[0].value"),
        (bad([{"attribute": "", "op": "exists"}]), "filter.conditions[0].attribute"),
        (bad([{"attribute": "a\x00", "op": "exists"}]), "filter.conditions[0].attribute"),
        (bad([{"last_seen": {}}]), "filter.conditions[0].last_seen"),
        (bad([{"last_seen": {"within": "1d", "before": "2d"}}]), "filter.conditions[0].last_seen"),
        (bad([{"created": {"since": "1d"}}]), "filter.conditions[0].created.since"),
        (bad([{"last_seen": {"before": "x"}}]), "filter.conditions[0].last_seen.before"),
        (bad([{"identity": "fax"}]), "filter.conditions[0].identity"),
        (bad([{"identity": "email", "exists": "yes"}]), "filter.conditions[0].exists"),
        (
            bad([{"consent": {"channel": "email", "topic": "marketing"}}]),
            "filter.conditions[0].consent.state",
        ),
        (
            bad([{"consent": {"channel": "E mail", "topic": "m", "state": "none"}}]),
            "filter.conditions[0].consent.channel",
        ),
        (
            bad([{"consent": {"channel": "email", "topic": "", "state": "none"}}]),
            "filter.conditions[0].consent.topic",
        ),
        (
            bad([{"consent": {"channel": "email", "topic": "m", "state": "maybe"}}]),
            "filter.conditions[0].consent.state",
        ),
        (bad([{"label": "a,b"}]), "filter.conditions[0].label"),
        (bad([{"label": 5}]), "filter.conditions[0].label"),
        (
            bad([{"match": "any", "conditions": [{"label": "a"}, {"label": 1}]}]),
            "filter.conditions[0].conditions[1].label",
        ),
    ],
)
def test_refusals_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_filter(raw)
    assert refused.value.field == field
    assert refused.value.message.startswith(f"{field}: ")


def test_nesting_depth_and_condition_budget() -> None:
    # Three levels of groups, the top one included.
    parse_filter({"conditions": [{"conditions": [{"conditions": [{"label": "a"}]}]}]})
    with pytest.raises(InvalidInput) as deep:
        parse_filter(
            {"conditions": [{"conditions": [{"conditions": [{"conditions": [{"label": "a"}]}]}]}]}
        )
    assert deep.value.field == "filter.conditions[0].conditions[0].conditions[0]"
    parse_filter({"conditions": [{"label": "a"}] * MAX_CONDITIONS})
    # Groups count too: 1 group + 49 inside is 50; one more is refused where it is.
    inner = [{"label": "a"}] * (MAX_CONDITIONS - 1)
    parse_filter({"conditions": [{"conditions": inner}]})
    with pytest.raises(InvalidInput) as many:
        parse_filter({"conditions": [{"conditions": inner}, {"label": "b"}]})
    assert many.value.field == "filter.conditions[1]"


def test_a_zero_minimum_is_no_condition_and_reads_back() -> None:
    group = parse_filter({"conditions": [{"event": "x", "count": {"min": 0}}]})
    (cond,) = group.conditions
    assert isinstance(cond, EventCondition) and (cond.min_count, cond.max_count) == (None, None)
    assert parse_filter(filter_json(group)) == group
