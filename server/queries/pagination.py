"""Opaque cursors for keyset pagination: stable under inserts, no OFFSET."""

from __future__ import annotations

import base64
import json
from typing import Any

from server.domain.errors import InvalidInput

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this API returned", field="cursor") from None
    if not isinstance(key, list) or len(key) != arity:
        raise InvalidInput("cursor: not a cursor this API returned", field="cursor")
    return key


def page(items: list[dict[str, Any]], limit: int, next_key: Any) -> dict[str, Any]:
    """`items` holds up to limit+1 rows; the extra one only tells that more exist."""
    has_more = len(items) > limit
    items = items[:limit]
    return {
        "items": items,
        "next_cursor": encode_cursor(*next_key(items[-1])) if has_more and items else None,
    }
