"""Saved filters' pure rules (F4): an agent's named conversation filter,
shown in the sidebar with a count.

A filter's `query` holds the filters of GET /conversations under the same
names and with the same meaning (server.queries.conversation_filters), so
the sidebar can open it as that list and its count is that list's length.
`clean_query` gives the stored form: keys in FILTERS only, labels as
conversations store them, statuses sorted and unique, and `false` flags
and empty status lists (which filter nothing) left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.domain.conversations import clean_labels
from server.domain.errors import InvalidInput
from server.domain.values import ConversationStatus

MAX_NAME = 100
# Enough for any sidebar; keeps the list and the counts query small.
MAX_PER_AGENT = 100
MAX_POSITION = 1_000_000
_MAX_ID = 2**63 - 1

# The filters GET /conversations takes (without paging), by kind of value.
ID_FILTERS = ("inbox_id", "team_id", "assignee_id", "contact_id")
FLAG_FILTERS = ("unassigned", "mine")
FILTERS = ("status", *ID_FILTERS, "label", *FLAG_FILTERS)


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def clean_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > MAX_NAME:
        raise _fail("name", f"1 to {MAX_NAME} characters")
    if "\x00" in name:
        raise _fail("name", "must not contain NUL characters")
    return name


def clean_position(position: int) -> int:
    if isinstance(position, bool) or not 0 <= position <= MAX_POSITION:
        raise _fail("position", f"must be between 0 and {MAX_POSITION}")
    return position


def clean_query(raw: Any, *, field: str = "query") -> dict[str, Any]:
    """The stored form of a filter query; anything GET /conversations
    would refuse is refused here, naming `query.<key>`."""
    if not isinstance(raw, Mapping):
        raise _fail(field, "must be an object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{field}.{str(key)[:100]}"
        if key not in FILTERS:
            raise _fail(path, "unknown filter; one of: " + ", ".join(FILTERS))
        if key == "status":
            statuses = _statuses(value, path)
            if statuses:
                out[key] = statuses
        elif key in ID_FILTERS:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_ID:
                raise _fail(path, "must be an id (a whole number from 1)")
            out[key] = value
        elif key == "label":
            out[key] = _label(value, path)
        else:
            if not isinstance(value, bool):
                raise _fail(path, "must be true or false")
            if value:
                out[key] = True
    return out


def _statuses(value: Any, path: str) -> list[str]:
    allowed = [s.value for s in ConversationStatus]
    if not isinstance(value, list) or len(value) > len(allowed):
        raise _fail(path, f"must be a list of at most {len(allowed)} statuses")
    for i, status in enumerate(value):
        if not isinstance(status, str) or status not in allowed:
            raise _fail(f"{path}[{i}]", "must be one of: " + ", ".join(allowed))
    return sorted(set(value))


def _label(value: Any, path: str) -> str:
    if (
        not isinstance(value, str)
        or "\x00" in value
        or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    ):
        raise _fail(path, "must be a string of valid Unicode without NUL characters")
    try:
        (label,) = clean_labels([value], field=path)
    except InvalidInput:
        raise _fail(path, "a label must be 1-100 characters without commas") from None
    return label
