"""Reads the email transports need: which inbox a recipient address
belongs to, IMAP checkpoints, recorded inbound mail. Internal (`get_*`):
the callers are the server's own mail transports, not a user."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.values import InboxKind
from server.queries.records import InboundMail, Inbox, load, load_or_none
from server.storage import tables as t


async def get_email_inboxes(conn: AsyncConnection) -> list[Inbox]:
    """Every email inbox of every workspace (the listener and the pollers
    serve them all)."""
    rows = await conn.execute(
        sa.select(t.inboxes)
        .where(t.inboxes.c.kind == InboxKind.EMAIL.value)
        .order_by(t.inboxes.c.id)
    )
    return [load(Inbox, r) for r in rows]


async def get_inbox_by_address(conn: AsyncConnection, address: str) -> Inbox | None:
    """The email inbox whose public address (`settings.address`) this is."""
    c = t.inboxes.c
    found = (
        await conn.execute(
            sa.select(t.inboxes)
            .where(
                c.kind == InboxKind.EMAIL.value,
                sa.func.lower(c.settings["address"].as_string()) == address.lower(),
            )
            .order_by(c.id)
            .limit(1)
        )
    ).first()
    return load_or_none(Inbox, found)


async def get_imap_checkpoint(conn: AsyncConnection, inbox_id: int) -> tuple[int, int] | None:
    """(uidvalidity, last_uid) of the inbox's IMAP polling, if it started."""
    c = t.imap_checkpoints.c
    row = (
        await conn.execute(sa.select(c.uidvalidity, c.last_uid).where(c.inbox_id == inbox_id))
    ).first()
    return None if row is None else (int(row.uidvalidity), int(row.last_uid))


async def get_inbound_mail_by_hash(
    conn: AsyncConnection, inbox_id: int, sha256: str
) -> InboundMail | None:
    c = t.inbound_mails.c
    row = (
        await conn.execute(
            sa.select(t.inbound_mails).where(c.inbox_id == inbox_id, c.sha256 == sha256)
        )
    ).first()
    return load_or_none(InboundMail, row)
