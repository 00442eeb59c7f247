"""Pruning the event log past its retention."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.storage import tables as t

PRUNE_BATCH = 5_000


async def do_prune_events(
    ctx: ActionContext, *, workspace_id: int, before: datetime, batch: int = PRUNE_BATCH
) -> int:
    """Delete up to `batch` events older than `before` and move the
    workspace's `events_pruned_through` mark, so a client resuming from a
    pruned id is told to resync rather than silently missing events.
    Returns how many were deleted (call again while it is `batch`)."""
    ids = list(
        (
            await ctx.conn.execute(
                sa.select(t.events.c.id)
                .where(t.events.c.workspace_id == workspace_id, t.events.c.created_at < before)
                .order_by(t.events.c.id)
                .limit(batch)
            )
        ).scalars()
    )
    if not ids:
        return 0
    await ctx.conn.execute(t.events.delete().where(t.events.c.id.in_(ids)))
    await ctx.conn.execute(
        t.workspaces.update()
        .where(t.workspaces.c.id == workspace_id)
        .values(events_pruned_through=sa.func.max(t.workspaces.c.events_pruned_through, ids[-1]))
        if ctx.conn.dialect.name == "sqlite"
        else t.workspaces.update()
        .where(t.workspaces.c.id == workspace_id)
        .values(
            events_pruned_through=sa.func.greatest(t.workspaces.c.events_pruned_through, ids[-1])
        )
    )
    return len(ids)
