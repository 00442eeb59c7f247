"""Reading macros (F6): who may read which, one, and the list.

Workspace macros are read by every agent of the workspace; personal ones
by their owner alone (admins included: a personal macro is its agent's
own, as for canned responses). A macro the caller may not read is as
missing as one that does not exist. The realtime viewer applies the same
rule to macro events (server.realtime.visibility).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.domain.macros import MacroScope
from server.queries.access import access_conversation
from server.queries.api_shapes import iso
from server.queries.records import Macro, load, load_or_none
from server.storage import tables as t


def macro_filter(actor: Actor) -> sa.ColumnElement[bool]:
    c = t.macros.c
    own = (
        sa.and_(c.scope == MacroScope.PERSONAL.value, c.agent_id == actor.agent_id)
        if actor.agent_id is not None
        else sa.false()
    )
    return sa.and_(
        c.workspace_id == actor.workspace_id, sa.or_(c.scope == MacroScope.WORKSPACE.value, own)
    )


async def access_macro(
    conn: AsyncConnection, actor: Actor, macro_id: int, *, for_update: bool = False
) -> Macro:
    stmt = sa.select(t.macros).where(t.macros.c.id == macro_id, macro_filter(actor))
    if for_update:
        stmt = stmt.with_for_update(of=t.macros)
    row = load_or_none(Macro, (await conn.execute(stmt)).first())
    if row is None:
        raise NotFound("macro not found")
    return row


def macro_view(row: Macro) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "scope": row.scope,
        "agent_id": row.agent_id,
        "name": row.name,
        "actions": row.actions,
        "usage_count": row.usage_count,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def macro_detail(conn: AsyncConnection, actor: Actor, macro_id: int) -> dict[str, JsonValue]:
    return macro_view(await access_macro(conn, actor, macro_id))


async def list_macros(
    conn: AsyncConnection, actor: Actor, *, scope: MacroScope | None = None
) -> dict[str, JsonValue]:
    """Every macro the caller may run, by name. Not paged: an audience
    holds at most server.domain.macros.MAX_PER_AUDIENCE of them."""
    c = t.macros.c
    stmt = sa.select(t.macros).where(macro_filter(actor))
    if scope is not None:
        stmt = stmt.where(c.scope == scope.value)
    rows = await conn.execute(stmt.order_by(c.name, c.id))
    return {"items": [macro_view(load(Macro, r)) for r in rows]}


async def run_plan(
    conn: AsyncConnection, actor: Actor, macro_id: int, conversation_id: int
) -> list[dict[str, Any]]:
    """The steps a run of the macro on the conversation would take, once
    both are found readable (so nothing is prepared for a 404)."""
    row = await access_macro(conn, actor, macro_id)
    await access_conversation(conn, actor, conversation_id)
    steps: list[dict[str, Any]] = row.actions
    return steps
