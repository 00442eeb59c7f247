"""REST: saved filters (F4) — an agent's own named conversation filters,
shown in the sidebar with counts (GET /views/counts, `saved_filters`).

`query` takes exactly the filters of GET /conversations (the same field
declarations, server.http.conversations.FILTERS), so a saved filter opens
as that list. Another agent's filter, an admin's included, is a 404.
Creating answers 201 with the filter; DELETE answers `{"deleted": true}`.
"""

from __future__ import annotations

from typing import Any

from server.actions.context import perform
from server.actions.saved_filters import (
    do_create_saved_filter,
    do_delete_saved_filter,
    do_update_saved_filter,
)
from server.domain.errors import InvalidInput
from server.domain.saved_filters import MAX_NAME, MAX_POSITION
from server.http.api import Call, Endpoint
from server.http.conversations import FILTERS
from server.queries.reading import read
from server.queries.saved_filters import list_saved_filters, saved_filter_detail
from server.wire.schema import Int, Obj, Str, obj

Name = Str(max_length=MAX_NAME, min_length=1)
Query = Obj(fields=FILTERS, description="the filters of GET /conversations, combined with AND")
Position = Int(minimum=0, maximum=MAX_POSITION, description="sidebar order; default: last")


async def list_saved_filters_handler(call: Call[Any, Any]) -> Any:
    return await read(call.runtime, list_saved_filters, call.actor)


async def create_saved_filter_handler(call: Call[Any, Any]) -> Any:
    b = call.body
    saved_filter_id = await perform(
        call.runtime,
        call.actor,
        do_create_saved_filter,
        name=b["name"],
        query=b["query"],
        position=b.get("position"),
    )
    return await read(call.runtime, saved_filter_detail, call.actor, saved_filter_id)


async def update_saved_filter_handler(call: Call[Any, Any]) -> Any:
    b, saved_filter_id = call.body, call.path["saved_filter_id"]
    if not b:
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_saved_filter,
        saved_filter_id=saved_filter_id,
        name=b.get("name"),
        query=b.get("query"),
        position=b.get("position"),
    )
    return await read(call.runtime, saved_filter_detail, call.actor, saved_filter_id)


async def delete_saved_filter_handler(call: Call[Any, Any]) -> Any:
    await perform(
        call.runtime,
        call.actor,
        do_delete_saved_filter,
        saved_filter_id=call.path["saved_filter_id"],
    )
    return {"deleted": True}


TAG = "saved filters"
ONE = "/saved_filters/{saved_filter_id}"

ENDPOINTS = [
    Endpoint(
        "GET",
        "/saved_filters",
        list_saved_filters_handler,
        "List your saved filters in sidebar order",
        TAG,
    ),
    Endpoint(
        "POST",
        "/saved_filters",
        create_saved_filter_handler,
        "Save a conversation filter for your sidebar",
        TAG,
        body=obj(("name", "query"), name=Name, query=Query, position=Position),
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "PATCH",
        ONE,
        update_saved_filter_handler,
        "Rename, change or move one of your saved filters",
        TAG,
        body=obj(name=Name, query=Query, position=Position),
    ),
    Endpoint("DELETE", ONE, delete_saved_filter_handler, "Delete one of your saved filters", TAG),
]
