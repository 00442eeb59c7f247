"""REST: the audit log (admins only; server.queries.audit)."""

from __future__ import annotations

from server.domain.json_types import JsonValue
from server.http.api import Call, Endpoint
from server.queries.audit import list_audit_log
from server.queries.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.queries.reading import read
from server.wire.records import arg, record
from server.wire.schema import Id, Int, Str


@record
class AuditQuery:
    subject_kind: str | None = arg(
        Str(max_length=32, min_length=1, description="contact or conversation"), default=None
    )
    subject_id: int | None = arg(Id, default=None)
    cursor: str | None = arg(Str(max_length=500), default=None)
    limit: int = arg(
        Int(minimum=1, maximum=MAX_LIMIT, description=f"default {DEFAULT_LIMIT}"),
        default=DEFAULT_LIMIT,
    )


async def list_audit_log_handler(call: Call[None, AuditQuery]) -> JsonValue:
    q = call.query
    return await read(
        call.runtime,
        list_audit_log,
        call.actor,
        subject_kind=q.subject_kind,
        subject_id=q.subject_id,
        cursor=q.cursor,
        limit=q.limit,
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/audit_log",
        list_audit_log_handler,
        "Who merged or unmerged what, newest first (admins only)",
        "audit log",
        query=AuditQuery,
    ),
]
