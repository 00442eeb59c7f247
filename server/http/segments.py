"""REST: segments (F7) — saved filters over contacts, with a live count
and a preview, used by touchpoints and broadcasts.

Every agent may list and read segments, count them and preview them
(the editor's live count before saving included); creating, changing
and deleting one is for admins (403 otherwise). `filter` is checked as
it is parsed (server.domain.segments), so a 422 names the exact path at
fault (`filter.conditions[2].within`). A duplicate name is a 409 naming
`name`. Creating answers 201 with the segment; DELETE answers
`{"deleted": true}`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from server.actions.context import perform
from server.actions.segments import do_create_segment, do_delete_segment, do_update_segment
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonObject, JsonValue
from server.domain.segments import (
    KINDS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_NAME,
    Group,
    filter_json,
    parse_filter,
)
from server.http.api import Call, Endpoint
from server.queries.reading import read
from server.queries.segments import (
    DEFAULT_PREVIEW,
    MAX_PREVIEW,
    draft_segment_preview,
    list_segments,
    saved_segment_count,
    saved_segment_preview,
    segment_detail,
)
from server.wire.records import UNSET, Unset, arg, given, or_none, record
from server.wire.schema import Int, Str


@dataclasses.dataclass(frozen=True)
class SegmentFilter:
    """A segment's filter, read by server.domain.segments (the one place
    that knows its shape) and kept in its stored JSON form."""

    def parse(self, value: Any, path: str) -> JsonObject:
        return filter_json(parse_filter(value, field=path))

    def parse_text(self, raw: str, path: str) -> JsonObject:
        raise InvalidInput(f"{path}: cannot be given in a query string", field=path)

    def openapi(self) -> dict[str, JsonValue]:
        return {
            "type": "object",
            "description": (
                '{"match": "all"|"any", "conditions": [...]}; a condition names one of: '
                + ", ".join(KINDS)
                + f" (a nested group); at most {MAX_CONDITIONS} conditions, "
                f"{MAX_DEPTH} levels deep. See server/domain/segments.py."
            ),
        }


Name = Str(max_length=MAX_NAME, min_length=1)
Filter = SegmentFilter()
Limit = Int(
    minimum=1, maximum=MAX_PREVIEW, description=f"contacts to show, default {DEFAULT_PREVIEW}"
)


@record
class NewSegment:
    name: str = arg(Name)
    filter: JsonObject = arg(Filter)


@record
class SegmentChange:
    name: str | Unset = arg(Name, default=UNSET)
    filter: JsonObject | Unset = arg(Filter, default=UNSET)


@record
class DraftSegment:
    filter: JsonObject = arg(Filter)


@record
class PreviewQuery:
    limit: int = arg(Limit, default=DEFAULT_PREVIEW)


async def list_segments_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, list_segments, call.actor)


async def get_segment_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, segment_detail, call.actor, call.path["segment_id"])


async def create_segment_handler(call: Call[NewSegment, None]) -> JsonValue:
    b = call.body
    segment_id = await perform(
        call.runtime, call.actor, do_create_segment, name=b.name, filter=b.filter
    )
    return await read(call.runtime, segment_detail, call.actor, segment_id)


async def update_segment_handler(call: Call[SegmentChange, None]) -> JsonValue:
    b, segment_id = call.body, call.path["segment_id"]
    if not given(b):
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_segment,
        segment_id=segment_id,
        name=or_none(b.name),
        filter=or_none(b.filter),
    )
    return await read(call.runtime, segment_detail, call.actor, segment_id)


async def delete_segment_handler(call: Call[None, None]) -> JsonValue:
    await perform(call.runtime, call.actor, do_delete_segment, segment_id=call.path["segment_id"])
    return {"deleted": True}


async def count_segment_handler(call: Call[None, None]) -> JsonValue:
    now = call.runtime.clock.now()
    return await read(call.runtime, saved_segment_count, call.actor, call.path["segment_id"], now)


async def preview_segment_handler(call: Call[None, PreviewQuery]) -> JsonValue:
    now = call.runtime.clock.now()
    return await read(
        call.runtime,
        saved_segment_preview,
        call.actor,
        call.path["segment_id"],
        now,
        call.query.limit,
    )


async def preview_draft_handler(call: Call[DraftSegment, PreviewQuery]) -> JsonValue:
    # Parsed again into its typed form: the body keeps the stored JSON.
    draft: Group = parse_filter(call.body.filter)
    now = call.runtime.clock.now()
    return await read(call.runtime, draft_segment_preview, call.actor, draft, now, call.query.limit)


TAG = "segments"
ONE = "/segments/{segment_id}"

ENDPOINTS = [
    Endpoint("GET", "/segments", list_segments_handler, "List the workspace's segments", TAG),
    Endpoint(
        "POST",
        "/segments",
        create_segment_handler,
        "Save a filter over contacts (admins)",
        TAG,
        body=NewSegment,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "POST",
        "/segments/preview",
        preview_draft_handler,
        "Count and preview the contacts a filter matches, before saving it",
        TAG,
        body=DraftSegment,
        query=PreviewQuery,
    ),
    Endpoint("GET", ONE, get_segment_handler, "Show a segment", TAG),
    Endpoint(
        "PATCH",
        ONE,
        update_segment_handler,
        "Rename a segment or change its filter (admins)",
        TAG,
        body=SegmentChange,
    ),
    Endpoint("DELETE", ONE, delete_segment_handler, "Delete a segment (admins)", TAG),
    Endpoint(
        "GET",
        f"{ONE}/count",
        count_segment_handler,
        "How many contacts match a segment now",
        TAG,
    ),
    Endpoint(
        "GET",
        f"{ONE}/preview",
        preview_segment_handler,
        "The first contacts a segment matches now",
        TAG,
        query=PreviewQuery,
    ),
]
