"""Touchpoints, the pure part (FEATURES.md F7, TOUCHPOINTS.md): what a
touchpoint is, parsed from what an author sends, and the states its
episodes and decisions go through.

A touchpoint is a rule: a **trigger** starts an **episode** for one
contact and one business object (the episode key: `cart:c-17`,
`awaiting_reply:812`, `birthday:2027`), and each **step** of its sequence
becomes one **decision** for that episode — scheduled at a time, checked
against the guards when due, sent at most once. Exit rules and the goal
end an episode early; its pending decision is then cancelled.

The parsers take the JSON an author sent and refuse, naming the exact
field, anything the engine could not run. Templates are checked by the
action (they need the Liquid environment, which the domain does not
import); delays, quiet hours and caps by server.domain.touch_timing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TypeVar

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_timing import (
    QuietHours,
    StepDelay,
    delay_json,
    parse_delay,
    parse_duration,
    parse_quiet_hours,
    quiet_hours_json,
)

MAX_NAME = 200
MAX_DESCRIPTION = 1000
MAX_STEPS = 10
MAX_VARIANTS = 5
MAX_EXIT_RULES = 10
MAX_SUBJECT = 1000
MAX_BODY = 64 * 1024
MAX_KEY = 200
MAX_PRIORITY = 100
MAX_HOLDOUT = 50
MAX_MATCH_KEYS = 10
# The longest wait, cooldown, goal window or lateness a touchpoint names.
MAX_WINDOW = 366 * 24 * 3600

E = TypeVar("E", bound=StrEnum)


class TouchKind(StrEnum):
    # Promotional: needs consent, counts against the marketing caps.
    MARKETING = "marketing"
    # About the customer's own conversation or account (a no-reply chase,
    # a CSAT survey): its own, looser caps, honours unsubscribes too.
    SERVICE = "service"
    # Something the customer asked for (a receipt): never capped.
    TRANSACTIONAL = "transactional"


class TouchStatus(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"  # starts nothing; pending decisions wait
    ARCHIVED = "archived"  # starts nothing; pending decisions are cancelled


class TriggerKind(StrEnum):
    EVENT = "event"  # a Threadline event (TRIGGER_EVENTS)
    CONTACT_EVENT = "contact_event"  # a tracked event: `track()` or the shop's API
    NO_CUSTOMER_REPLY = "no_customer_reply"  # an agent wrote; the customer stays silent
    NO_AGENT_REPLY = "no_agent_reply"  # the customer wrote; no agent answers
    SEGMENT_ENTRY = "segment_entry"
    DATE = "date"  # a date attribute: birthday, signup anniversary
    BROADCAST = "broadcast"  # once, to a segment, at a local time


# The Threadline events a touchpoint can start on, by their wire name.
TRIGGER_EVENTS = (
    "contact.created",
    "conversation.created",
    "conversation.resolved",
    "message.received",
)


class Channel(StrEnum):
    EMAIL = "email"
    WIDGET = "widget"


class Reentry(StrEnum):
    ONCE = "once"  # one episode per contact, ever
    PER_EPISODE = "per_episode"  # one per episode key (each cart)
    COOLDOWN = "cooldown"  # one per key, and none within the cooldown of the last


class Arm(StrEnum):
    TREATMENT = "treatment"
    HOLDOUT = "holdout"  # the control group: decided, never sent


class EpisodeState(StrEnum):
    ACTIVE = "active"
    GOAL = "goal"
    EXITED = "exited"
    DONE = "done"
    EXPIRED = "expired"


class DecisionState(StrEnum):
    SCHEDULED = "scheduled"
    DEFERRED = "deferred"  # waiting for a cap window, quiet hours, business hours
    SENDING = "sending"  # handed to the channel, outcome not yet known
    SENT = "sent"
    UNKNOWN = "unknown"  # may or may not have gone out: never resent by itself
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


# Decisions still to be looked at when due.
PENDING = (DecisionState.SCHEDULED, DecisionState.DEFERRED)
# Settled: nothing more happens to these by itself.
FINAL = (
    DecisionState.SENT,
    DecisionState.UNKNOWN,
    DecisionState.SKIPPED,
    DecisionState.CANCELLED,
    DecisionState.EXPIRED,
    DecisionState.FAILED,
)


class ExitKind(StrEnum):
    CONTACT_EVENT = "contact_event"  # e.g. order_placed for this cart
    CUSTOMER_REPLY = "customer_reply"  # an inbound message in the episode's conversation
    AGENT_REPLY = "agent_reply"  # an agent's message in it
    CONVERSATION_RESOLVED = "conversation_resolved"


@dataclasses.dataclass(frozen=True)
class Trigger:
    """What starts an episode. `name` is the Threadline event type or the
    tracked event's name; `where` filters the event's properties (equal
    values); `segment_id` the segment entered or broadcast to; `attribute`
    the date attribute; `at_local` the broadcast's local date and time
    ("2026-12-20T10:00", in each contact's own zone)."""

    kind: TriggerKind
    name: str | None = None
    where: Mapping[str, JsonValue] = dataclasses.field(default_factory=dict)
    segment_id: int | None = None
    attribute: str | None = None
    wait_seconds: int | None = None
    at_local: str | None = None

    @property
    def key(self) -> str:
        """What the event hook looks touchpoints up by (`trigger_key`)."""
        if self.kind in (TriggerKind.EVENT, TriggerKind.CONTACT_EVENT):
            return f"{self.kind.value}:{self.name}"
        return self.kind.value


@dataclasses.dataclass(frozen=True)
class ExitRule:
    """Ends the episode (state `exited`) when it happens. `match` compares
    the event's properties with the episode's context: `{"cart_id":
    "{cart_id}"}` ends the episode of that cart only."""

    kind: ExitKind
    name: str | None = None
    match: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Goal:
    """What the touchpoint is for: a tracked event (`order_placed`) within
    `within_seconds` after a send, or a redeemed promo code."""

    name: str
    within_seconds: int
    match: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One version of a step's content; `weight` shares the traffic."""

    id: str
    weight: int
    subject: str
    body: str
    html: bool = False
    promo_pool_id: int | None = None


@dataclasses.dataclass(frozen=True)
class Step:
    position: int
    delay: StepDelay
    channel: Channel
    variants: tuple[Variant, ...]
    # Wait for the sending inbox's business hours (a chase that an agent
    # may have to follow up).
    business_hours: bool = False


@dataclasses.dataclass(frozen=True)
class TouchpointSpec:
    """Everything an author says about a touchpoint."""

    name: str
    description: str
    kind: TouchKind
    trigger: Trigger
    steps: tuple[Step, ...]
    episode_key: str
    exit_rules: tuple[ExitRule, ...] = ()
    goal: Goal | None = None
    reentry: Reentry = Reentry.PER_EPISODE
    cooldown_seconds: int | None = None
    priority: int = 50
    holdout_percent: int = 0
    max_lateness_seconds: int | None = 6 * 3600
    quiet_hours: QuietHours | None = None
    inbox_id: int | None = None
    entry_segment_id: int | None = None


# -- parsing ---------------------------------------------------------------


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def _object(value: JsonValue, field: str) -> Mapping[str, JsonValue]:
    if not isinstance(value, Mapping):
        raise _fail(field, "must be an object")
    return value


def _text(value: JsonValue, field: str, *, limit: int, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(field, "must be a string")
    if "\x00" in value:
        raise _fail(field, "must not contain NUL characters")
    if len(value) > limit:
        raise _fail(field, f"at most {limit} characters")
    if not empty and not value.strip():
        raise _fail(field, "must not be empty")
    return value


def _int(value: JsonValue, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(field, f"must be a whole number from {low} to {high}")
    return value


def _id(value: JsonValue, field: str) -> int:
    return _int(value, field, low=1, high=2**63 - 1)


def _choice(enum: type[E], value: JsonValue, field: str) -> E:
    try:
        if isinstance(value, str):
            return enum(value)
    except ValueError:
        pass
    names = ", ".join(member.value for member in enum)
    raise _fail(field, f"must be one of {names}")


def _unknown_keys(raw: Mapping[str, JsonValue], allowed: Sequence[str], field: str) -> None:
    for key in raw:
        if key not in allowed:
            prefix = f"{field}." if field else ""
            raise _fail(f"{prefix}{str(key)[:60]}", "is not a known field")


_NAME = re.compile(r"[a-z][a-z0-9_.:-]{0,99}")


def _event_name(value: JsonValue, field: str) -> str:
    name = _text(value, field, limit=100)
    if not _NAME.fullmatch(name):
        raise _fail(field, "lower-case letters, digits and _ . : - , starting with a letter")
    return name


def parse_event_name(value: JsonValue, field: str = "name") -> str:
    """A tracked event's name by the rule triggers, exits and goals use:
    the shop's API refuses any other, so whatever it records can start or
    end a touchpoint."""
    return _event_name(value, field)


def _where(value: JsonValue, field: str) -> dict[str, JsonValue]:
    raw = _object(value, field)
    if len(raw) > MAX_MATCH_KEYS:
        raise _fail(field, f"at most {MAX_MATCH_KEYS} properties")
    out: dict[str, JsonValue] = {}
    for key, item in raw.items():
        if isinstance(item, Mapping | list):
            raise _fail(f"{field}.{key[:60]}", "must be a string, number, boolean or null")
        out[key] = item
    return out


def _match(value: JsonValue, field: str) -> dict[str, str]:
    raw = _where(value, field)
    for key, item in raw.items():
        if not isinstance(item, str):
            raise _fail(f"{field}.{key[:60]}", 'must be a string such as "{cart_id}"')
    return {key: str(item) for key, item in raw.items()}


_LOCAL_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")

_TRIGGER_FIELDS = ("kind", "name", "where", "segment_id", "attribute", "wait", "at_local")


def parse_trigger(value: JsonValue, field: str = "trigger") -> Trigger:
    raw = _object(value, field)
    _unknown_keys(raw, _TRIGGER_FIELDS, field)
    kind = _choice(TriggerKind, raw.get("kind"), f"{field}.kind")
    where = _where(raw["where"], f"{field}.where") if raw.get("where") is not None else {}
    if kind is TriggerKind.EVENT:
        name = _text(raw.get("name"), f"{field}.name", limit=100)
        if name not in TRIGGER_EVENTS:
            raise _fail(f"{field}.name", f"must be one of {', '.join(TRIGGER_EVENTS)}")
        return Trigger(kind, name=name, where=where)
    if kind is TriggerKind.CONTACT_EVENT:
        return Trigger(kind, name=_event_name(raw.get("name"), f"{field}.name"), where=where)
    if kind in (TriggerKind.NO_CUSTOMER_REPLY, TriggerKind.NO_AGENT_REPLY):
        if "wait" not in raw:
            raise _fail(f"{field}.wait", 'is required, such as "24h"')
        wait = parse_duration(raw["wait"], f"{field}.wait", minimum=1, maximum=MAX_WINDOW)
        return Trigger(kind, wait_seconds=wait)
    if kind in (TriggerKind.SEGMENT_ENTRY, TriggerKind.BROADCAST):
        segment = _id(raw.get("segment_id"), f"{field}.segment_id")
        if kind is TriggerKind.SEGMENT_ENTRY:
            return Trigger(kind, segment_id=segment)
        at = _text(raw.get("at_local"), f"{field}.at_local", limit=16)
        if not _LOCAL_DATETIME.fullmatch(at):
            raise _fail(f"{field}.at_local", 'a local date and time such as "2026-12-20T10:00"')
        return Trigger(kind, segment_id=segment, at_local=at)
    attribute = _text(raw.get("attribute"), f"{field}.attribute", limit=100)
    return Trigger(kind, attribute=attribute)


def trigger_json(trigger: Trigger) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"kind": trigger.kind.value}
    if trigger.name is not None:
        out["name"] = trigger.name
    if trigger.where:
        out["where"] = dict(trigger.where)
    if trigger.segment_id is not None:
        out["segment_id"] = trigger.segment_id
    if trigger.attribute is not None:
        out["attribute"] = trigger.attribute
    if trigger.wait_seconds is not None:
        out["wait"] = trigger.wait_seconds
    if trigger.at_local is not None:
        out["at_local"] = trigger.at_local
    return out


def default_episode_key(trigger: Trigger) -> str:
    """The business object an episode is about, when the author names none."""
    match trigger.kind:
        case TriggerKind.NO_CUSTOMER_REPLY:
            return "awaiting_reply:{message_id}"
        case TriggerKind.NO_AGENT_REPLY:
            return "awaiting_agent:{message_id}"
        case TriggerKind.DATE:
            return f"{trigger.attribute}:{{year}}"
        case TriggerKind.BROADCAST:
            return f"broadcast:{trigger.at_local}"
        case TriggerKind.SEGMENT_ENTRY:
            return "segment:{entered_on}"
        case TriggerKind.EVENT if trigger.name and trigger.name.startswith("conversation."):
            return "conversation:{conversation_id}"
        case TriggerKind.EVENT if trigger.name == "message.received":
            return "message:{message_id}"
        case _:
            return f"{trigger.name}"


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]{0,59})\}")


