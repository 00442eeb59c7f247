"""REST: the command palette's search over contacts and conversations."""

from __future__ import annotations

from typing import Any

from server.http.api import Call, Endpoint
from server.http.schema import Int, Str, obj
from server.queries.reading import read
from server.queries.search import (
    DEFAULT_SEARCH_LIMIT,
    MAX_QUERY,
    MAX_SEARCH_LIMIT,
    MIN_QUERY,
    search,
)


async def search_handler(call: Call) -> Any:
    q = call.query
    return await read(
        call.runtime, search, call.actor, q["q"], limit=q.get("limit", DEFAULT_SEARCH_LIMIT)
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/search",
        search_handler,
        "Find contacts by name or identity and conversations by subject or message text",
        "search",
        query=obj(
            ("q",),
            q=Str(
                min_length=MIN_QUERY,
                max_length=MAX_QUERY,
                description="text to find, case-insensitive; % and _ are literal",
            ),
            limit=Int(
                minimum=1,
                maximum=MAX_SEARCH_LIMIT,
                description=f"results per section, default {DEFAULT_SEARCH_LIMIT}",
            ),
        ),
        response="{contacts: [...], conversations: [{conversation, match}]}",
    ),
]
