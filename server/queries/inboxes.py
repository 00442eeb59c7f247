"""Internal reads of inboxes by id (`get_*`: no permission check; the
callers already hold a conversation or a transport's own inbox)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.errors import NotFound
from server.queries.records import Inbox, load_or_none
from server.storage import tables as t


async def find_inbox(conn: AsyncConnection, inbox_id: int) -> Inbox | None:
    found = (await conn.execute(sa.select(t.inboxes).where(t.inboxes.c.id == inbox_id))).first()
    return load_or_none(Inbox, found)


async def get_inbox(conn: AsyncConnection, inbox_id: int) -> Inbox:
    """An inbox that must exist (a conversation's, read under its lock)."""
    inbox = await find_inbox(conn, inbox_id)
    if inbox is None:
        raise NotFound("inbox not found", field="inbox_id")
    return inbox