def parse_episode_key(value: JsonValue, field: str = "episode_key") -> str:
    key = _text(value, field, limit=MAX_KEY)
    rest = _PLACEHOLDER.sub("", key)
    if "{" in rest or "}" in rest:
        raise _fail(field, 'placeholders are names in braces, such as "cart:{cart_id}"')
    return key


def episode_key(template: str, facts: Mapping[str, JsonValue]) -> str | None:
    """The key for an episode from what triggered it, or None when a
    placeholder has no value (a cart event without a cart id starts no
    episode rather than one shared by every cart)."""
    missing = False

    def value(found: re.Match[str]) -> str:
        nonlocal missing
        item = facts.get(found.group(1))
        if item is None or isinstance(item, Mapping | list) or item == "":
            missing = True
            return ""
        return str(item)

    key = _PLACEHOLDER.sub(value, template)
    return None if missing else key[:MAX_KEY]


def resolve_match(match: Mapping[str, str], context: Mapping[str, JsonValue]) -> dict[str, str]:
    """An exit rule's or goal's `match` with the episode's values put in."""
    return {name: episode_key(pattern, context) or "" for name, pattern in match.items()}


def matches(match: Mapping[str, str], properties: Mapping[str, JsonValue]) -> bool:
    """Whether a tracked event's properties carry every resolved value
    (compared as text: "17" and 17 are the same cart)."""
    return all(
        value != "" and str(properties.get(name, "")) == value for name, value in match.items()
    )


