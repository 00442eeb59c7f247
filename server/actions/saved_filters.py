"""Saved filters (F4): an agent saving, changing and deleting its own
named conversation filters.

Only an agent has them, and only its own: another agent's (an admin's
included) is reported missing, and its events reach its owner alone
(server.realtime.visibility). `query` is checked by
server.domain.saved_filters and stored in its clean form; names are
unique per agent. A new filter goes last unless given a `position`;
positions are the agent's to choose (ties keep creation order), nothing
is renumbered behind its back.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import Conflict, Forbidden
from server.domain.events import SavedFilterCreated, SavedFilterDeleted, SavedFilterUpdated
from server.domain.json_types import JsonValue
from server.domain.saved_filters import (
    MAX_PER_AGENT,
    MAX_POSITION,
    clean_name,
    clean_position,
    clean_query,
)
from server.queries.saved_filters import access_saved_filter
from server.storage import tables as t


async def _name_taken(
    ctx: ActionContext, agent_id: int, name: str, *, except_id: int | None = None
) -> None:
    c = t.saved_filters.c
    stmt = sa.select(c.id).where(c.agent_id == agent_id, c.name == name)
    if except_id is not None:
        stmt = stmt.where(c.id != except_id)
    if await ctx.conn.scalar(stmt) is not None:
        raise Conflict(f"name: you already have a filter named {name!r}", field="name")


async def do_create_saved_filter(
    ctx: ActionContext, *, name: str, query: Mapping[str, JsonValue], position: int | None = None
) -> int:
    agent_id = ctx.actor.agent_id
    if agent_id is None:
        raise Forbidden("only an agent has saved filters")
    name, query = clean_name(name), clean_query(query)
    await _name_taken(ctx, agent_id, name)
    c = t.saved_filters.c
    held, last = (
        await ctx.conn.execute(
            sa.select(sa.func.count(), sa.func.max(c.position)).where(c.agent_id == agent_id)
        )
    ).one()
    if held >= MAX_PER_AGENT:
        raise Conflict(f"at most {MAX_PER_AGENT} saved filters; delete one first")
    if position is None:
        position = 0 if last is None else min(last + 1, MAX_POSITION)
    position = clean_position(position)
    saved_filter_id: int = (
        await ctx.conn.execute(
            t.saved_filters.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                agent_id=agent_id,
                name=name,
                query=query,
                position=position,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            .returning(c.id)
        )
    ).scalar_one()
    await ctx.emit(
        SavedFilterCreated(
            workspace_id=ctx.actor.workspace_id,
            saved_filter_id=saved_filter_id,
            agent_id=agent_id,
            name=name,
            query=query,
            position=position,
        )
    )
    return saved_filter_id


async def do_update_saved_filter(
    ctx: ActionContext,
    *,
    saved_filter_id: int,
    name: str | None = None,
    query: Mapping[str, JsonValue] | None = None,
    position: int | None = None,
) -> None:
    """Change what is given; nothing changed, nothing emitted."""
    row = await access_saved_filter(ctx.conn, ctx.actor, saved_filter_id, for_update=True)
    values: dict[str, object] = {}
    new_name, new_query, new_position = row.name, row.query, row.position
    if name is not None and (name := clean_name(name)) != row.name:
        await _name_taken(ctx, row.agent_id, name, except_id=row.id)
        values["name"] = new_name = name
    if query is not None and (cleaned := clean_query(query)) != row.query:
        values["query"] = new_query = cleaned
    if position is not None and clean_position(position) != row.position:
        values["position"] = new_position = position
    if not values:
        return
    await ctx.conn.execute(
        t.saved_filters.update()
        .where(t.saved_filters.c.id == row.id)
        .values(**values, updated_at=ctx.now)
    )
    await ctx.emit(
        SavedFilterUpdated(
            workspace_id=row.workspace_id,
            saved_filter_id=row.id,
            agent_id=row.agent_id,
            name=new_name,
            query=new_query,
            position=new_position,
            changes=sorted(values),
        )
    )


async def do_delete_saved_filter(ctx: ActionContext, *, saved_filter_id: int) -> None:
    row = await access_saved_filter(ctx.conn, ctx.actor, saved_filter_id, for_update=True)
    await ctx.conn.execute(t.saved_filters.delete().where(t.saved_filters.c.id == row.id))
    await ctx.emit(
        SavedFilterDeleted(
            workspace_id=row.workspace_id, saved_filter_id=row.id, agent_id=row.agent_id
        )
    )
