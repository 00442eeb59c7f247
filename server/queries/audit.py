"""Reading the audit log (server.actions.audit writes it). Admins only:
entries name conversations and contacts across every inbox."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.json_types import JsonValue
from server.queries.access import require_admin
from server.queries.api_shapes import iso
from server.queries.pagination import DEFAULT_LIMIT, decode_time_id_cursor, page
from server.queries.records import AuditEntry, load
from server.storage import tables as t


def audit_entry_view(row: AuditEntry) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "actor_kind": row.actor_kind,
        "actor_id": row.actor_id,
        "action": row.action,
        "subject_kind": row.subject_kind,
        "subject_id": row.subject_id,
        "details": row.details,
        "created_at": iso(row.created_at),
    }


async def list_audit_log(
    conn: AsyncConnection,
    actor: Actor,
    *,
    subject_kind: str | None = None,
    subject_id: int | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """A page of `audit_entries`."""
    entries = await audit_entries(
        conn,
        actor,
        subject_kind=subject_kind,
        subject_id=subject_id,
        cursor=cursor,
        limit=limit + 1,  # the extra one only tells that more exist
    )
    return page([audit_entry_view(e) for e in entries], limit, lambda e: (e["created_at"], e["id"]))


async def audit_entries(
    conn: AsyncConnection,
    actor: Actor,
    *,
    subject_kind: str | None = None,
    subject_id: int | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[AuditEntry]:
    """Up to `limit` entries, newest first, optionally only those filed
    under one kind of subject (`contact`, `conversation`) or one subject."""
    require_admin(actor)
    a = t.audit_log.c
    stmt = sa.select(t.audit_log).where(a.workspace_id == actor.workspace_id)
    if subject_kind is not None:
        stmt = stmt.where(a.subject_kind == subject_kind)
    if subject_id is not None:
        stmt = stmt.where(a.subject_id == subject_id)
    if cursor is not None:
        at, last_id = decode_time_id_cursor(cursor)
        stmt = stmt.where(sa.or_(a.created_at < at, sa.and_(a.created_at == at, a.id < last_id)))
    rows = await conn.execute(stmt.order_by(a.created_at.desc(), a.id.desc()).limit(limit))
    return [load(AuditEntry, r) for r in rows]
