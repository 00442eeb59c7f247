"""Which outbox rows are due (server.actions.outbound_email claims them).

The worker asks `outbox_due` first, in a read: an idle server then never
opens a write transaction just to find nothing (on SQLite every write
transaction takes the database's one write lock)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage import tables as t

EMAIL_CHANNEL = "email"
PENDING = "pending"


def due_rows(now: datetime) -> sa.ColumnElement[bool]:
    """Email rows waiting to be sent, due by `now`, not leased to a worker."""
    o = t.outbox.c
    return sa.and_(
        o.channel == EMAIL_CHANNEL,
        o.status == PENDING,
        o.due_at <= now,
        sa.or_(o.locked_until.is_(None), o.locked_until < now),
    )


async def outbox_due(conn: AsyncConnection, now: datetime) -> bool:
    found = await conn.scalar(sa.select(t.outbox.c.id).where(due_rows(now)).limit(1))
    return found is not None
