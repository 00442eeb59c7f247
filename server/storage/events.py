"""Appending to the durable event log. Only `server.actions` may call this
(a test enforces it). Reading it back is server.queries.events'."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.json_types import JsonObject, JsonValue
from server.domain.wire_events import WireEvent
from server.storage import tables as t


@dataclasses.dataclass(frozen=True)
class PendingEvent:
    """An event an action emitted, not yet written."""

    workspace_id: int
    type: str
    inbox_id: int | None
    conversation_id: int | None
    private: bool
    payload: JsonObject


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    """An event row as written (what the bus carries after commit) or read
    back: the columns of `events`, in order."""

    id: int
    workspace_id: int
    ws_seq: int
    type: str
    inbox_id: int | None
    conversation_id: int | None
    private: bool
    payload: JsonObject
    created_at: datetime

    def event(self) -> WireEvent:
        """The event as clients see it (PROTOCOLS.md P2)."""
        return WireEvent(
            event_id=self.id,
            ws_seq=self.ws_seq,
            type=self.type,
            workspace_id=self.workspace_id,
            inbox_id=self.inbox_id,
            conversation_id=self.conversation_id,
            private=self.private,
            created_at=self.created_at.isoformat(),
            data=self.payload,
        )

    def wire(self) -> dict[str, JsonValue]:
        """`event()` as JSON, as the bus carries it."""
        return self.event().json()


async def append_events(
    conn: AsyncConnection, pending: list[PendingEvent], created_at: datetime
) -> list[StoredEvent]:
    """Write `pending` as the last step of a transaction.

    For each workspace, one `UPDATE workspaces SET event_seq = event_seq + n`
    hands out a contiguous block of `ws_seq` numbers. That row lock is held
    until commit, so appends in one workspace are serialised: ids become
    visible in increasing order and ws_seq has no holes. Taking it last,
    after every other row lock of the action, keeps lock order acyclic.
    """
    stored: list[StoredEvent] = []
    for workspace_id in sorted({p.workspace_id for p in pending}):
        batch = [p for p in pending if p.workspace_id == workspace_id]
        last: int = (
            await conn.execute(
                t.workspaces.update()
                .where(t.workspaces.c.id == workspace_id)
                .values(event_seq=t.workspaces.c.event_seq + len(batch))
                .returning(t.workspaces.c.event_seq)
            )
        ).scalar_one()
        first = last - len(batch) + 1
        rows = [
            {
                "workspace_id": workspace_id,
                "ws_seq": first + i,
                "type": p.type,
                "inbox_id": p.inbox_id,
                "conversation_id": p.conversation_id,
                "private": p.private,
                "payload": p.payload,
                "created_at": created_at,
            }
            for i, p in enumerate(batch)
        ]
        # Ids are matched to rows by their ws_seq (each row's own), not by
        # the order RETURNING gives them: SQLAlchemy can't promise that
        # order on SQLite and would insert row by row to keep it, where one
        # multi-row INSERT gives the ids in row order anyway (one writer).
        # PostgreSQL batches and keeps the order.
        result = await conn.execute(
            sa.insert(t.events).returning(
                t.events.c.ws_seq,
                t.events.c.id,
                sort_by_parameter_order=conn.dialect.name != "sqlite",
            ),
            rows,
        )
        ids: dict[int, int] = {ws_seq: event_id for ws_seq, event_id in result}
        for i, p in enumerate(batch):
            ws_seq = first + i
            stored.append(
                StoredEvent(
                    id=ids[ws_seq],
                    workspace_id=workspace_id,
                    ws_seq=ws_seq,
                    type=p.type,
                    inbox_id=p.inbox_id,
                    conversation_id=p.conversation_id,
                    private=p.private,
                    payload=p.payload,
                    created_at=created_at,
                )
            )
    return stored
