"""Routing rules' pure part (F5): what a rule is, whether it matches a
conversation, and what the workspace's rules decide together.

A rule is stored as JSON columns (server.storage.tables.routing_rules):

    name: "Refunds", enabled: true, position: 0,
    on: ["conversation.created", "message.created"],
    match: "all",
    conditions: [
      {"channel": ["email", "widget"]},
      {"keywords": ["refund", "money back"]},
      {"pattern": "order\\\\s?#?\\\\d{4,8}", "ignore_case": true},
      {"language": ["de"], "negate": true},
      {"business_hours": "in"}],
    actions: [{"team": 3}, {"priority": "high"}, {"labels": ["refund"]},
              {"assignee": 7}]

Condition kinds (exactly one kind key each; any may add `"negate": true`):

- `inbox`: the conversation's inbox is one of these ids.
- `channel`: its inbox's kind is one of these (widget, email, ...).
- `attribute` + `op` (+ `value`): the contact's custom attribute, with the
  segments' operators and meaning (server.domain.segments: strings
  compare ignoring case, `gt`... only match numbers, `ne` is "not eq").
- `segment`: the contact is in that segment now (its filter evaluated
  at routing time; a segment deleted since is one nobody is in).
- `keywords` (+ `match` "any" or "all"): the message contains these
  words or phrases, as whole words, ignoring case.
- `pattern` (+ `ignore_case`): a regular expression found in the message,
  bounded by server.domain.safe_patterns (no catastrophic shapes, only
  the first 2,000 characters searched).
- `language`: the message's detected language (server.domain.languages,
  a small stopword detector) is one of these codes; "unknown" is what it
  could not tell, and what a conversation without a message has.
- `business_hours`: "in" or "out" of the inbox's business hours (an
  inbox without any is always "in").
- `priority`: the conversation's priority is one of these.
- `labels`: the conversation carries one of these labels.

A rule's conditions all hold (`match` "all", the default) or one does
("any"); a rule without conditions matches everything (a catch-all at
the end). A condition on the message is false when there is no message
(a conversation an agent opened): `negate` turns that into true.

Actions set the team, the priority or the assignee, or add labels; each
kind at most once per rule. The workspace routes in one of two modes:
`first` (the first matching rule by position decides, the rest are not
evaluated) or `all` (every matching rule applies in position order, and
a later rule overrides an earlier one for the same field — team,
priority, assignee; labels add up). `plan_routing` says what changes and
which rule made each change; nothing here reads a clock or a database.

`parse_*` check untrusted JSON and name the field at fault by its path
(`conditions[2].pattern`); the `*_json` functions give the stored form,
which the parsers read back unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias

from server.domain.business_hours import is_open, parse_business_hours
from server.domain.conversations import clean_labels
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonObject, JsonValue
from server.domain.languages import LANGUAGES, UNKNOWN
from server.domain.safe_patterns import check_pattern, search
from server.domain.segments import NUMERIC_OPS, AttributeOp
from server.domain.values import InboxKind, Priority

MAX_NAME = 200
# Routing runs on every inbound message: the rules stay few and small.
MAX_PER_WORKSPACE = 200
MAX_CONDITIONS = 20
MAX_LIST = 50
MAX_STRING = 200
MAX_ID = 2**53
# Keywords are matched linearly; this only bounds a pasted novel.
MAX_KEYWORD_TEXT = 100_000

Scalar: TypeAlias = str | int | float | bool


class RoutingMode(StrEnum):
    FIRST = "first"
    ALL = "all"


class Trigger(StrEnum):
    """What routing runs on (the event types' names)."""

    CONVERSATION_CREATED = "conversation.created"
    MESSAGE_CREATED = "message.created"


class Match(StrEnum):
    ALL = "all"
    ANY = "any"


class Field(StrEnum):
    """What an action sets; the keys of a decision's `changes`."""

    TEAM = "team"
    PRIORITY = "priority"
    LABELS = "labels"
    ASSIGNEE = "assignee"


# -- conditions --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InboxCondition:
    inbox_ids: tuple[int, ...]
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class ChannelCondition:
    channels: tuple[str, ...]
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class AttributeCondition:
    key: str
    op: AttributeOp
    # A scalar, a tuple for `in`, None for exists/missing.
    value: Scalar | tuple[Scalar, ...] | None
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class SegmentCondition:
    segment_id: int
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class KeywordsCondition:
    keywords: tuple[str, ...]
    match: Match
    negate: bool = False

    def found(self, text: str) -> bool:
        head = text[:MAX_KEYWORD_TEXT].casefold()
        hits = (_keyword(k).search(head) is not None for k in self.keywords)
        return all(hits) if self.match is Match.ALL else any(hits)


@dataclasses.dataclass(frozen=True)
class PatternCondition:
    pattern: str
    ignore_case: bool
    compiled: re.Pattern[str] = dataclasses.field(compare=False, repr=False)
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class LanguageCondition:
    languages: tuple[str, ...]
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class BusinessHoursCondition:
    open: bool  # "in" business hours
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class PriorityCondition:
    priorities: tuple[str, ...]
    negate: bool = False


@dataclasses.dataclass(frozen=True)
class LabelsCondition:
    labels: tuple[str, ...]
    negate: bool = False


Condition: TypeAlias = (
    InboxCondition
    | ChannelCondition
    | AttributeCondition
    | SegmentCondition
    | KeywordsCondition
    | PatternCondition
    | LanguageCondition
    | BusinessHoursCondition
    | PriorityCondition
    | LabelsCondition
)

KINDS = (
    "inbox",
    "channel",
    "attribute",
    "segment",
    "keywords",
    "pattern",
    "language",
    "business_hours",
    "priority",
    "labels",
)


def _keyword(keyword: str) -> re.Pattern[str]:
    # Whole words: "refund" is not found in "refunded"; no repeats, so
    # linear whatever the keyword.
    return re.compile(r"(?<!\w)" + re.escape(keyword.casefold()) + r"(?!\w)")


# -- actions -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Actions:
    """What a rule sets; None (or no labels) leaves a field alone."""

    team_id: int | None = None
    priority: Priority | None = None
    labels: tuple[str, ...] = ()
    assignee_id: int | None = None


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """The parts of a rule an admin writes, parsed."""

    on: frozenset[Trigger]
    match: Match
    conditions: tuple[Condition, ...]
    actions: Actions


@dataclasses.dataclass(frozen=True)
class Rule:
    """A stored rule, as routing reads it."""

    id: int
    name: str
    position: int
    enabled: bool
    spec: RuleSpec


# -- parsing -----------------------------------------------------------------


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def clean_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME or "\x00" in name:
        raise _fail("name", f"1 to {MAX_NAME} characters without NUL")
    return name


def parse_mode(raw: Any, field: str = "mode") -> RoutingMode:
    if not isinstance(raw, str) or raw not in RoutingMode.__members__.values():
        raise _fail(field, 'must be "first" or "all"')
    return RoutingMode(raw)


def parse_match(raw: Any, field: str = "match") -> Match:
    if not isinstance(raw, str) or raw not in Match.__members__.values():
        raise _fail(field, 'must be "all" or "any"')
    return Match(raw)


def parse_on(raw: Any, field: str = "on") -> frozenset[Trigger]:
    values = _list(raw, field, 1, len(Trigger))
    out: set[Trigger] = set()
    for i, value in enumerate(values):
        if not isinstance(value, str) or value not in Trigger.__members__.values():
            raise _fail(f"{field}[{i}]", "must be one of: " + ", ".join(t.value for t in Trigger))
        out.add(Trigger(value))
    return frozenset(out)


def _list(raw: Any, field: str, low: int, high: int) -> list[Any]:
    if not isinstance(raw, list) or not low <= len(raw) <= high:
        raise _fail(field, f"must be a list of {low} to {high} items")
    return raw


def _object(raw: Any, field: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _fail(field, "must be an object")
    for key in raw:
        if key not in allowed:
            raise _fail(f"{field}.{str(key)[:100]}", "unknown field")
    return raw


def _string(raw: Any, field: str, max_length: int = MAX_STRING) -> str:
    if (
        not isinstance(raw, str)
        or not 1 <= len(raw) <= max_length
        or "\x00" in raw
        or any(0xD800 <= ord(ch) <= 0xDFFF for ch in raw)
    ):
        raise _fail(field, f"must be a string of 1 to {max_length} characters without NUL")
    return raw


def _id(raw: Any, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_ID:
        raise _fail(field, "must be an id (a positive whole number)")
    return raw


def _ids(raw: Any, field: str) -> tuple[int, ...]:
    # One id may be given bare.
    values = [raw] if isinstance(raw, int) and not isinstance(raw, bool) else raw
    items = _list(values, field, 1, MAX_LIST)
    return tuple(sorted({_id(v, f"{field}[{i}]") for i, v in enumerate(items)}))


def _choices(raw: Any, field: str, allowed: Iterable[str]) -> tuple[str, ...]:
    known = tuple(allowed)
    values = [raw] if isinstance(raw, str) else raw
    items = _list(values, field, 1, MAX_LIST)
    for i, v in enumerate(items):
        if not isinstance(v, str) or v not in known:
            raise _fail(f"{field}[{i}]", "must be one of: " + ", ".join(known))
    return tuple(sorted(set(items)))


def _scalar(raw: Any, field: str) -> Scalar:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or abs(raw) > MAX_ID:
            raise _fail(field, "must be a finite number within ±2^53")
        return raw
    if isinstance(raw, str):
        return _string(raw, field)
    raise _fail(field, "must be a string, number or boolean")


def _flag(obj: Mapping[str, Any], key: str, field: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise _fail(f"{field}.{key}", "must be true or false")
    return value


def parse_conditions(raw: Any, field: str = "conditions") -> tuple[Condition, ...]:
    """The conditions in `raw` (untrusted JSON), or InvalidInput naming
    the one at fault by its path (`conditions[2].pattern`)."""
    items = _list(raw, field, 0, MAX_CONDITIONS)
    return tuple(_condition(item, f"{field}[{i}]") for i, item in enumerate(items))


def _condition(raw: Any, field: str) -> Condition:
    if not isinstance(raw, Mapping):
        raise _fail(field, "must be an object")
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise _fail(field, "must name exactly one of: " + ", ".join(KINDS))
    kind = kinds[0]
    extra = {
        "attribute": {"op", "value"},
        "keywords": {"match"},
        "pattern": {"ignore_case"},
    }.get(kind, set())
    obj = _object(raw, field, frozenset({kind, "negate", *extra}))
    negate = _flag(obj, "negate", field, False)
    path = f"{field}.{kind}"
    value = obj[kind]
    if kind == "inbox":
        return InboxCondition(_ids(value, path), negate)
    if kind == "channel":
        return ChannelCondition(_choices(value, path, (k.value for k in InboxKind)), negate)
    if kind == "attribute":
        return _attribute(obj, field, negate)
    if kind == "segment":
        return SegmentCondition(_id(value, path), negate)
    if kind == "keywords":
        return _keywords(obj, field, negate)
    if kind == "pattern":
        return _pattern(obj, field, negate)
    if kind == "language":
        return LanguageCondition(_choices(value, path, (*LANGUAGES, UNKNOWN)), negate)
    if kind == "business_hours":
        return BusinessHoursCondition(_in_or_out(value, path), negate)
    if kind == "priority":
        return PriorityCondition(_choices(value, path, (p.value for p in Priority)), negate)
    return LabelsCondition(tuple(_labels(value, path)), negate)


def _keywords(obj: Mapping[str, Any], field: str, negate: bool) -> KeywordsCondition:
    path = f"{field}.keywords"
    items = _list(obj["keywords"], path, 1, MAX_LIST)
    words = [_string(w, f"{path}[{i}]", 100).strip() for i, w in enumerate(items)]
    for i, word in enumerate(words):
        if not word:
            raise _fail(f"{path}[{i}]", "must not be blank")
    match = parse_match(obj.get("match", Match.ANY.value), f"{field}.match")
    return KeywordsCondition(tuple(dict.fromkeys(words)), match, negate)


def _pattern(obj: Mapping[str, Any], field: str, negate: bool) -> PatternCondition:
    ignore_case = _flag(obj, "ignore_case", field, True)
    value = obj["pattern"]
    pattern = value if isinstance(value, str) else ""
    compiled = check_pattern(pattern, f"{field}.pattern", ignore_case=ignore_case)
    return PatternCondition(pattern, ignore_case, compiled, negate)


def _in_or_out(value: Any, field: str) -> bool:
    if value not in ("in", "out"):
        raise _fail(field, 'must be "in" or "out"')
    return bool(value == "in")


def _labels(raw: Any, field: str) -> list[str]:
    items = _list(raw, field, 1, MAX_LIST)
    for i, item in enumerate(items):
        _string(item, f"{field}[{i}]", 100)
    try:
        return clean_labels(items, field=field)
    except InvalidInput as exc:
        at = exc.field or field
        raise _fail(at, exc.message) from None


def _attribute(obj: Mapping[str, Any], field: str, negate: bool) -> AttributeCondition:
    key = _string(obj["attribute"], f"{field}.attribute", 100)
    op_raw = obj.get("op")
    if not isinstance(op_raw, str) or op_raw not in AttributeOp.__members__.values():
        raise _fail(f"{field}.op", "must be one of: " + ", ".join(o.value for o in AttributeOp))
    op = AttributeOp(op_raw)
    vfield = f"{field}.value"
    if op in (AttributeOp.EXISTS, AttributeOp.MISSING):
        if "value" in obj:
            raise _fail(vfield, f'"{op.value}" takes no value')
        return AttributeCondition(key, op, None, negate)
    if "value" not in obj:
        raise _fail(vfield, "is required")
    value = obj["value"]
    if op is AttributeOp.IN:
        items = _list(value, vfield, 1, MAX_LIST)
        return AttributeCondition(
            key, op, tuple(_scalar(v, f"{vfield}[{i}]") for i, v in enumerate(items)), negate
        )
    if op in NUMERIC_OPS and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _fail(vfield, "must be a number")
    if op is AttributeOp.CONTAINS:
        return AttributeCondition(key, op, _string(value, vfield), negate)
    return AttributeCondition(key, op, _scalar(value, vfield), negate)


def parse_actions(raw: Any, field: str = "actions") -> Actions:
    """The actions in `raw` (a list of one-key objects), or InvalidInput
    naming the one at fault (`actions[1].priority`)."""
    items = _list(raw, field, 1, len(Field))
    found: dict[Field, Any] = {}
    for i, item in enumerate(items):
        path = f"{field}[{i}]"
        if not isinstance(item, Mapping) or len(item) != 1:
            raise _fail(path, "must be an object with one of: " + ", ".join(f for f in Field))
        (key,) = item
        if key not in Field.__members__.values():
            raise _fail(f"{path}.{str(key)[:100]}", "unknown action")
        kind = Field(key)
        if kind in found:
            raise _fail(f"{path}.{key}", "each action at most once per rule")
        value, vpath = item[key], f"{path}.{key}"
        if kind is Field.PRIORITY:
            if not isinstance(value, str) or value not in Priority.__members__.values():
                raise _fail(vpath, "must be one of: " + ", ".join(p.value for p in Priority))
            found[kind] = Priority(value)
        elif kind is Field.LABELS:
            found[kind] = tuple(_labels(value, vpath))
        else:
            found[kind] = _id(value, vpath)
    return Actions(
        team_id=found.get(Field.TEAM),
        priority=found.get(Field.PRIORITY),
        labels=found.get(Field.LABELS, ()),
        assignee_id=found.get(Field.ASSIGNEE),
    )


def parse_spec(*, on: Any, match: Any, conditions: Any, actions: Any) -> RuleSpec:
    return RuleSpec(
        on=parse_on(on),
        match=parse_match(match),
        conditions=parse_conditions(conditions),
        actions=parse_actions(actions),
    )


# -- the stored form ---------------------------------------------------------


def on_json(on: frozenset[Trigger]) -> list[JsonValue]:
    return [t.value for t in Trigger if t in on]


def conditions_json(conditions: Sequence[Condition]) -> list[JsonValue]:
    return [_condition_json(c) for c in conditions]


def _condition_json(c: Condition) -> dict[str, JsonValue]:
    out: dict[str, JsonValue]
    if isinstance(c, InboxCondition):
        out = {"inbox": list(c.inbox_ids)}
    elif isinstance(c, ChannelCondition):
        out = {"channel": list(c.channels)}
    elif isinstance(c, AttributeCondition):
        out = _attribute_json(c)
    elif isinstance(c, SegmentCondition):
        out = {"segment": c.segment_id}
    elif isinstance(c, KeywordsCondition):
        out = {"keywords": list(c.keywords), "match": c.match.value}
    elif isinstance(c, PatternCondition):
        out = {"pattern": c.pattern, "ignore_case": c.ignore_case}
    elif isinstance(c, LanguageCondition):
        out = {"language": list(c.languages)}
    elif isinstance(c, BusinessHoursCondition):
        out = {"business_hours": "in" if c.open else "out"}
    elif isinstance(c, PriorityCondition):
        out = {"priority": list(c.priorities)}
    else:
        out = {"labels": list(c.labels)}
    if c.negate:
        out["negate"] = True
    return out


def _attribute_json(c: AttributeCondition) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"attribute": c.key, "op": c.op.value}
    if isinstance(c.value, tuple):
        out["value"] = list(c.value)
    elif c.value is not None:
        out["value"] = c.value
    return out


def actions_json(actions: Actions) -> list[JsonValue]:
    out: list[JsonValue] = []
    if actions.team_id is not None:
        out.append({"team": actions.team_id})
    if actions.priority is not None:
        out.append({"priority": actions.priority.value})
    if actions.labels:
        out.append({"labels": list(actions.labels)})
    if actions.assignee_id is not None:
        out.append({"assignee": actions.assignee_id})
    return out


# -- evaluating --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RoutingFacts:
    """What routing knows about one conversation at one moment: a pure
    snapshot the caller reads beforehand.

    `segment_ids` holds the segments (among those the rules name) the
    contact is in; `teams` and `assignable` the ids of the rules' teams
    that exist and of their assignees who are active and may see the
    inbox (an action naming another is skipped, and said so)."""

    trigger: Trigger
    inbox_id: int
    channel: str
    contact_attributes: JsonObject
    segment_ids: frozenset[int]
    text: str | None  # the inbound message's, None when there is none
    language: str | None  # detected from `text`; None is "unknown"
    open_now: bool
    priority: str
    labels: frozenset[str]
    team_id: int | None
    assignee_id: int | None
    teams: frozenset[int] = frozenset()
    assignable: frozenset[int] = frozenset()


def inbox_open(settings: JsonObject | None, now: datetime) -> bool:
    """Whether `now` is in the inbox's business hours; an inbox without
    (valid) hours is always open: nothing says it is closed."""
    raw = (settings or {}).get("business_hours")
    if raw is None:
        return True
    try:
        hours = parse_business_hours(raw)
    except InvalidInput:
        return True
    return is_open(hours, now)


def _equals(have: JsonValue, want: Scalar) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return isinstance(want, bool) and isinstance(have, bool) and have is want
    if isinstance(want, int | float):
        return isinstance(have, int | float) and float(have) == float(want)
    return isinstance(have, str) and have.casefold() == want.casefold()


def _attribute_holds(c: AttributeCondition, attributes: JsonObject) -> bool:
    have = attributes.get(c.key)
    if c.op is AttributeOp.EXISTS:
        return have is not None
    if c.op is AttributeOp.MISSING:
        return have is None
    if isinstance(c.value, tuple):
        return any(_equals(have, v) for v in c.value)
    assert c.value is not None
    if c.op is AttributeOp.EQ:
        return _equals(have, c.value)
    if c.op is AttributeOp.NE:
        return not _equals(have, c.value)
    if c.op is AttributeOp.CONTAINS:
        return isinstance(have, str) and str(c.value).casefold() in have.casefold()
    if isinstance(have, bool) or not isinstance(have, int | float):
        return False
    assert isinstance(c.value, int | float)
    n, v = float(have), float(c.value)
    return {
        AttributeOp.GT: n > v,
        AttributeOp.GTE: n >= v,
        AttributeOp.LT: n < v,
        AttributeOp.LTE: n <= v,
    }[c.op]


def _holds(c: Condition, f: RoutingFacts) -> bool:
    if isinstance(c, InboxCondition):
        return f.inbox_id in c.inbox_ids
    if isinstance(c, ChannelCondition):
        return f.channel in c.channels
    if isinstance(c, AttributeCondition):
        return _attribute_holds(c, f.contact_attributes)
    if isinstance(c, SegmentCondition):
        return c.segment_id in f.segment_ids
    if isinstance(c, KeywordsCondition):
        return f.text is not None and c.found(f.text)
    if isinstance(c, PatternCondition):
        return f.text is not None and search(c.compiled, f.text)
    if isinstance(c, LanguageCondition):
        return (f.language or UNKNOWN) in c.languages
    if isinstance(c, BusinessHoursCondition):
        return f.open_now is c.open
    if isinstance(c, PriorityCondition):
        return f.priority in c.priorities
    return any(label in f.labels for label in c.labels)


def condition_holds(c: Condition, facts: RoutingFacts) -> bool:
    return _holds(c, facts) is not c.negate


def rule_matches(spec: RuleSpec, facts: RoutingFacts) -> bool:
    """Whether a rule applies to `facts` (its trigger included)."""
    if facts.trigger not in spec.on:
        return False
    if not spec.conditions:
        return True
    held = (condition_holds(c, facts) for c in spec.conditions)
    return all(held) if spec.match is Match.ALL else any(held)


def segments_named(rules: Iterable[Rule]) -> frozenset[int]:
    """The segments the rules' conditions name (the caller checks only
    those for the contact)."""
    return frozenset(
        c.segment_id for r in rules for c in r.spec.conditions if isinstance(c, SegmentCondition)
    )


# -- deciding ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Decision:
    """One rule's part in a routing: the changes it made that stand (a
    later rule's override removes them from this one), as `{"team": 3,
    "priority": "high", "labels": ["refund"], "assignee": 7}`, and the
    actions it could not take (`skipped`, in words)."""

    rule_id: int
    rule_name: str
    changes: dict[str, JsonValue]
    skipped: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Plan:
    """What routing changes (None / empty: leave alone) and which rule
    made each change, in position order."""

    decisions: tuple[Decision, ...] = ()
    team_id: int | None = None
    priority: Priority | None = None
    add_labels: tuple[str, ...] = ()
    assignee_id: int | None = None


_Won: TypeAlias = dict[Field, tuple[int, JsonValue]]


def _apply(
    rules: Sequence[Rule], mode: RoutingMode, facts: RoutingFacts
) -> tuple[list[tuple[Rule, list[str]]], _Won, dict[str, int]]:
    """The matching rules in order with what each could not do; which
    rule (by its index among them) last set each field, to what; and
    which rule first added each label."""
    won: _Won = {}
    labels: dict[str, int] = {}
    matched: list[tuple[Rule, list[str]]] = []
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        if not rule.enabled or not rule_matches(rule.spec, facts):
            continue
        index = len(matched)
        skipped: list[str] = []
        a = rule.spec.actions
        if a.team_id is not None:
            if a.team_id not in facts.teams:
                skipped.append(f"team {a.team_id} no longer exists")
            else:
                won[Field.TEAM] = (index, a.team_id)
        if a.priority is not None:
            won[Field.PRIORITY] = (index, a.priority.value)
        if a.assignee_id is not None:
            if a.assignee_id not in facts.assignable:
                skipped.append(f"agent {a.assignee_id} is not an active member of the inbox")
            else:
                won[Field.ASSIGNEE] = (index, a.assignee_id)
        for label in a.labels:
            labels.setdefault(label, index)
        matched.append((rule, skipped))
        if mode is RoutingMode.FIRST:
            break
    return matched, won, labels


def plan_routing(rules: Sequence[Rule], mode: RoutingMode, facts: RoutingFacts) -> Plan:
    """Evaluate the enabled rules in position order under `mode` (see the
    module docstring) and say what changes. A change to the value the
    conversation already has is no change; a matching rule that changes
    nothing and skips nothing leaves no decision."""
    matched, won, labels = _apply(rules, mode, facts)
    current: dict[Field, JsonValue] = {
        Field.TEAM: facts.team_id,
        Field.PRIORITY: facts.priority,
        Field.ASSIGNEE: facts.assignee_id,
    }
    changes: list[dict[str, JsonValue]] = [{} for _ in matched]
    for field, (index, value) in won.items():
        if current[field] != value:
            changes[index][field.value] = value
    new_labels = sorted(label for label in labels if label not in facts.labels)
    for label in new_labels:
        added = changes[labels[label]].setdefault(Field.LABELS.value, [])
        assert isinstance(added, list)
        added.append(label)
    decisions = tuple(
        Decision(rule.id, rule.name, dict(sorted(changes[i].items())), tuple(skipped))
        for i, (rule, skipped) in enumerate(matched)
        if changes[i] or skipped
    )
    team, priority, assignee = (
        won.get(field, (0, None))[1] for field in (Field.TEAM, Field.PRIORITY, Field.ASSIGNEE)
    )
    return Plan(
        decisions=decisions,
        team_id=team if isinstance(team, int) and team != facts.team_id else None,
        priority=(
            Priority(priority) if isinstance(priority, str) and priority != facts.priority else None
        ),
        add_labels=tuple(new_labels),
        assignee_id=(
            assignee if isinstance(assignee, int) and assignee != facts.assignee_id else None
        ),
    )
