"""Macros' pure rules (F6): what a macro's list of steps may hold, how a
step is spelled once validated, and how a macro's audience is spelled for
name uniqueness.

A macro is 1 to MAX_STEPS steps, each an object with a `type` and that
type's own fields (STEP_FIELDS). Validation names the exact offending
field (`actions[2].label`), so an editor can point at it. The validated
form is what is stored and what a run reads back: labels are lower case,
`assign_agent`'s "me" stays "me" and means whoever runs the macro.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from server.domain.conversations import clean_labels
from server.domain.errors import InvalidInput
from server.domain.values import Priority

MAX_STEPS = 20
MAX_NAME = 200
# Macros per audience (the workspace, or one agent): a sidebar's worth,
# which keeps the unpaged list small.
MAX_PER_AUDIENCE = 200
# Longer than any real "snooze for": 90 days, in minutes.
MAX_SNOOZE_MINUTES = 60 * 24 * 90
_MAX_ID = 2**63 - 1
ME = "me"


class MacroScope(StrEnum):
    """Who shares a macro: every agent of the workspace (admins write
    them), or only the agent who wrote it."""

    WORKSPACE = "workspace"
    PERSONAL = "personal"


class StepType(StrEnum):
    SEND_CANNED_RESPONSE = "send_canned_response"
    ADD_LABEL = "add_label"
    REMOVE_LABEL = "remove_label"
    ASSIGN_TEAM = "assign_team"
    ASSIGN_AGENT = "assign_agent"
    SET_PRIORITY = "set_priority"
    SNOOZE = "snooze"
    RESOLVE = "resolve"
    REOPEN = "reopen"


# Each step type's one field besides `type` (None: the type says it all).
STEP_FIELDS: dict[StepType, str | None] = {
    StepType.SEND_CANNED_RESPONSE: "canned_response_id",
    StepType.ADD_LABEL: "label",
    StepType.REMOVE_LABEL: "label",
    StepType.ASSIGN_TEAM: "team_id",
    StepType.ASSIGN_AGENT: "agent_id",
    StepType.SET_PRIORITY: "priority",
    StepType.SNOOZE: "minutes",
    StepType.RESOLVE: None,
    StepType.REOPEN: None,
}


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def owner_key(scope: MacroScope, agent_id: int | None) -> str:
    """The audience as one string ("workspace", "agent:7"), in the same
    spelling canned responses use: names are unique per workspace and
    owner key, which a plain UNIQUE constraint can enforce."""
    if scope is MacroScope.WORKSPACE:
        return scope.value
    if agent_id is None:
        raise ValueError("a personal macro needs its owner's id")
    return f"agent:{agent_id}"


def clean_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME:
        raise _fail("name", f"1 to {MAX_NAME} characters")
    if "\x00" in name:
        raise _fail("name", "must not contain NUL characters")
    return name


def parse_actions(raw: Any, *, field: str = "actions") -> list[dict[str, Any]]:
    """The validated steps of a macro, in order."""
    if not isinstance(raw, list):
        raise _fail(field, "must be a list")
    if not 1 <= len(raw) <= MAX_STEPS:
        raise _fail(field, f"1 to {MAX_STEPS} steps")
    return [parse_step(step, f"{field}[{i}]") for i, step in enumerate(raw)]


def parse_step(raw: Any, path: str) -> dict[str, Any]:
    """One validated step: `{"type": ...}` plus its type's field."""
    if not isinstance(raw, Mapping):
        raise _fail(path, "must be an object")
    kind = raw.get("type")
    if "type" not in raw:
        raise _fail(f"{path}.type", "is required")
    if not isinstance(kind, str) or kind not in STEP_FIELDS:
        raise _fail(f"{path}.type", "must be one of: " + ", ".join(STEP_FIELDS))
    step_type = StepType(kind)
    name = STEP_FIELDS[step_type]
    for key in raw:
        if key not in ("type", name):
            raise _fail(f"{path}.{str(key)[:100]}", f"unknown field for a {kind} step")
    out: dict[str, Any] = {"type": kind}
    if name is None:
        return out
    if name not in raw:
        raise _fail(f"{path}.{name}", "is required")
    out[name] = _value(step_type, raw[name], f"{path}.{name}")
    return out


def _value(kind: StepType, value: Any, field: str) -> Any:
    if kind is StepType.SEND_CANNED_RESPONSE:
        return _id(value, field)
    if kind in (StepType.ADD_LABEL, StepType.REMOVE_LABEL):
        return _label(value, field)
    if kind is StepType.ASSIGN_TEAM:
        return None if value is None else _id(value, field)
    if kind is StepType.ASSIGN_AGENT:
        if value is None or value == ME:
            return value
        if isinstance(value, str):
            raise _fail(field, f'an agent id, "{ME}" or null')
        return _id(value, field)
    if kind is StepType.SET_PRIORITY:
        if not isinstance(value, str) or value not in {p.value for p in Priority}:
            raise _fail(field, "must be one of: " + ", ".join(p.value for p in Priority))
        return value
    # StepType.SNOOZE
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, "must be a whole number of minutes")
    if not 1 <= value <= MAX_SNOOZE_MINUTES:
        raise _fail(field, f"must be between 1 and {MAX_SNOOZE_MINUTES} minutes")
    return value


def _id(value: Any, field: str) -> int:
    # bool is an int in Python; JSON true is not an id.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_ID:
        raise _fail(field, "must be an id (a whole number from 1)")
    return value


def _label(value: Any, field: str) -> str:
    """A label as conversations store it (server.domain.conversations)."""
    if not isinstance(value, str) or not _printable(value):
        raise _fail(field, "must be a string of valid Unicode without NUL characters")
    try:
        (label,) = clean_labels([value], field=field)
    except InvalidInput:
        raise _fail(field, "a label must be 1-100 characters without commas") from None
    return label


def _printable(text: str) -> bool:
    """No NUL and no lone surrogates: what the database and JSON can hold."""
    return "\x00" not in text and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def step_field(step: Mapping[str, Any], path: str) -> str:
    """The field to name when a validated step can't be carried out: its
    own value (`actions[1].team_id`), or the step itself for resolve and
    reopen."""
    name = STEP_FIELDS[StepType(step["type"])]
    return path if name is None else f"{path}.{name}"


def step_schema() -> dict[str, Any]:
    """The OpenAPI shape of one step: one object per type."""
    values: dict[str, dict[str, Any]] = {
        "canned_response_id": {"type": "integer", "minimum": 1},
        "label": {"type": "string", "minLength": 1, "maxLength": 100},
        "team_id": {"type": "integer", "minimum": 1, "nullable": True},
        "agent_id": {
            "nullable": True,
            "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": [ME]}],
        },
        "priority": {"type": "string", "enum": [p.value for p in Priority]},
        "minutes": {"type": "integer", "minimum": 1, "maximum": MAX_SNOOZE_MINUTES},
    }
    variants = []
    for kind, name in STEP_FIELDS.items():
        properties: dict[str, Any] = {"type": {"type": "string", "enum": [kind.value]}}
        if name is not None:
            properties[name] = values[name]
        variants.append(
            {
                "type": "object",
                "additionalProperties": False,
                "required": sorted(properties),
                "properties": properties,
            }
        )
    return {"oneOf": variants}