def where_matches(where: Mapping[str, JsonValue], properties: Mapping[str, JsonValue]) -> bool:
    return all(properties.get(name) == value for name, value in where.items())


_EXIT_FIELDS = ("kind", "name", "match")


def parse_exit_rules(value: JsonValue, field: str = "exit_rules") -> tuple[ExitRule, ...]:
    if not isinstance(value, list):
        raise _fail(field, "must be a list")
    if len(value) > MAX_EXIT_RULES:
        raise _fail(field, f"at most {MAX_EXIT_RULES} rules")
    rules = []
    for i, item in enumerate(value):
        path = f"{field}[{i}]"
        raw = _object(item, path)
        _unknown_keys(raw, _EXIT_FIELDS, path)
        kind = _choice(ExitKind, raw.get("kind"), f"{path}.kind")
        match = _match(raw["match"], f"{path}.match") if raw.get("match") is not None else {}
        if kind is ExitKind.CONTACT_EVENT:
            rules.append(ExitRule(kind, _event_name(raw.get("name"), f"{path}.name"), match))
        else:
            rules.append(ExitRule(kind))
    return tuple(rules)


def exit_rules_json(rules: Sequence[ExitRule]) -> list[JsonValue]:
    out: list[JsonValue] = []
    for rule in rules:
        item: dict[str, JsonValue] = {"kind": rule.kind.value}
        if rule.name is not None:
            item["name"] = rule.name
        if rule.match:
            item["match"] = dict(rule.match)
        out.append(item)
    return out


