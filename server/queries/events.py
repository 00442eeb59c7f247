"""Reading the event log: replay for resuming clients, catch-up for the
live hub."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.queries.records import StoredJson, load
from server.storage import tables as t


@dataclasses.dataclass(frozen=True, slots=True)
class LoggedEvent:
    """A row of `events`, as replay and catch-up read it."""

    id: int
    workspace_id: int
    ws_seq: int
    type: str
    inbox_id: int | None
    conversation_id: int | None
    private: bool
    payload: StoredJson
    created_at: datetime


# A plain dict: the realtime hub and replay pass events on in this shape.
def wire_of(row: LoggedEvent) -> dict[str, Any]:
    """The same shape as StoredEvent.wire(), from a logged event."""
    return {
        "event_id": row.id,
        "ws_seq": row.ws_seq,
        "type": row.type,
        "workspace_id": row.workspace_id,
        "inbox_id": row.inbox_id,
        "conversation_id": row.conversation_id,
        "private": row.private,
        "created_at": row.created_at.isoformat(),
        "data": row.payload,
    }


@dataclasses.dataclass(frozen=True)
class LogPosition:
    """Where a workspace's log stands: the last ws_seq handed out, the last
    event id (at least `pruned_through`), and the id through which old
    events were pruned."""

    event_seq: int
    last_event_id: int
    pruned_through: int


async def log_position(conn: AsyncConnection, workspace_id: int) -> LogPosition:
    row = (
        await conn.execute(
            sa.select(t.workspaces.c.event_seq, t.workspaces.c.events_pruned_through).where(
                t.workspaces.c.id == workspace_id
            )
        )
    ).one()
    event_seq: int = row.event_seq
    pruned_through: int = row.events_pruned_through
    last_id: int | None = await conn.scalar(
        sa.select(sa.func.max(t.events.c.id)).where(t.events.c.workspace_id == workspace_id)
    )
    # Never below the pruned mark: when every event of the workspace has
    # been pruned, the client must still be handed an id it can resume from
    # without being told to resync.
    last = max(int(last_id or 0), pruned_through)
    return LogPosition(event_seq, last, pruned_through)


async def event_seq_of(conn: AsyncConnection, workspace_id: int) -> int:
    """The last ws_seq handed out in the workspace: one primary-key read,
    cheap enough for the hub to poll."""
    seq: int = (
        await conn.execute(
            sa.select(t.workspaces.c.event_seq).where(t.workspaces.c.id == workspace_id)
        )
    ).scalar_one()
    return seq


async def events_after_id(
    conn: AsyncConnection, workspace_id: int, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """Events of the workspace with id > after_id, oldest first."""
    rows = await conn.execute(
        sa.select(t.events)
        .where(t.events.c.workspace_id == workspace_id, t.events.c.id > after_id)
        .order_by(t.events.c.id)
        .limit(limit)
    )
    return [wire_of(load(LoggedEvent, r)) for r in rows]


async def events_from_seq(
    conn: AsyncConnection, workspace_id: int, from_seq: int, limit: int
) -> list[dict[str, Any]]:
    """Events of the workspace with ws_seq >= from_seq, in ws_seq order."""
    rows = await conn.execute(
        sa.select(t.events)
        .where(t.events.c.workspace_id == workspace_id, t.events.c.ws_seq >= from_seq)
        .order_by(t.events.c.ws_seq)
        .limit(limit)
    )
    return [wire_of(load(LoggedEvent, r)) for r in rows]


async def workspace_ids(conn: AsyncConnection) -> list[int]:
    return list(
        (await conn.execute(sa.select(t.workspaces.c.id).order_by(t.workspaces.c.id))).scalars()
    )
