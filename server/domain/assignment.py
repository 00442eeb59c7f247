"""Assignment policies' pure rules (FEATURES.md F5): who among an inbox's
or a team's agents takes a waiting conversation, and which waiting
conversations a freed agent takes.

A policy is stored as JSON on an inbox or a team:

    {"mode": "round_robin",            # or "least_loaded", or "manual"
     "capacity": 8,                    # open conversations per agent, unless
                                       # the agent has a capacity of their own
     "channel_capacity": {"email": 20, "widget": 3},
     "fairness_window": "8h",          # round robin evens out over this
     "reassign_after": "15m",          # no agent reply within: back to the queue
     "offline_grace": "2m"}            # last socket closed this long: away

- **Eligible** agents are available (`online` and present: a socket open,
  or closed for less than `offline_grace`) and under capacity: their open
  conversations below the agent's own capacity, else the policy's, and,
  for the conversation's channel, below `channel_capacity` when the policy
  sets one. No capacity anywhere means no limit.
- **round_robin** hands the next conversation to the eligible agent given
  the fewest within the fairness window — so an agent who was away
  catches up instead of being skipped — then the one whose last
  assignment is oldest, then the lowest id (deterministic).
- **least_loaded** picks the fewest open conversations, then the same
  order as round robin.
- **manual** never assigns: agents pull the oldest waiting conversation
  with "take next", which still respects capacity.

`pick_agent` decides one conversation; `drain` takes a queue (oldest
waiting first, higher priority first) and a set of agents and decides as
many as capacity allows, counting each assignment against the agent it
made — what runs when an agent comes online or a resolve frees capacity.
Nothing here reads a clock or the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_timing import parse_duration
from server.domain.values import Availability

# The durable jobs of requeueing (server.actions.requeue).
REPLY_DUE = "assignment.reply_due"
AGENT_AWAY = "assignment.agent_away"

DEFAULT_FAIRNESS_WINDOW = timedelta(hours=8)
DEFAULT_OFFLINE_GRACE = timedelta(minutes=2)
MAX_CAPACITY = 1000
DAY = 86_400
CHANNELS = ("email", "widget", "api", "slack", "social")
# Priorities, most urgent first (server.domain.values.Priority's values).
PRIORITY_ORDER = {"urgent": 0, "high": 1, "medium": 2, "low": 3, "none": 4}


class Mode(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    MANUAL = "manual"


@dataclasses.dataclass(frozen=True)
class Policy:
    mode: Mode = Mode.ROUND_ROBIN
    capacity: int | None = None
    channel_capacity: Mapping[str, int] = dataclasses.field(default_factory=dict)
    fairness_window: timedelta = DEFAULT_FAIRNESS_WINDOW
    reassign_after: timedelta | None = None
    offline_grace: timedelta = DEFAULT_OFFLINE_GRACE

    def json(self) -> dict[str, JsonValue]:
        """The stored form; `parse_policy` reads it back unchanged."""
        return {
            "mode": self.mode.value,
            "capacity": self.capacity,
            "channel_capacity": dict(self.channel_capacity),
            "fairness_window": int(self.fairness_window.total_seconds()),
            "reassign_after": None
            if self.reassign_after is None
            else int(self.reassign_after.total_seconds()),
            "offline_grace": int(self.offline_grace.total_seconds()),
        }


_KEYS = {
    "mode",
    "capacity",
    "channel_capacity",
    "fairness_window",
    "reassign_after",
    "offline_grace",
}


def parse_policy(value: object, field: str = "policy") -> Policy:
    """A policy from untrusted JSON; errors name the field."""
    if not isinstance(value, dict):
        raise InvalidInput("must be an object", field=field)
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise InvalidInput(f"unknown setting '{unknown[0]}'", field=f"{field}.{unknown[0]}")
    raw_mode = value.get("mode", Mode.ROUND_ROBIN.value)
    try:
        mode = Mode(raw_mode)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise InvalidInput(f"must be one of {choices}", field=f"{field}.mode") from None
    capacity = _capacity(value.get("capacity"), f"{field}.capacity")
    per_channel = value.get("channel_capacity", {})
    if per_channel is None:
        per_channel = {}
    if not isinstance(per_channel, dict):
        raise InvalidInput("must be an object", field=f"{field}.channel_capacity")
    channel_capacity: dict[str, int] = {}
    for channel, limit in per_channel.items():
        where = f"{field}.channel_capacity.{channel}"
        if channel not in CHANNELS:
            raise InvalidInput(f"must be one of {', '.join(CHANNELS)}", field=where)
        parsed = _capacity(limit, where)
        if parsed is None:
            raise InvalidInput("must be a whole number", field=where)
        channel_capacity[channel] = parsed
    return Policy(
        mode=mode,
        capacity=capacity,
        channel_capacity=channel_capacity,
        fairness_window=_duration(
            value.get("fairness_window"),
            f"{field}.fairness_window",
            DEFAULT_FAIRNESS_WINDOW,
            minimum=60,
            maximum=31 * DAY,
        ),
        reassign_after=_optional_duration(value.get("reassign_after"), f"{field}.reassign_after"),
        offline_grace=_duration(
            value.get("offline_grace"),
            f"{field}.offline_grace",
            DEFAULT_OFFLINE_GRACE,
            minimum=0,
            maximum=DAY,
        ),
    )


def _capacity(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("must be a whole number", field=field)
    if not 0 <= value <= MAX_CAPACITY:
        raise InvalidInput(f"must be between 0 and {MAX_CAPACITY}", field=field)
    return value


def _duration(
    value: JsonValue, field: str, default: timedelta, *, minimum: int, maximum: int
) -> timedelta:
    if value is None:
        return default
    return timedelta(seconds=parse_duration(value, field, minimum=minimum, maximum=maximum))


def _optional_duration(value: JsonValue, field: str) -> timedelta | None:
    """A wait of one minute to a week, or None (never)."""
    if value is None:
        return None
    return timedelta(seconds=parse_duration(value, field, minimum=60, maximum=7 * DAY))


@dataclasses.dataclass(frozen=True)
class Agent:
    """What assignment knows of one member of the inbox or team."""

    id: int
    availability: Availability
    connected: bool  # a live socket open now
    # When their last live socket closed (None: never connected).
    left_at: datetime | None
    capacity: int | None  # their own; None: the policy's
    open_total: int
    open_by_channel: Mapping[str, int]
    assigned_in_window: int
    last_assigned_at: datetime | None

    def with_one_more(self, channel: str, now: datetime) -> Agent:
        """This agent after taking a conversation on `channel` at `now`."""
        by_channel = dict(self.open_by_channel)
        by_channel[channel] = by_channel.get(channel, 0) + 1
        return dataclasses.replace(
            self,
            open_total=self.open_total + 1,
            open_by_channel=by_channel,
            assigned_in_window=self.assigned_in_window + 1,
            last_assigned_at=now,
        )


def is_present(agent: Agent, policy: Policy, now: datetime) -> bool:
    """Online and reachable: a socket open, or closed within the grace."""
    if agent.availability is not Availability.ONLINE:
        return False
    if agent.connected:
        return True
    return agent.left_at is not None and now - agent.left_at < policy.offline_grace


def has_room(agent: Agent, policy: Policy, channel: str) -> bool:
    """Under the agent's (else the policy's) capacity, and the channel's."""
    limit = agent.capacity if agent.capacity is not None else policy.capacity
    if limit is not None and agent.open_total >= limit:
        return False
    channel_limit = policy.channel_capacity.get(channel)
    return channel_limit is None or agent.open_by_channel.get(channel, 0) < channel_limit


