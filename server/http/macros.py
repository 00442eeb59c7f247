"""REST: macros (F6) — a named list of steps run on a conversation in one
click.

Creating answers 201 with the macro; DELETE answers `{"deleted": true}`.
A macro the caller may not read is a 404; a workspace macro an agent may
read and run but not change is a 403. Running one answers the
conversation as it now is and the ids of the replies sent
(server.actions.macro_runs says what a run does and how a retry with the
same Idempotency-Key is answered).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from server.actions.context import perform
from server.actions.macro_runs import run_macro
from server.actions.macros import do_create_macro, do_delete_macro, do_update_macro
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonObject, JsonValue
from server.domain.macros import MAX_NAME, MAX_STEPS, MacroScope, parse_step, step_schema
from server.http.api import Call, Endpoint
from server.http.idempotency import header_key
from server.queries.conversations import conversation_detail
from server.queries.macros import list_macros, macro_detail
from server.queries.reading import read
from server.wire.records import UNSET, Unset, arg, given, or_none, record
from server.wire.schema import Id, List, Str


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a macro, validated by the domain's own rules so the API
    and the action can't disagree."""

    def parse(self, value: Any, path: str) -> JsonObject:
        return parse_step(value, path)

    def parse_text(self, raw: str, path: str) -> JsonObject:
        raise InvalidInput(f"{path}: cannot be given in a query string", field=path)

    def openapi(self) -> dict[str, JsonValue]:
        return step_schema()


Name = Str(max_length=MAX_NAME, min_length=1)
Steps = List(
    Step(),
    max_items=MAX_STEPS,
    description=f"1 to {MAX_STEPS} steps, run in order in one transaction",
)


@record
class MacroListQuery:
    scope: str | None = arg(Str.enum(MacroScope), default=None)


@record
class NewMacro:
    scope: str = arg(Str.enum(MacroScope))
    name: str = arg(Name)
    actions: Sequence[JsonObject] = arg(Steps)


@record
class MacroChange:
    name: str | Unset = arg(Name, default=UNSET)
    actions: Sequence[JsonObject] | Unset = arg(Steps, default=UNSET)


@record
class RunOn:
    conversation_id: int = arg(Id)


async def list_macros_handler(call: Call[None, MacroListQuery]) -> JsonValue:
    scope = call.query.scope
    return await read(
        call.runtime,
        list_macros,
        call.actor,
        scope=MacroScope(scope) if scope is not None else None,
    )


async def create_macro_handler(call: Call[NewMacro, None]) -> JsonValue:
    b = call.body
    macro_id = await perform(
        call.runtime,
        call.actor,
        do_create_macro,
        scope=MacroScope(b.scope),
        name=b.name,
        actions=b.actions,
    )
    return await read(call.runtime, macro_detail, call.actor, macro_id)


async def get_macro_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, macro_detail, call.actor, call.path["macro_id"])


async def update_macro_handler(call: Call[MacroChange, None]) -> JsonValue:
    b, macro_id = call.body, call.path["macro_id"]
    if not given(b):
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_macro,
        macro_id=macro_id,
        name=or_none(b.name),
        actions=or_none(b.actions),
    )
    return await read(call.runtime, macro_detail, call.actor, macro_id)


async def delete_macro_handler(call: Call[None, None]) -> JsonValue:
    await perform(call.runtime, call.actor, do_delete_macro, macro_id=call.path["macro_id"])
    return {"deleted": True}


async def run_macro_handler(call: Call[RunOn, None]) -> JsonValue:
    key = header_key(call.request)
    conversation_id = call.body.conversation_id
    result = await run_macro(
        call.runtime,
        call.actor,
        macro_id=call.path["macro_id"],
        conversation_id=conversation_id,
        idempotency_key=key,
    )
    return {
        "macro_id": result.macro_id,
        "conversation": await read(call.runtime, conversation_detail, call.actor, conversation_id),
        "message_ids": result.message_ids,
        "usage_count": result.usage_count,
        "replayed": result.replayed,
    }


TAG = "macros"
ONE = "/macros/{macro_id}"

ENDPOINTS = [
    Endpoint(
        "GET",
        "/macros",
        list_macros_handler,
        "List the macros you can run, by name",
        TAG,
        query=MacroListQuery,
    ),
    Endpoint(
        "POST",
        "/macros",
        create_macro_handler,
        "Save a macro for the workspace (admins) or for yourself",
        TAG,
        body=NewMacro,
        status=201,
        idempotency="stored",
    ),
    Endpoint("GET", ONE, get_macro_handler, "Get a macro", TAG),
    Endpoint(
        "PATCH",
        ONE,
        update_macro_handler,
        "Change a macro's name or steps (not its scope)",
        TAG,
        body=MacroChange,
    ),
    Endpoint("DELETE", ONE, delete_macro_handler, "Delete a macro", TAG),
    Endpoint(
        "POST",
        ONE + "/run",
        run_macro_handler,
        "Run a macro's steps on a conversation, all or none (honours the Idempotency-Key header)",
        TAG,
        body=RunOn,
        idempotency="own",
    ),
]
