"""REST: the command palette's search over contacts and conversations."""

from __future__ import annotations

from server.domain.json_types import JsonValue
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
from server.wire.records import arg, record
from server.wire.schema import Int, Str


@record
class SearchQuery:
    q: str = arg(
        Str(
            min_length=MIN_QUERY,
            max_length=MAX_QUERY,
            description="text to find, case-insensitive; % and _ are literal",
        )
    )
    limit: int = arg(
        Int(
            minimum=1,
            maximum=MAX_SEARCH_LIMIT,
            description=f"results per section, default {DEFAULT_SEARCH_LIMIT}",
        ),
        default=DEFAULT_SEARCH_LIMIT,
    )


async def search_handler(call: Call[None, SearchQuery]) -> JsonValue:
    q, actor = call.query, call.actor
    # Each search is a scan of messages and contacts: limited per account
    # and per IP (PROTOCOLS.md P7).
    keys = [f"agent:{actor.agent_id}", f"ip:{client_ip(call.request)}"]
    limit = call.runtime.settings.search_limit
    count(call.request.app.state, "search_limiter", limit, keys, call.runtime.clock.now())
    return await read(call.runtime, search, actor, q.q, limit=q.limit)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/search",
        search_handler,
        "Find contacts by name or identity and conversations by subject or message text",
        "search",
        query=SearchQuery,
        response="{contacts: [...], conversations: [{conversation, match}]}"
        " (429 past THREADLINE_SEARCH_LIMIT)",
    ),
]
