"""Recorded inbound mail (server.actions.inbound_email): the admins' list
(the quarantine is `status=quarantined`), and the original bytes of a
mail, for admins and for agents who can read the message it became."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.queries.access import access_message, require_admin
from server.queries.api_shapes import iso
from server.queries.pagination import DEFAULT_LIMIT, decode_time_id_cursor, page
from server.queries.records import InboundMail, load
from server.storage import tables as t


def inbound_mail_view(row: InboundMail) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "inbox_id": row.inbox_id,
        "source": row.source,
        "status": row.status,
        "reason": row.reason,
        "size": row.size,
        "envelope_from": row.envelope_from,
        "envelope_to": row.envelope_to,
        "message_id_header": row.header_message_id,
        "from_address": row.from_address,
        "subject": row.subject,
        "message_id": row.message_id,
        "conversation_id": row.conversation_id,
        "thread": row.thread,
        "created_at": iso(row.created_at),
    }


async def list_inbound_mails(
    conn: AsyncConnection,
    actor: Actor,
    *,
    status: str | None = None,
    inbox_id: int | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """Newest first; admins only (a quarantined mail belongs to no
    conversation an agent could be allowed to read)."""
    require_admin(actor)
    m = t.inbound_mails.c
    stmt = sa.select(t.inbound_mails).where(m.workspace_id == actor.workspace_id)
    if status is not None:
        stmt = stmt.where(m.status == status)
    if inbox_id is not None:
        stmt = stmt.where(m.inbox_id == inbox_id)
    if cursor is not None:
        at, last_id = decode_time_id_cursor(cursor)
        stmt = stmt.where(sa.or_(m.created_at < at, sa.and_(m.created_at == at, m.id < last_id)))
    rows = await conn.execute(stmt.order_by(m.created_at.desc(), m.id.desc()).limit(limit + 1))
    return page(
        [inbound_mail_view(load(InboundMail, r)) for r in rows],
        limit,
        lambda e: (e["created_at"], e["id"]),
    )


@dataclasses.dataclass(frozen=True)
class Original:
    storage_key: str
    size: int
    sha256: str


async def inbound_mail_original(conn: AsyncConnection, actor: Actor, mail_id: int) -> Original:
    """The raw bytes' key of a recorded mail: admins only."""
    require_admin(actor)
    m = t.inbound_mails.c
    row = (
        await conn.execute(
            sa.select(m.storage_key, m.size, m.sha256).where(
                m.id == mail_id, m.workspace_id == actor.workspace_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("inbound mail not found", field="inbound_mail_id")
    return Original(row.storage_key, row.size, row.sha256)


async def message_original(conn: AsyncConnection, actor: Actor, message_id: int) -> Original:
    """The mail a message was made from, for whoever may read the message."""
    await access_message(conn, actor, message_id)
    m = t.inbound_mails.c
    mail = (
        await conn.execute(
            sa.select(m.storage_key, m.size, m.sha256)
            .where(m.message_id == message_id, m.status == "stored")
            .order_by(m.id)
            .limit(1)
        )
    ).first()
    if mail is None:
        raise NotFound("this message did not come in by email", field="message_id")
    return Original(mail.storage_key, mail.size, mail.sha256)
