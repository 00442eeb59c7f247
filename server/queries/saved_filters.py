"""Reading saved filters (F4): an agent's own, in sidebar order, and how
many conversations each holds.

A saved filter is its agent's alone: anyone else, admins included, finds
it missing. Its count is the length of the conversation list its query
opens, for the asking agent: the WHERE clauses come from the list's own
builder (server.queries.conversation_filters), so the two can't disagree
on access or on what a filter means.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import InvalidInput, NotFound
from server.domain.saved_filters import clean_query
from server.queries.access import AnyRow, visible_inbox_ids
from server.queries.api_shapes import iso
from server.queries.conversation_filters import conversation_filters, conversation_scope
from server.queries.records import SavedFilter, load
from server.storage import tables as t


def own(actor: Actor) -> sa.ColumnElement[bool]:
    c = t.saved_filters.c
    if actor.agent_id is None:
        return sa.false()
    return sa.and_(c.workspace_id == actor.workspace_id, c.agent_id == actor.agent_id)


async def access_saved_filter(
    conn: AsyncConnection, actor: Actor, saved_filter_id: int, *, for_update: bool = False
) -> SavedFilter:
    stmt = sa.select(t.saved_filters).where(t.saved_filters.c.id == saved_filter_id, own(actor))
    if for_update:
        stmt = stmt.with_for_update(of=t.saved_filters)
    row: AnyRow | None = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("saved filter not found")
    return load(SavedFilter, row)


def saved_filter_view(row: AnyRow | SavedFilter) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "query": row.query,
        "position": row.position,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def _own_rows(conn: AsyncConnection, actor: Actor) -> list[AnyRow]:
    c = t.saved_filters.c
    rows = await conn.execute(
        sa.select(t.saved_filters).where(own(actor)).order_by(c.position, c.id)
    )
    return list(rows)


async def saved_filter_detail(
    conn: AsyncConnection, actor: Actor, saved_filter_id: int
) -> dict[str, Any]:
    return saved_filter_view(await access_saved_filter(conn, actor, saved_filter_id))


async def list_saved_filters(conn: AsyncConnection, actor: Actor) -> dict[str, Any]:
    """The caller's filters by position (then age). Not paged: an agent
    has at most server.domain.saved_filters.MAX_PER_AGENT."""
    return {"items": [saved_filter_view(r) for r in await _own_rows(conn, actor)]}


async def saved_filter_counts(conn: AsyncConnection, actor: Actor) -> list[dict[str, Any]]:
    """`{id, name, count}` per filter of the caller, in sidebar order: one
    scan of the conversations it may see, one conditional count per filter.
    A filter stored under rules that no longer accept it counts None."""
    rows = await _own_rows(conn, actor)
    if not rows:
        return []
    c = t.conversations.c
    columns: list[sa.ColumnElement[Any]] = []
    valid: list[AnyRow] = []
    for row in rows:
        try:
            query = clean_query(row.query)
        except InvalidInput:
            continue
        matches = sa.and_(sa.true(), *conversation_filters(actor, **query))
        columns.append(sa.func.count(sa.case((matches, c.id))).label(f"n{len(valid)}"))
        valid.append(row)
    counts: dict[int, int] = {}
    if columns:
        visible = await visible_inbox_ids(conn, actor)
        result = (
            await conn.execute(
                sa.select(*columns)
                .select_from(t.conversations)
                .where(*conversation_scope(actor, visible))
            )
        ).one()
        counts = {row.id: int(n) for row, n in zip(valid, result, strict=True)}
    return [{"id": r.id, "name": r.name, "count": counts.get(r.id)} for r in rows]
