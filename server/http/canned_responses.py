"""REST: canned responses (F6) — saved replies with template bodies.

Creating answers 201 with the response; DELETE answers `{"deleted":
true}`. A response the caller may not read is a 404; one it may read but
not change (a workspace response, for an agent) is a 403. Sending one is
`POST /conversations/{id}/messages` with `canned_response_id`
(server.http.conversations); the preview here shows what that would say.
"""

from __future__ import annotations

from server.actions.attachments import MAX_PER_MESSAGE
from server.actions.canned_responses import (
    do_create_canned_response,
    do_delete_canned_response,
    do_update_canned_response,
)
from server.actions.context import perform
from server.domain.canned_responses import SHORTCUT_MAX
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.templates import MAX_TEMPLATE_CHARS, VARIABLES
from server.domain.values import CannedScope
from server.http.api import Call, Endpoint
from server.queries.canned_responses import (
    canned_response_detail,
    list_canned_responses,
    preview_canned_response,
)
from server.queries.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.queries.reading import read
from server.wire.records import UNSET, Unset, arg, given, or_none, record
from server.wire.schema import Id, Int, List, Str

Shortcut = Str(
    max_length=SHORTCUT_MAX + 1,  # room for the "/" an agent may type first
    min_length=1,
    description="a lowercase slug, typed as /shortcut in the composer",
)
Title = Str(max_length=200, min_length=1)
Body = Str(
    max_length=MAX_TEMPLATE_CHARS,
    min_length=1,
    strip=False,
    description="a template; variables: " + ", ".join("{{" + v + "}}" for v in VARIABLES),
)
Files = List(Id, max_items=MAX_PER_MESSAGE, description="your own uploads no message carries yet")


@record
class CannedListQuery:
    q: str | None = arg(
        Str(max_length=200, description="a shortcut prefix, or text in title or body"),
        default=None,
    )
    scope: str | None = arg(Str.enum(CannedScope), default=None)
    inbox_id: int | None = arg(Id, default=None)
    cursor: str | None = arg(Str(max_length=500), default=None)
    limit: int = arg(
        Int(minimum=1, maximum=MAX_LIMIT, description=f"default {DEFAULT_LIMIT}"),
        default=DEFAULT_LIMIT,
    )


@record
class NewCannedResponse:
    scope: str = arg(Str.enum(CannedScope))
    team_id: int | None = arg(Id, default=None)
    inbox_id: int | None = arg(Id, default=None)
    shortcut: str = arg(Shortcut)
    title: str = arg(Title)
    body: str = arg(Body)
    attachment_ids: list[int] = arg(Files, default_factory=list)


@record
class CannedResponseChange:
    shortcut: str | Unset = arg(Shortcut, default=UNSET)
    title: str | Unset = arg(Title, default=UNSET)
    body: str | Unset = arg(Body, default=UNSET)
    attachment_ids: list[int] | Unset = arg(Files, default=UNSET)


@record
class PreviewFor:
    conversation_id: int = arg(Id)


async def list_handler(call: Call[None, CannedListQuery]) -> JsonValue:
    q = call.query
    return await read(
        call.runtime,
        list_canned_responses,
        call.actor,
        q=q.q,
        scope=CannedScope(q.scope) if q.scope is not None else None,
        inbox_id=q.inbox_id,
        cursor=q.cursor,
        limit=q.limit,
    )


async def create_handler(call: Call[NewCannedResponse, None]) -> JsonValue:
    b = call.body
    canned_response_id = await perform(
        call.runtime,
        call.actor,
        do_create_canned_response,
        scope=CannedScope(b.scope),
        shortcut=b.shortcut,
        title=b.title,
        body=b.body,
        team_id=b.team_id,
        inbox_id=b.inbox_id,
        attachment_ids=b.attachment_ids,
    )
    return await read(call.runtime, canned_response_detail, call.actor, canned_response_id)


async def get_handler(call: Call[None, None]) -> JsonValue:
    return await read(
        call.runtime, canned_response_detail, call.actor, call.path["canned_response_id"]
    )


async def update_handler(call: Call[CannedResponseChange, None]) -> JsonValue:
    b, canned_response_id = call.body, call.path["canned_response_id"]
    if not given(b):
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_canned_response,
        canned_response_id=canned_response_id,
        shortcut=or_none(b.shortcut),
        title=or_none(b.title),
        body=or_none(b.body),
        attachment_ids=or_none(b.attachment_ids),
    )
    return await read(call.runtime, canned_response_detail, call.actor, canned_response_id)


async def delete_handler(call: Call[None, None]) -> JsonValue:
    await perform(
        call.runtime,
        call.actor,
        do_delete_canned_response,
        canned_response_id=call.path["canned_response_id"],
    )
    return {"deleted": True}


async def preview_handler(call: Call[PreviewFor, None]) -> JsonValue:
    return await read(
        call.runtime,
        preview_canned_response,
        call.actor,
        call.path["canned_response_id"],
        call.body.conversation_id,
    )


TAG = "canned responses"
ONE = "/canned_responses/{canned_response_id}"

ENDPOINTS = [
    Endpoint(
        "GET",
        "/canned_responses",
        list_handler,
        "List or search the canned responses you can use",
        TAG,
        query=CannedListQuery,
    ),
    Endpoint(
        "POST",
        "/canned_responses",
        create_handler,
        "Save a canned response for the workspace, a team, an inbox or yourself",
        TAG,
        body=NewCannedResponse,
        status=201,
        idempotency="stored",
    ),
    Endpoint("GET", ONE, get_handler, "Get a canned response", TAG),
    Endpoint(
        "PATCH",
        ONE,
        update_handler,
        "Change a canned response's shortcut, title, body or files (not its scope)",
        TAG,
        body=CannedResponseChange,
    ),
    Endpoint("DELETE", ONE, delete_handler, "Delete a canned response and its files", TAG),
    Endpoint(
        "POST",
        ONE + "/preview",
        preview_handler,
        "Render a canned response for a conversation, as sending it would",
        TAG,
        body=PreviewFor,
    ),
]