def implied_exits(trigger: Trigger) -> tuple[ExitRule, ...]:
    """Exits a trigger brings with it: a chase for a reply ends when the
    reply comes, whatever the author wrote."""
    if trigger.kind is TriggerKind.NO_CUSTOMER_REPLY:
        return (ExitRule(ExitKind.CUSTOMER_REPLY),)
    if trigger.kind is TriggerKind.NO_AGENT_REPLY:
        return (ExitRule(ExitKind.AGENT_REPLY),)
    return ()


def parse_goal(value: JsonValue, field: str = "goal") -> Goal | None:
    if value is None:
        return None
    raw = _object(value, field)
    _unknown_keys(raw, ("name", "within", "match"), field)
    name = _event_name(raw.get("name"), f"{field}.name")
    within = parse_duration(
        raw.get("within", "7d"), f"{field}.within", minimum=1, maximum=MAX_WINDOW
    )
    match = _match(raw["match"], f"{field}.match") if raw.get("match") is not None else {}
    return Goal(name, within, match)


def goal_json(goal: Goal | None) -> JsonValue:
    if goal is None:
        return None
    out: dict[str, JsonValue] = {"name": goal.name, "within": goal.within_seconds}
    if goal.match:
        out["match"] = dict(goal.match)
    return out


_VARIANT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_VARIANT_FIELDS = ("id", "weight", "subject", "body", "html", "promo_pool_id")


