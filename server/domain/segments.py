"""Segments' pure rules (F7, TOUCHPOINTS.md "Data model: segments"): a
saved filter over contacts, used by touchpoint entry, broadcasts and
reports.

A filter is a group of conditions, stored as JSON:

    {"match": "all",
     "conditions": [
       {"event": "cart_updated", "within": "4h"},
       {"event": "order_placed", "within": "4h", "count": {"max": 0}},
       {"attribute": "plan", "op": "in", "value": ["pro", "team"]},
       {"match": "any", "conditions": [
          {"last_seen": {"within": "30d"}},
          {"consent": {"channel": "email", "topic": "marketing",
                       "state": "granted"}}]}]}

Condition kinds (exactly one kind key per condition):

- `attribute` + `op` (+ `value`): over the contact's custom attributes.
  String comparisons ignore case; `gt`/`gte`/`lt`/`lte` compare numbers
  and never match a value that is not a number; `ne` is "not `eq`", so a
  contact without the attribute is "not equal"; `exists`/`missing` take
  no value (an attribute set to null is missing).
- `event` (+ `within`, `count`, `where`): how many tracked events of that
  name the contact has (in the last `within`, if given). `count` is
  `{"min": n}` and/or `{"max": n}`, `{"min": 1}` if left out; `{"max": 0}`
  says "and none". `where` narrows to events whose properties equal the
  given scalars.
- `last_seen` / `created`: `{"within": d}` (at or after now - d) or
  `{"before": d}` (before now - d; a contact never seen is "before").
- `identity` + `exists`: has (or lacks) an identity of that kind.
- `consent`: the latest recorded consent for a channel and topic is
  `granted`, `withdrawn`, or `none` (nothing recorded).
- `label`: has a conversation carrying that label.
- a nested group, `{"match", "conditions"}`, up to MAX_DEPTH deep.

An empty `all` group matches every contact (a broadcast to everyone); an
`any` group needs at least one condition. Durations are "90s", "15m",
"4h", "30d", "2w" or whole seconds; relative windows are resolved against
a `now` given by the caller (nothing here reads a clock).

`parse_filter` checks untrusted JSON and names the offending field by
its path (`filter.conditions[2].within`); `filter_json` gives the stored
form, which `parse_filter` reads back unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, TypeAlias

from server.domain.conversations import clean_labels
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_timing import parse_duration as parse_seconds
from server.domain.values import IdentityKind

MAX_NAME = 200
# Enough for any shop; keeps the unpaged list small.
MAX_PER_WORKSPACE = 500
MAX_DEPTH = 3
MAX_CONDITIONS = 50
MAX_IN_VALUES = 100
MAX_WHERE = 10
MAX_STRING = 500
MAX_COUNT = 1_000_000
# Ten years: longer windows are a mistake, not a segment.
MAX_DURATION = 10 * 366 * 86_400
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_TOPIC = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")

Scalar: TypeAlias = str | int | float | bool


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


class AttributeOp(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    CONTAINS = "contains"
    EXISTS = "exists"
    MISSING = "missing"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


NUMERIC_OPS = frozenset({AttributeOp.GT, AttributeOp.GTE, AttributeOp.LT, AttributeOp.LTE})
_NO_VALUE_OPS = frozenset({AttributeOp.EXISTS, AttributeOp.MISSING})


class ConsentState(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    NONE = "none"


@dataclasses.dataclass(frozen=True)
class Duration:
    """A relative window: `seconds`, and the form it was written in (kept so
    the editor shows back "4h", not 14400)."""

    seconds: int
    written: str | int

    def before(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.seconds)


@dataclasses.dataclass(frozen=True)
class AttributeCondition:
    key: str
    op: AttributeOp
    # A scalar for eq/ne/contains/comparisons, a tuple for `in`, None for
    # exists/missing. Strings are kept as written; matching ignores case.
    value: Scalar | tuple[Scalar, ...] | None


@dataclasses.dataclass(frozen=True)
class EventCondition:
    name: str
    within: Duration | None
    min_count: int | None
    max_count: int | None
    where: tuple[tuple[str, Scalar], ...]


@dataclasses.dataclass(frozen=True)
class TimeCondition:
    """`last_seen` or `created`: exactly one of `within` and `before`."""

    column: Literal["last_seen", "created"]
    within: Duration | None
    before: Duration | None


@dataclasses.dataclass(frozen=True)
class IdentityCondition:
    kind: IdentityKind
    exists: bool


@dataclasses.dataclass(frozen=True)
class ConsentCondition:
    channel: str
    topic: str
    state: ConsentState


@dataclasses.dataclass(frozen=True)
class LabelCondition:
    label: str


@dataclasses.dataclass(frozen=True)
class Group:
    match: Match
    conditions: tuple[Condition, ...]


Condition: TypeAlias = (
    AttributeCondition
    | EventCondition
    | TimeCondition
    | IdentityCondition
    | ConsentCondition
    | LabelCondition
    | Group
)

# The key that says what a condition is; "match" (or "conditions") is a group.
KINDS = ("attribute", "event", "last_seen", "created", "identity", "consent", "label", "match")


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def clean_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME:
        raise _fail("name", f"1 to {MAX_NAME} characters")
    if "\x00" in name:
        raise _fail("name", "must not contain NUL characters")
    return name


def parse_duration(raw: Any, field: str) -> Duration:
    """ "4h"-style text or whole seconds (the touchpoints' spelling), 1
    second to ten years; the form it was written in is kept."""
    seconds = parse_seconds(raw, field, minimum=1, maximum=MAX_DURATION)
    return Duration(seconds, raw)


def parse_filter(raw: Any, *, field: str = "filter") -> Group:
    """The filter in `raw` (untrusted JSON), or InvalidInput naming the
    field at fault by its path under `field`."""
    budget = [MAX_CONDITIONS]
    return _group(raw, field, 1, budget)


def _object(raw: Any, field: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _fail(field, "must be an object")
    for key in raw:
        if key not in allowed:
            raise _fail(f"{field}.{str(key)[:100]}", "unknown field")
    return raw


def _required(raw: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in raw:
        raise _fail(f"{field}.{key}", "is required")
    return raw[key]


def _group(raw: Any, field: str, depth: int, budget: list[int]) -> Group:
    obj = _object(raw, field, frozenset({"match", "conditions"}))
    match_raw = obj.get("match", Match.ALL.value)
    if not isinstance(match_raw, str) or match_raw not in Match.__members__.values():
        raise _fail(f"{field}.match", 'must be "all" or "any"')
    match = Match(match_raw)
    items = _required(obj, "conditions", field)
    if not isinstance(items, list):
        raise _fail(f"{field}.conditions", "must be a list")
    if match is Match.ANY and not items:
        raise _fail(f"{field}.conditions", 'an "any" group needs at least one condition')
    conditions: list[Condition] = []
    for i, item in enumerate(items):
        path = f"{field}.conditions[{i}]"
        budget[0] -= 1
        if budget[0] < 0:
            raise _fail(path, f"at most {MAX_CONDITIONS} conditions in all")
        conditions.append(_condition(item, path, depth, budget))
    return Group(match, tuple(conditions))


def _condition(raw: Any, field: str, depth: int, budget: list[int]) -> Condition:
    if not isinstance(raw, Mapping):
        raise _fail(field, "must be an object")
    # A group is known by its `conditions` ("match" may be left to default).
    kinds = [k for k in KINDS if k in raw or (k == "match" and "conditions" in raw)]
    if len(kinds) != 1:
        raise _fail(field, "must name exactly one of: " + ", ".join(KINDS))
    kind = kinds[0]
    if kind == "match":
        if depth >= MAX_DEPTH:
            raise _fail(field, f"groups nest at most {MAX_DEPTH} deep")
        return _group(raw, field, depth + 1, budget)
    if kind == "attribute":
        return _attribute(raw, field)
    if kind == "event":
        return _event(raw, field)
    if kind in ("last_seen", "created"):
        return _time(raw, field, kind)
    if kind == "identity":
        return _identity(raw, field)
    if kind == "consent":
        return _consent(raw, field)
    return _label(raw, field)


def _string(raw: Any, field: str, max_length: int = MAX_STRING) -> str:
    if (
        not isinstance(raw, str)
        or not 1 <= len(raw) <= max_length
        or "\x00" in raw
        or any(0xD800 <= ord(ch) <= 0xDFFF for ch in raw)
    ):
        raise _fail(field, f"must be a string of 1 to {max_length} characters without NUL")
    return raw


def _key(raw: Any, field: str) -> str:
    return _string(raw, field, 100)


def _scalar(raw: Any, field: str) -> Scalar:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or abs(raw) > 2**53:
            raise _fail(field, "must be a finite number within ±2^53")
        return raw
    if isinstance(raw, str):
        return _string(raw, field)
    raise _fail(field, "must be a string, number or boolean")


def _number(raw: Any, field: str) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _fail(field, "must be a number")
    value = _scalar(raw, field)
    assert not isinstance(value, str | bool)
    return value


def _attribute(raw: Mapping[str, Any], field: str) -> AttributeCondition:
    obj = _object(raw, field, frozenset({"attribute", "op", "value"}))
    key = _key(obj["attribute"], f"{field}.attribute")
    op_raw = _required(obj, "op", field)
    if not isinstance(op_raw, str) or op_raw not in AttributeOp.__members__.values():
        raise _fail(f"{field}.op", "must be one of: " + ", ".join(o.value for o in AttributeOp))
    op = AttributeOp(op_raw)
    vfield = f"{field}.value"
    if op in _NO_VALUE_OPS:
        if "value" in obj:
            raise _fail(vfield, f'"{op.value}" takes no value')
        return AttributeCondition(key, op, None)
    value = _required(obj, "value", field)
    if op in NUMERIC_OPS:
        return AttributeCondition(key, op, _number(value, vfield))
    if op is AttributeOp.CONTAINS:
        return AttributeCondition(key, op, _string(value, vfield))
    if op is AttributeOp.IN:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
            raise _fail(vfield, f"must be a list of 1 to {MAX_IN_VALUES} values")
        return AttributeCondition(
            key, op, tuple(_scalar(v, f"{vfield}[{i}]") for i, v in enumerate(value))
        )
    return AttributeCondition(key, op, _scalar(value, vfield))


def _count(raw: Any, field: str, key: str) -> int | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _fail(f"{field}.{key}", f"must be a whole number from 0 to {MAX_COUNT}")
    return value


def _event(raw: Mapping[str, Any], field: str) -> EventCondition:
    obj = _object(raw, field, frozenset({"event", "within", "count", "where"}))
    name = _string(obj["event"], f"{field}.event", 100)
    within = parse_duration(obj["within"], f"{field}.within") if "within" in obj else None
    min_count: int | None = 1
    max_count: int | None = None
    if "count" in obj:
        cfield = f"{field}.count"
        count = _object(obj["count"], cfield, frozenset({"min", "max"}))
        min_count, max_count = _count(count, cfield, "min"), _count(count, cfield, "max")
        if min_count is None and max_count is None:
            raise _fail(cfield, 'needs "min", "max" or both')
        if min_count is not None and max_count is not None and min_count > max_count:
            raise _fail(f"{cfield}.max", 'must be at least "min"')
        if min_count == 0:
            # At least none: every contact; say nothing rather than a no-op.
            min_count = None
    where: list[tuple[str, Scalar]] = []
    if "where" in obj:
        wfield = f"{field}.where"
        given = obj["where"]
        if not isinstance(given, Mapping) or not 1 <= len(given) <= MAX_WHERE:
            raise _fail(wfield, f"must be an object of 1 to {MAX_WHERE} properties")
        for key, value in given.items():
            path = f"{wfield}.{str(key)[:100]}"
            where.append((_key(key, path), _scalar(value, path)))
    return EventCondition(name, within, min_count, max_count, tuple(where))


def _time(raw: Mapping[str, Any], field: str, kind: str) -> TimeCondition:
    _object(raw, field, frozenset({kind}))
    tfield = f"{field}.{kind}"
    spec = _object(raw[kind], tfield, frozenset({"within", "before"}))
    if len(spec) != 1:
        raise _fail(tfield, 'needs exactly one of "within" and "before"')
    within = parse_duration(spec["within"], f"{tfield}.within") if "within" in spec else None
    before = parse_duration(spec["before"], f"{tfield}.before") if "before" in spec else None
    column: Literal["last_seen", "created"] = "last_seen" if kind == "last_seen" else "created"
    return TimeCondition(column, within, before)


def _identity(raw: Mapping[str, Any], field: str) -> IdentityCondition:
    obj = _object(raw, field, frozenset({"identity", "exists"}))
    kind = obj["identity"]
    if not isinstance(kind, str) or kind not in IdentityKind.__members__.values():
        raise _fail(
            f"{field}.identity", "must be one of: " + ", ".join(k.value for k in IdentityKind)
        )
    exists = obj.get("exists", True)
    if not isinstance(exists, bool):
        raise _fail(f"{field}.exists", "must be true or false")
    return IdentityCondition(IdentityKind(kind), exists)


def _consent(raw: Mapping[str, Any], field: str) -> ConsentCondition:
    _object(raw, field, frozenset({"consent"}))
    cfield = f"{field}.consent"
    spec = _object(raw["consent"], cfield, frozenset({"channel", "topic", "state"}))
    channel = _required(spec, "channel", cfield)
    if not isinstance(channel, str) or not _CHANNEL.match(channel):
        raise _fail(f"{cfield}.channel", "must be a channel name such as email or sms")
    topic = _required(spec, "topic", cfield)
    if not isinstance(topic, str) or not _TOPIC.match(topic):
        raise _fail(f"{cfield}.topic", "must be a topic name such as marketing")
    state = _required(spec, "state", cfield)
    if not isinstance(state, str) or state not in ConsentState.__members__.values():
        raise _fail(
            f"{cfield}.state", "must be one of: " + ", ".join(s.value for s in ConsentState)
        )
    return ConsentCondition(channel, topic, ConsentState(state))


def _label(raw: Mapping[str, Any], field: str) -> LabelCondition:
    _object(raw, field, frozenset({"label"}))
    lfield = f"{field}.label"
    value = _string(raw["label"], lfield, 100)
    try:
        (label,) = clean_labels([value], field=lfield)
    except InvalidInput:
        raise _fail(lfield, "a label must be 1-100 characters without commas") from None
    return LabelCondition(label)


# -- the stored form ---------------------------------------------------------


def filter_json(group: Group) -> dict[str, JsonValue]:
    """The stored (and shown) form of a parsed filter: what was written,
    with defaults spelled out, labels as conversations store them."""
    return {"match": group.match.value, "conditions": [_json(c) for c in group.conditions]}


def _json(c: Condition) -> dict[str, JsonValue]:
    if isinstance(c, Group):
        return filter_json(c)
    if isinstance(c, AttributeCondition):
        return _attribute_json(c)
    if isinstance(c, EventCondition):
        return _event_json(c)
    if isinstance(c, TimeCondition):
        spec: dict[str, JsonValue] = {}
        if c.within is not None:
            spec["within"] = c.within.written
        if c.before is not None:
            spec["before"] = c.before.written
        return {c.column: spec}
    if isinstance(c, IdentityCondition):
        return {"identity": c.kind.value, "exists": c.exists}
    if isinstance(c, ConsentCondition):
        return {"consent": {"channel": c.channel, "topic": c.topic, "state": c.state.value}}
    return {"label": c.label}


def _attribute_json(c: AttributeCondition) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"attribute": c.key, "op": c.op.value}
    if isinstance(c.value, tuple):
        out["value"] = list(c.value)
    elif c.value is not None:
        out["value"] = c.value
    return out


def _event_json(c: EventCondition) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"event": c.name}
    if c.within is not None:
        out["within"] = c.within.written
    count: dict[str, JsonValue] = {}
    if c.min_count is not None:
        count["min"] = c.min_count
    if c.max_count is not None:
        count["max"] = c.max_count
    out["count"] = count or {"min": 0}
    if c.where:
        out["where"] = dict(c.where)
    return out
