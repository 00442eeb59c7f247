"""REST: the command palette's search over contacts and conversations."""

from __future__ import annotations

from typing import Any

from server.http.api import Call, Endpoint
from server.http.ratelimit import client_ip, count
from server.queries.reading import read
from server.queries.search import (
    DEFAULT_SEARCH_LIMIT,
    MAX_QUERY,
    MAX_SEARCH_LIMIT,
    MIN_QUERY,
    search,
)
from server.wire.schema import Int, Str, obj


async def search_handler(call: Call) -> Any:
    q, actor = call.query, call.actor
    # Each search is a scan of messages and contacts: limited per account
    # and per IP (PROTOCOLS.md P7).
    keys = [f"agent:{actor.agent_id}", f"ip:{client_ip(call.request)}"]
    limit = call.runtime.settings.search_limit
    count(call.request.app.state, "search_limiter", limit, keys, call.runtime.clock.now())
    return await read(
        call.runtime, search, actor, q["q"], limit=q.get("limit", DEFAULT_SEARCH_LIMIT)
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
        response="{contacts: [...], conversations: [{conversation, match}]}"
        " (429 past THREADLINE_SEARCH_LIMIT)",
    ),
]
