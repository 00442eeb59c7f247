"""REST: canned responses (F6) — saved replies with template bodies.

Creating answers 201 with the response; DELETE answers `{"deleted":
true}`. A response the caller may not read is a 404; one it may read but
not change (a workspace response, for an agent) is a 403. Sending one is
`POST /conversations/{id}/messages` with `canned_response_id`
(server.http.conversations); the preview here shows what that would say.
"""

from __future__ import annotations

from typing import Any

from server.actions.attachments import MAX_PER_MESSAGE
from server.actions.canned_responses import (
    do_create_canned_response,
    do_delete_canned_response,
    do_update_canned_response,
)
from server.actions.context import perform
from server.domain.canned_responses import SHORTCUT_MAX
from server.domain.errors import InvalidInput
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
from server.wire.schema import Id, Int, List, Str, obj

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


async def list_handler(call: Call[Any, Any]) -> Any:
    q = call.query
    return await read(
        call.runtime,
        list_canned_responses,
        call.actor,
        q=q.get("q"),
        scope=CannedScope(q["scope"]) if "scope" in q else None,
        inbox_id=q.get("inbox_id"),
        cursor=q.get("cursor"),
        limit=q.get("limit", DEFAULT_LIMIT),
    )


async def create_handler(call: Call[Any, Any]) -> Any:
    b = call.body
    canned_response_id = await perform(
        call.runtime,
        call.actor,
        do_create_canned_response,
        scope=CannedScope(b["scope"]),
        shortcut=b["shortcut"],
        title=b["title"],
        body=b["body"],
        team_id=b.get("team_id"),
        inbox_id=b.get("inbox_id"),
        attachment_ids=b.get("attachment_ids", []),
    )
    return await read(call.runtime, canned_response_detail, call.actor, canned_response_id)


async def get_handler(call: Call[Any, Any]) -> Any:
    return await read(
        call.runtime, canned_response_detail, call.actor, call.path["canned_response_id"]
    )


async def update_handler(call: Call[Any, Any]) -> Any:
    b, canned_response_id = call.body, call.path["canned_response_id"]
    if not b:
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_canned_response,
        canned_response_id=canned_response_id,
        shortcut=b.get("shortcut"),
        title=b.get("title"),
        body=b.get("body"),
        attachment_ids=b.get("attachment_ids"),
    )
    return await read(call.runtime, canned_response_detail, call.actor, canned_response_id)


async def delete_handler(call: Call[Any, Any]) -> Any:
    await perform(
        call.runtime,
        call.actor,
        do_delete_canned_response,
        canned_response_id=call.path["canned_response_id"],
    )
    return {"deleted": True}


async def preview_handler(call: Call[Any, Any]) -> Any:
    return await read(
        call.runtime,
        preview_canned_response,
        call.actor,
        call.path["canned_response_id"],
        call.body["conversation_id"],
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
        query=obj(
            q=Str(max_length=200, description="a shortcut prefix, or text in title or body"),
            scope=Str.enum(CannedScope),
            inbox_id=Id,
            cursor=Str(max_length=500),
            limit=Int(minimum=1, maximum=MAX_LIMIT, description=f"default {DEFAULT_LIMIT}"),
        ),
    ),
    Endpoint(
        "POST",
        "/canned_responses",
        create_handler,
        "Save a canned response for the workspace, a team, an inbox or yourself",
        TAG,
        body=obj(
            ("scope", "shortcut", "title", "body"),
            scope=Str.enum(CannedScope),
            team_id=Id,
            inbox_id=Id,
            shortcut=Shortcut,
            title=Title,
            body=Body,
            attachment_ids=Files,
        ),
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
        body=obj(shortcut=Shortcut, title=Title, body=Body, attachment_ids=Files),
    ),
    Endpoint("DELETE", ONE, delete_handler, "Delete a canned response and its files", TAG),
    Endpoint(
        "POST",
        ONE + "/preview",
        preview_handler,
        "Render a canned response for a conversation, as sending it would",
        TAG,
        body=obj(("conversation_id",), conversation_id=Id),
    ),
]