def parse_variants(value: JsonValue, field: str, channel: Channel) -> tuple[Variant, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(field, "must be a list of at least one variant")
    if len(value) > MAX_VARIANTS:
        raise _fail(field, f"at most {MAX_VARIANTS} variants")
    variants = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        path = f"{field}[{i}]"
        raw = _object(item, path)
        _unknown_keys(raw, _VARIANT_FIELDS, path)
        vid = raw.get("id", chr(ord("a") + i))
        if not isinstance(vid, str) or not _VARIANT_ID.fullmatch(vid):
            raise _fail(f"{path}.id", "1 to 40 letters, digits, _ or -")
        if vid in seen:
            raise _fail(f"{path}.id", f"{vid!r} is used twice")
        seen.add(vid)
        weight = _int(raw.get("weight", 1), f"{path}.weight", low=1, high=10_000)
        # A widget message has no subject; an email's blank subject means
        # "the thread's own" (checked against the trigger by parse_touchpoint).
        empty_subject = True
        subject = _text(
            raw.get("subject", ""), f"{path}.subject", limit=MAX_SUBJECT, empty=empty_subject
        )
        body = _text(raw.get("body"), f"{path}.body", limit=MAX_BODY)
        html = raw.get("html", False)
        if not isinstance(html, bool):
            raise _fail(f"{path}.html", "must be true or false")
        pool = raw.get("promo_pool_id")
        pool_id = None if pool is None else _id(pool, f"{path}.promo_pool_id")
        variants.append(Variant(vid, weight, subject, body, html, pool_id))
    return tuple(variants)


def variant_json(variant: Variant) -> dict[str, JsonValue]:
    return {
        "id": variant.id,
        "weight": variant.weight,
        "subject": variant.subject,
        "body": variant.body,
        "html": variant.html,
        "promo_pool_id": variant.promo_pool_id,
    }


# `position` is read back from stored steps and ignored: the order is the list's.
_STEP_FIELDS = ("position", "delay", "channel", "variants", "business_hours")


def parse_steps(value: JsonValue, field: str = "steps") -> tuple[Step, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(field, "must be a list of at least one step")
    if len(value) > MAX_STEPS:
        raise _fail(field, f"at most {MAX_STEPS} steps")
    steps = []
    for i, item in enumerate(value):
        path = f"{field}[{i}]"
        raw = _object(item, path)
        _unknown_keys(raw, _STEP_FIELDS, path)
        delay = parse_delay(raw.get("delay", {"after": 0}), f"{path}.delay")
        channel = _choice(Channel, raw.get("channel", "email"), f"{path}.channel")
        variants = parse_variants(raw.get("variants"), f"{path}.variants", channel)
        hours = raw.get("business_hours", False)
        if not isinstance(hours, bool):
            raise _fail(f"{path}.business_hours", "must be true or false")
        steps.append(Step(i, delay, channel, variants, hours))
    return tuple(steps)


def step_json(step: Step) -> dict[str, JsonValue]:
    return {
        "position": step.position,
        "delay": delay_json(step.delay),
        "channel": step.channel.value,
        "variants": [variant_json(v) for v in step.variants],
        "business_hours": step.business_hours,
    }


_FIELDS = (
    "name",
    "description",
    "kind",
    "trigger",
    "steps",
    "episode_key",
    "exit_rules",
    "goal",
    "reentry",
    "cooldown",
    "priority",
    "holdout_percent",
    "max_lateness",
    "quiet_hours",
    "inbox_id",
    "entry_segment_id",
    "status",
)


# Triggers whose touches answer in an existing thread, so an email may
# leave its subject to the thread ("Re: ...").
_IN_THREAD = (TriggerKind.NO_CUSTOMER_REPLY, TriggerKind.NO_AGENT_REPLY)


def _check_subjects(trigger: Trigger, steps: Sequence[Step]) -> None:
    if trigger.kind in _IN_THREAD:
        return
    for step in steps:
        if step.channel is not Channel.EMAIL:
            continue
        for j, variant in enumerate(step.variants):
            if not variant.subject.strip():
                field = f"steps[{step.position}].variants[{j}].subject"
                raise _fail(field, "an email needs a subject")


def parse_touchpoint(raw: Mapping[str, JsonValue]) -> TouchpointSpec:
    """A whole touchpoint from a request body (`status` is the caller's to
    read; it is allowed here so one body can create a live touchpoint)."""
    _unknown_keys(raw, _FIELDS, "")
    name = _text(raw.get("name"), "name", limit=MAX_NAME).strip()
    trigger = parse_trigger(raw.get("trigger"))
    reentry = _choice(Reentry, raw.get("reentry", "per_episode"), "reentry")
    cooldown = None
    if reentry is Reentry.COOLDOWN:
        if "cooldown" not in raw:
            raise _fail("cooldown", 'is required with reentry "cooldown", such as "30d"')
        cooldown = parse_duration(raw["cooldown"], "cooldown", minimum=1, maximum=MAX_WINDOW)
    steps = parse_steps(raw.get("steps"))
    _check_subjects(trigger, steps)
    key = raw.get("episode_key")
    lateness = raw.get("max_lateness", 6 * 3600)
    return TouchpointSpec(
        name=name,
        description=_text(
            raw.get("description", ""), "description", limit=MAX_DESCRIPTION, empty=True
        ),
        kind=_choice(TouchKind, raw.get("kind", "marketing"), "kind"),
        trigger=trigger,
        steps=steps,
        episode_key=default_episode_key(trigger) if key is None else parse_episode_key(key),
        exit_rules=parse_exit_rules(raw.get("exit_rules", [])),
        goal=parse_goal(raw.get("goal")),
        reentry=reentry,
        cooldown_seconds=cooldown,
        priority=_int(raw.get("priority", 50), "priority", low=0, high=MAX_PRIORITY),
        holdout_percent=_int(
            raw.get("holdout_percent", 0), "holdout_percent", low=0, high=MAX_HOLDOUT
        ),
        max_lateness_seconds=None
        if lateness is None
        else parse_duration(lateness, "max_lateness", minimum=60, maximum=MAX_WINDOW),
        quiet_hours=parse_quiet_hours(raw.get("quiet_hours"), "quiet_hours"),
        inbox_id=None if raw.get("inbox_id") is None else _id(raw["inbox_id"], "inbox_id"),
        entry_segment_id=None
        if raw.get("entry_segment_id") is None
        else _id(raw["entry_segment_id"], "entry_segment_id"),
    )


def touchpoint_json(spec: TouchpointSpec) -> dict[str, JsonValue]:
    """The spec as an author would send it back (round-trips with
    parse_touchpoint)."""
    return {
        "name": spec.name,
        "description": spec.description,
        "kind": spec.kind.value,
        "trigger": trigger_json(spec.trigger),
        "steps": [step_json(step) for step in spec.steps],
        "episode_key": spec.episode_key,
        "exit_rules": exit_rules_json(spec.exit_rules),
        "goal": goal_json(spec.goal),
        "reentry": spec.reentry.value,
        "cooldown": spec.cooldown_seconds,
        "priority": spec.priority,
        "holdout_percent": spec.holdout_percent,
        "max_lateness": spec.max_lateness_seconds,
        "quiet_hours": None if spec.quiet_hours is None else quiet_hours_json(spec.quiet_hours),
        "inbox_id": spec.inbox_id,
        "entry_segment_id": spec.entry_segment_id,
    }


def decision_key(episode_id: int, position: int) -> str:
    """The idempotency key of a step's decision in an episode: one row,
    however often it is decided."""
    return f"ep{episode_id}:step{position}"
