"""Opaque cursors for keyset pagination: stable under inserts, no OFFSET."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonObject, JsonValue

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
_MAX_ID = 2**63 - 1

Item = TypeVar("Item", bound=JsonObject)


def encode_cursor(*key: JsonValue) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[JsonValue]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key: JsonValue = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this API returned", field="cursor") from None
    if not isinstance(key, list) or len(key) != arity:
        raise InvalidInput("cursor: not a cursor this API returned", field="cursor")
    return key


def page(
    items: list[Item], limit: int, next_key: Callable[[Item], Sequence[JsonValue]]
) -> dict[str, JsonValue]:
    """`items` holds up to limit+1 rows; the extra one only tells that more exist."""
    has_more = len(items) > limit
    items = items[:limit]
    return {
        "items": items,
        "next_cursor": encode_cursor(*next_key(items[-1])) if has_more and items else None,
    }


def decode_time_id_cursor(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a keyset cursor points at. Anything this API did not
    hand out is an InvalidInput on `cursor`, never a database error."""
    at_raw, last_id = decode_cursor(cursor, 2)
    bad = InvalidInput("cursor: not a cursor this API returned", field="cursor")
    if not isinstance(at_raw, str) or len(at_raw) > 40:
        raise bad
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 < last_id <= _MAX_ID:
        raise bad
    try:
        at = datetime.fromisoformat(at_raw)
    except ValueError:
        raise bad from None
    if at.tzinfo is None:
        raise bad
    return at, last_id
