"""REST: saved filters (F4) — an agent's own named conversation filters,
shown in the sidebar with counts (GET /views/counts, `saved_filters`).

`query` takes exactly the filters of GET /conversations (the same field
declarations, server.http.conversations.FILTERS), so a saved filter opens
as that list. Another agent's filter, an admin's included, is a 404.
Creating answers 201 with the filter; DELETE answers `{"deleted": true}`.
"""

from __future__ import annotations

from server.actions.context import perform
from server.actions.saved_filters import (
    do_create_saved_filter,
    do_delete_saved_filter,
    do_update_saved_filter,
)
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonObject, JsonValue
from server.domain.saved_filters import MAX_NAME, MAX_POSITION
from server.http.api import Call, Endpoint
from server.http.conversations import FILTERS
from server.queries.reading import read
from server.queries.saved_filters import list_saved_filters, saved_filter_detail
from server.wire.records import UNSET, Unset, arg, given, or_none, record
from server.wire.schema import Int, Obj, Str

Name = Str(max_length=MAX_NAME, min_length=1)
# Kept as the object sent (the action stores it as it is), not a record.
Query = Obj(fields=FILTERS, description="the filters of GET /conversations, combined with AND")
Position = Int(minimum=0, maximum=MAX_POSITION, description="sidebar order; default: last")


@record
class NewSavedFilter:
    name: str = arg(Name)
    query: JsonObject = arg(Query)
    position: int | None = arg(Position, default=None)


@record
class SavedFilterChange:
    name: str | Unset = arg(Name, default=UNSET)
    query: JsonObject | Unset = arg(Query, default=UNSET)
    position: int | Unset = arg(Position, default=UNSET)


async def list_saved_filters_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, list_saved_filters, call.actor)


async def create_saved_filter_handler(call: Call[NewSavedFilter, None]) -> JsonValue:
    b = call.body
    saved_filter_id = await perform(
        call.runtime,
        call.actor,
        do_create_saved_filter,
        name=b.name,
        query=b.query,
        position=b.position,
    )
    return await read(call.runtime, saved_filter_detail, call.actor, saved_filter_id)


async def update_saved_filter_handler(call: Call[SavedFilterChange, None]) -> JsonValue:
    b, saved_filter_id = call.body, call.path["saved_filter_id"]
    if not given(b):
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_saved_filter,
        saved_filter_id=saved_filter_id,
        name=or_none(b.name),
        query=or_none(b.query),
        position=or_none(b.position),
    )
    return await read(call.runtime, saved_filter_detail, call.actor, saved_filter_id)


async def delete_saved_filter_handler(call: Call[None, None]) -> JsonValue:
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
        body=NewSavedFilter,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "PATCH",
        ONE,
        update_saved_filter_handler,
        "Rename, change or move one of your saved filters",
        TAG,
        body=SavedFilterChange,
    ),
    Endpoint("DELETE", ONE, delete_saved_filter_handler, "Delete one of your saved filters", TAG),
]