def eligible(agents: Iterable[Agent], policy: Policy, channel: str, now: datetime) -> list[Agent]:
    return [a for a in agents if is_present(a, policy, now) and has_room(a, policy, channel)]


def _order(policy: Policy) -> Callable[[Agent], tuple[Any, ...]]:
    """The sort key of the agent to prefer (the smallest first)."""

    def round_robin(agent: Agent) -> tuple[Any, ...]:
        # Never assigned sorts before any time.
        last = agent.last_assigned_at
        return (agent.assigned_in_window, last is not None, last or _EPOCH, agent.id)

    if policy.mode is Mode.LEAST_LOADED:
        return lambda agent: (agent.open_total, *round_robin(agent))
    return round_robin


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pick_agent(
    agents: Sequence[Agent],
    policy: Policy,
    channel: str,
    now: datetime,
    *,
    pulled: bool = False,
) -> Agent | None:
    """The agent who takes a conversation on `channel` now, or None (no
    one eligible; or a manual policy, unless an agent `pulled` it)."""
    if policy.mode is Mode.MANUAL and not pulled:
        return None
    candidates = eligible(agents, policy, channel, now)
    if not candidates:
        return None
    return min(candidates, key=_order(policy))


@dataclasses.dataclass(frozen=True)
class Waiting:
    """A conversation in the queue."""

    id: int
    channel: str
    priority: str
    waiting_since: datetime


def queue_order(conversations: Iterable[Waiting]) -> list[Waiting]:
    """The queue as it is served: most urgent first, then the longest
    waiting, then the oldest id."""
    return sorted(
        conversations,
        key=lambda c: (PRIORITY_ORDER.get(c.priority, 4), c.waiting_since, c.id),
    )


def drain(
    queue: Iterable[Waiting], agents: Sequence[Agent], policy: Policy, now: datetime
) -> list[tuple[int, int]]:
    """(conversation id, agent id) for as much of the queue as capacity
    allows, in queue order; each assignment counts against its agent for
    the next. A conversation no one can take (its channel full everywhere)
    is passed over, not a stop: the next may be on another channel."""
    if policy.mode is Mode.MANUAL:
        return []
    team = {a.id: a for a in agents}
    decided: list[tuple[int, int]] = []
    for conversation in queue_order(queue):
        chosen = pick_agent(list(team.values()), policy, conversation.channel, now)
        if chosen is None:
            continue
        decided.append((conversation.id, chosen.id))
        team[chosen.id] = chosen.with_one_more(conversation.channel, now)
    return decided
