"""Assignment policies' pure rules: who is eligible, who is picked, how a
queue drains (server.domain.assignment)."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from server.domain.assignment import (
    Agent,
    Mode,
    Policy,
    Waiting,
    drain,
    eligible,
    parse_policy,
    pick_agent,
    queue_order,
)
from server.domain.errors import InvalidInput
from server.domain.values import Availability

NOW = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)


def agent(agent_id: int, **changes: object) -> Agent:
    base = Agent(
        id=agent_id,
        availability=Availability.ONLINE,
        connected=True,
        left_at=None,
        capacity=None,
        open_total=0,
        open_by_channel={},
        assigned_in_window=0,
        last_assigned_at=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def waiting(conversation_id: int, minutes_ago: int, **changes: object) -> Waiting:
    base = Waiting(
        id=conversation_id,
        channel="widget",
        priority="none",
        waiting_since=NOW - timedelta(minutes=minutes_ago),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- parsing ---------------------------------------------------------------


def test_a_policy_reads_back_what_it_stores() -> None:
    policy = parse_policy(
        {
            "mode": "least_loaded",
            "capacity": 5,
            "channel_capacity": {"widget": 2},
            "fairness_window": "4h",
            "reassign_after": "15m",
            "offline_grace": "90s",
        }
    )
    assert policy.mode is Mode.LEAST_LOADED
    assert policy.reassign_after == timedelta(minutes=15)
    assert parse_policy(policy.json()) == policy


def test_an_empty_policy_is_round_robin_without_limits() -> None:
    policy = parse_policy({})
    assert (policy.mode, policy.capacity, policy.reassign_after) == (Mode.ROUND_ROBIN, None, None)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "policy"),
        ({"mode": "random"}, "policy.mode"),
        ({"capacity": -1}, "policy.capacity"),
        ({"capacity": True}, "policy.capacity"),
        ({"capacity": "3"}, "policy.capacity"),
        ({"channel_capacity": {"fax": 1}}, "policy.channel_capacity.fax"),
        ({"channel_capacity": {"email": None}}, "policy.channel_capacity.email"),
        ({"channel_capacity": []}, "policy.channel_capacity"),
        ({"fairness_window": "10s"}, "policy.fairness_window"),
        ({"reassign_after": "1x"}, "policy.reassign_after"),
        ({"reassign_after": "30s"}, "policy.reassign_after"),
        ({"offline_grace": "2d"}, "policy.offline_grace"),
        ({"colour": "red"}, "policy.colour"),
    ],
)
def test_bad_settings_name_their_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_policy(raw)
    assert caught.value.field == field


# --- who may take one ----------------------------------------------------------


def test_only_online_present_agents_under_capacity_are_eligible() -> None:
    policy = Policy(capacity=3, offline_grace=timedelta(minutes=2))
    agents = [
        agent(1),
        agent(2, availability=Availability.BUSY),
        agent(3, availability=Availability.OFFLINE),
        agent(4, connected=False, left_at=NOW - timedelta(seconds=30)),  # within the grace
        agent(5, connected=False, left_at=NOW - timedelta(minutes=3)),  # gone
        agent(6, connected=False, left_at=None),  # never connected
        agent(7, open_total=3),  # full at the policy's capacity
        agent(8, open_total=3, capacity=4),  # their own capacity is higher
        agent(9, open_total=1, capacity=1),  # their own capacity is lower
    ]
    assert [a.id for a in eligible(agents, policy, "widget", NOW)] == [1, 4, 8]


def test_a_channels_capacity_limits_that_channel_only() -> None:
    policy = Policy(channel_capacity={"widget": 2})
    busy_chatting = agent(1, open_total=2, open_by_channel={"widget": 2})
    assert eligible([busy_chatting], policy, "widget", NOW) == []
    assert eligible([busy_chatting], policy, "email", NOW) == [busy_chatting]


def test_round_robin_prefers_fewest_in_the_window_then_the_longest_idle() -> None:
    policy = Policy(mode=Mode.ROUND_ROBIN)
    agents = [
        agent(1, assigned_in_window=3, last_assigned_at=NOW - timedelta(hours=2)),
        agent(2, assigned_in_window=2, last_assigned_at=NOW - timedelta(minutes=1)),
        agent(3, assigned_in_window=2, last_assigned_at=NOW - timedelta(minutes=5)),
    ]
    chosen = pick_agent(agents, policy, "widget", NOW)
    assert chosen is not None
    assert chosen.id == 3
    # One never assigned goes first among equals.
    assert pick_agent([*agents, agent(4, assigned_in_window=2)], policy, "widget", NOW).id == 4  # type: ignore[union-attr]


def test_least_loaded_prefers_fewest_open_conversations() -> None:
    policy = Policy(mode=Mode.LEAST_LOADED)
    agents = [
        agent(1, open_total=4),
        agent(2, open_total=1, assigned_in_window=9),
        agent(3, open_total=2),
    ]
    chosen = pick_agent(agents, policy, "widget", NOW)
    assert chosen is not None
    assert chosen.id == 2


def test_manual_mode_assigns_only_when_pulled_and_still_within_capacity() -> None:
    policy = Policy(mode=Mode.MANUAL, capacity=1)
    assert pick_agent([agent(1)], policy, "widget", NOW) is None
    assert pick_agent([agent(1)], policy, "widget", NOW, pulled=True) == agent(1)
    assert pick_agent([agent(1, open_total=1)], policy, "widget", NOW, pulled=True) is None
    assert drain([waiting(1, 5)], [agent(1)], policy, NOW) == []


def test_no_one_eligible_leaves_it_in_the_queue() -> None:
    assert pick_agent([agent(1, availability=Availability.BUSY)], Policy(), "widget", NOW) is None


# --- the queue -----------------------------------------------------------------


def test_the_queue_serves_urgent_first_then_the_longest_waiting() -> None:
    queue = [waiting(1, 5), waiting(2, 50), waiting(3, 1, priority="urgent"), waiting(4, 50)]
    assert [c.id for c in queue_order(queue)] == [3, 2, 4, 1]


def test_draining_counts_each_assignment_against_its_agent() -> None:
    policy = Policy(mode=Mode.ROUND_ROBIN, capacity=2)
    queue = [waiting(i, 60 - i) for i in range(1, 7)]

    decided = drain(queue, [agent(1), agent(2)], policy, NOW)

    # Four fit (two each), alternating; the two newest wait.
    assert decided == [(1, 1), (2, 2), (3, 1), (4, 2)]


def test_draining_passes_over_a_full_channel_to_the_next_conversation() -> None:
    policy = Policy(channel_capacity={"widget": 1})
    queue = [waiting(1, 9), waiting(2, 8), waiting(3, 7, channel="email")]
    assert drain(queue, [agent(1)], policy, NOW) == [(1, 1), (3, 1)]


def test_round_robin_is_fair_over_many_arrivals() -> None:
    # 600 arrivals at five agents who step away in turns for the first
    # 500: whoever was away catches up, so by the end the shares are even.
    rng = random.Random(7)
    policy = Policy(mode=Mode.ROUND_ROBIN)
    team = {i: agent(i) for i in range(1, 6)}
    given: Counter[int] = Counter()
    for n in range(600):
        if n % 50 == 0:  # a shift change: one agent steps away, another returns
            away = rng.choice(list(team)) if n < 500 else None
            for i, a in team.items():
                online = Availability.BUSY if i == away else Availability.ONLINE
                team[i] = dataclasses.replace(a, availability=online)
        chosen = pick_agent(list(team.values()), policy, "widget", NOW + timedelta(seconds=n))
        assert chosen is not None
        given[chosen.id] += 1
        team[chosen.id] = chosen.with_one_more("widget", NOW + timedelta(seconds=n))
    assert max(given.values()) - min(given.values()) <= 1
