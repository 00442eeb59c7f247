"""Segments (F7): admins saving, changing and deleting filters over
contacts, and the durable record of who entered one.

`filter` is checked by server.domain.segments and stored in its clean
form; names are unique per workspace. Every agent may read segments
(server.queries.segments); only admins change them.

`segment_members` holds who matched at the last refresh. A refresh
evaluates the filter now and diffs: contacts who match and are not
members enter (a row with `entered_at`), members who no longer match
leave (their row goes), so a contact who leaves and matches again enters
again. The insert is ON CONFLICT DO NOTHING ... RETURNING on the primary
key, so of two refreshes racing only one reports a contact as entered,
and a second run with nothing changed enters nobody.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from server.actions.context import ActionContext
from server.domain.errors import Conflict
from server.domain.events import SegmentCreated, SegmentDeleted, SegmentUpdated
from server.domain.json_types import JsonValue
from server.domain.segments import MAX_PER_WORKSPACE, clean_name, filter_json, parse_filter
from server.queries.access import require_admin
from server.queries.segments import (
    access_segment,
    matching_among,
    segment_matches,
    stored_filter,
    touchpoints_using,
)
from server.storage import tables as t

# Ids per statement in a refresh: small enough for SQLite's bound-parameter
# limit and for memory at 100k contacts, big enough to be few round trips.
REFRESH_CHUNK = 1000


async def _name_taken(ctx: ActionContext, name: str, *, except_id: int | None = None) -> None:
    s = t.segments.c
    stmt = sa.select(s.id).where(s.workspace_id == ctx.actor.workspace_id, s.name == name)
    if except_id is not None:
        stmt = stmt.where(s.id != except_id)
    if await ctx.conn.scalar(stmt) is not None:
        raise Conflict(f"name: there is already a segment named {name!r}", field="name")


async def do_create_segment(
    ctx: ActionContext, *, name: str, filter: Mapping[str, JsonValue]
) -> int:
    require_admin(ctx.actor)
    name, clean = clean_name(name), filter_json(parse_filter(filter))
    await _name_taken(ctx, name)
    s = t.segments.c
    held = await ctx.conn.scalar(
        sa.select(sa.func.count()).where(s.workspace_id == ctx.actor.workspace_id)
    )
    if (held or 0) >= MAX_PER_WORKSPACE:
        raise Conflict(f"at most {MAX_PER_WORKSPACE} segments; delete one first")
    segment_id: int = (
        await ctx.conn.execute(
            t.segments.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                name=name,
                filter=clean,
                created_by_id=ctx.actor.agent_id,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            .returning(s.id)
        )
    ).scalar_one()
    await ctx.emit(
        SegmentCreated(workspace_id=ctx.actor.workspace_id, segment_id=segment_id, name=name)
    )
    return segment_id


async def do_update_segment(
    ctx: ActionContext,
    *,
    segment_id: int,
    name: str | None = None,
    filter: Mapping[str, JsonValue] | None = None,
) -> None:
    """Change what is given; nothing changed, nothing emitted. Members are
    kept: the next refresh diffs them against the new filter."""
    require_admin(ctx.actor)
    row = await access_segment(ctx.conn, ctx.actor, segment_id, for_update=True)
    values: dict[str, object] = {}
    new_name = row.name
    if name is not None and (name := clean_name(name)) != row.name:
        await _name_taken(ctx, name, except_id=row.id)
        values["name"] = new_name = name
    if filter is not None and (clean := filter_json(parse_filter(filter))) != row.filter:
        values["filter"] = clean
    if not values:
        return
    await ctx.conn.execute(
        t.segments.update().where(t.segments.c.id == row.id).values(**values, updated_at=ctx.now)
    )
    await ctx.emit(SegmentUpdated(workspace_id=row.workspace_id, segment_id=row.id, name=new_name))


async def do_delete_segment(ctx: ActionContext, *, segment_id: int) -> None:
    require_admin(ctx.actor)
    row = await access_segment(ctx.conn, ctx.actor, segment_id, for_update=True)
    # A touchpoint that lost its segment would reach everyone (no entry
    # filter) or no one (a broadcast): refuse while one still uses it.
    using = await touchpoints_using(ctx.conn, row.workspace_id, row.id)
    if using:
        names = ", ".join(f"'{name}'" for name in using[:5])
        raise Conflict(
            f"segment_id: used by touchpoint {names}; archive it or choose another segment first",
            field="segment_id",
        )
    # Members go with it (ON DELETE CASCADE); archived touchpoints that
    # named it keep their row with no entry segment (SET NULL).
    await ctx.conn.execute(t.segments.delete().where(t.segments.c.id == row.id))
    await ctx.emit(SegmentDeleted(workspace_id=row.workspace_id, segment_id=row.id))


async def do_refresh_segment_members(ctx: ActionContext, *, segment_id: int) -> list[int]:
    """Evaluate the segment now and record the diff; the ids of contacts
    who entered, in id order. Safe to run twice or in two processes at
    once: a contact is reported entered by the one call that inserted it."""
    row = await access_segment(ctx.conn, ctx.actor, segment_id)
    segment_filter = stored_filter(row)
    workspace_id = row.workspace_id
    m = t.segment_members.c
    # Leavers first, walking the current members in chunks.
    after = 0
    while True:
        members = list(
            await ctx.conn.scalars(
                sa.select(m.contact_id)
                .where(m.segment_id == row.id, m.contact_id > after)
                .order_by(m.contact_id)
                .limit(REFRESH_CHUNK)
            )
        )
        if not members:
            break
        after = members[-1]
        still = await matching_among(ctx.conn, workspace_id, segment_filter, ctx.now, members)
        gone = [c for c in members if c not in still]
        if gone:
            await ctx.conn.execute(
                t.segment_members.delete().where(m.segment_id == row.id, m.contact_id.in_(gone))
            )
    # Then entrants, walking the matches in chunks.
    insert = sqlite.insert if ctx.conn.dialect.name == "sqlite" else postgresql.insert
    entered: list[int] = []
    after = 0
    while True:
        ids = await segment_matches(
            ctx.conn, workspace_id, segment_filter, ctx.now, after_id=after, limit=REFRESH_CHUNK
        )
        if not ids:
            break
        after = ids[-1]
        stmt = (
            insert(t.segment_members)
            .values(
                [
                    {
                        "segment_id": row.id,
                        "contact_id": contact_id,
                        "workspace_id": workspace_id,
                        "entered_at": ctx.now,
                    }
                    for contact_id in ids
                ]
            )
            .on_conflict_do_nothing(index_elements=[m.segment_id, m.contact_id])
            .returning(m.contact_id)
        )
        entered.extend(await ctx.conn.scalars(stmt))
    return sorted(entered)
