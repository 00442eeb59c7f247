"""Event-log retention: old events are pruned in batches, the workspace's
pruned mark moves, newer events stay."""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import perform
from server.actions.messages import do_send_message
from server.clock import FrozenClock
from server.queries.events import log_position
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.pruning import prune_event_log
from tests.support import Workspace, seed_workspace


async def event_ids(runtime: Runtime, workspace_id: int) -> list[int]:
    async with runtime.db.read() as conn:
        rows = await conn.execute(
            sa.select(t.events.c.id)
            .where(t.events.c.workspace_id == workspace_id)
            .order_by(t.events.c.id)
        )
        return list(rows.scalars())


async def test_prune_keeps_what_is_within_retention(runtime: Runtime, ws: Workspace) -> None:
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    old = await event_ids(runtime, ws.id)
    clock.advance(days=runtime.settings.event_retention_days + 1)
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=ws.conversation_id, text="recent"
    )
    recent = [i for i in await event_ids(runtime, ws.id) if i not in old]

    deleted = await prune_event_log(runtime)

    assert deleted == len(old)
    assert await event_ids(runtime, ws.id) == recent
    async with runtime.db.read() as conn:
        position = await log_position(conn, ws.id)
    assert position.pruned_through == old[-1]
    assert position.last_event_id == recent[-1]
    assert await prune_event_log(runtime) == 0  # nothing more to do


async def test_prune_leaves_a_young_log_alone(runtime: Runtime, ws: Workspace) -> None:
    before = await event_ids(runtime, ws.id)
    assert await prune_event_log(runtime) == 0
    assert await event_ids(runtime, ws.id) == before
    async with runtime.db.read() as conn:
        assert (await log_position(conn, ws.id)).pruned_through == 0


async def test_prunes_in_batches_across_workspaces(runtime: Runtime, ws: Workspace) -> None:
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    other = await seed_workspace(runtime, "Other Co")
    for i in range(20):
        await perform(
            runtime, ws.admin, do_send_message, conversation_id=ws.conversation_id, text=f"m{i}"
        )
    ours, theirs = await event_ids(runtime, ws.id), await event_ids(runtime, other.id)
    clock.advance(days=runtime.settings.event_retention_days + 1)

    assert await prune_event_log(runtime, batch=7) == len(ours) + len(theirs)

    assert await event_ids(runtime, ws.id) == [] and await event_ids(runtime, other.id) == []
    async with runtime.db.read() as conn:
        assert (await log_position(conn, ws.id)).pruned_through == ours[-1]
        assert (await log_position(conn, other.id)).pruned_through == theirs[-1]
