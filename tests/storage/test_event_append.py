"""Appending a transaction's events: one block of ws_seq per workspace,
and every stored event's id is the one its own row got (the batch is
inserted in one statement, its ids matched to rows by ws_seq)."""

from __future__ import annotations

import sqlalchemy as sa

from server.runtime import Runtime
from server.storage import tables as t
from server.storage.events import PendingEvent, append_events
from tests.support import Workspace, fetch_all, seed_workspace


async def test_a_batch_of_events_gets_its_own_ids_in_ws_seq_order(
    runtime: Runtime, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Other")
    pending = [
        PendingEvent(
            workspace_id=ws.id if i % 3 else other.id,
            type="test.appended",
            inbox_id=None,
            conversation_id=None,
            private=False,
            payload={"n": i},
        )
        for i in range(250)
    ]
    async with runtime.db.write() as conn:
        stored = await append_events(conn, pending, runtime.clock.now())

    rows = await fetch_all(
        runtime,
        sa.select(t.events.c.id, t.events.c.workspace_id, t.events.c.ws_seq, t.events.c.payload)
        .where(t.events.c.type == "test.appended")
        .order_by(t.events.c.id),
    )
    by_id = {row.id: row for row in rows}
    assert len(stored) == len(rows) == 250
    for event in stored:
        row = by_id[event.id]
        assert (row.workspace_id, row.ws_seq, row.payload) == (
            event.workspace_id,
            event.ws_seq,
            event.payload,
        )
    for workspace_id in (ws.id, other.id):
        mine = [row for row in rows if row.workspace_id == workspace_id]
        # Ids rise with ws_seq, and the block has no holes.
        seqs = [row.ws_seq for row in mine]
        assert seqs == sorted(seqs) == list(range(seqs[0], seqs[0] + len(mine)))
        # In pending order within the workspace.
        assert [row.payload["n"] for row in mine] == [
            p.payload["n"] for p in pending if p.workspace_id == workspace_id
        ]
