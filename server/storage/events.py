"""Appending to the durable event log. Only `server.actions` may call this
(a test enforces it)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage import tables

# Namespace for pg_advisory_xact_lock(int, int): (this, workspace_id).
_EVENT_APPEND_LOCK_NAMESPACE = 7_461_776


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    """An event row as written: what the bus carries after commit."""

    id: int
    workspace_id: int
    type: str
    inbox_id: int | None
    conversation_id: int | None
    private: bool
    payload: dict[str, Any]
    created_at: datetime

    def wire(self) -> dict[str, Any]:
        """The event as clients see it (PROTOCOLS.md P2)."""
        return {
            "event_id": self.id,
            "type": self.type,
            "workspace_id": self.workspace_id,
            "inbox_id": self.inbox_id,
            "conversation_id": self.conversation_id,
            "private": self.private,
            "created_at": self.created_at.isoformat(),
            "data": self.payload,
        }


async def serialize_appends(conn: AsyncConnection, workspace_id: int) -> None:
    """On PostgreSQL, hold a per-workspace lock until commit, so that within
    a workspace event ids become visible in increasing order: a reader that
    resumes after id N can never later discover a committed id below N.
    SQLite already serialises every writer (BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, :ws)"),
            {"ns": _EVENT_APPEND_LOCK_NAMESPACE, "ws": workspace_id},
        )


async def append_event(
    conn: AsyncConnection,
    *,
    workspace_id: int,
    type: str,
    inbox_id: int | None,
    conversation_id: int | None,
    private: bool,
    payload: dict[str, Any],
    created_at: datetime,
) -> StoredEvent:
    result = await conn.execute(
        tables.events.insert()
        .values(
            workspace_id=workspace_id,
            type=type,
            inbox_id=inbox_id,
            conversation_id=conversation_id,
            private=private,
            payload=payload,
            created_at=created_at,
        )
        .returning(tables.events.c.id)
    )
    return StoredEvent(
        id=result.scalar_one(),
        workspace_id=workspace_id,
        type=type,
        inbox_id=inbox_id,
        conversation_id=conversation_id,
        private=private,
        payload=payload,
        created_at=created_at,
    )
