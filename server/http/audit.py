"""REST: the audit log (admins only; server.queries.audit)."""

from __future__ import annotations

from typing import Any

from server.http.api import Call, Endpoint
from server.queries.audit import list_audit_log
from server.queries.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.queries.reading import read
from server.wire.schema import Id, Int, Str, obj


async def list_audit_log_handler(call: Call) -> Any:
    q = call.query
    return await read(
        call.runtime,
        list_audit_log,
        call.actor,
        subject_kind=q.get("subject_kind"),
        subject_id=q.get("subject_id"),
        cursor=q.get("cursor"),
        limit=q.get("limit", DEFAULT_LIMIT),
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/audit_log",
        list_audit_log_handler,
        "Who merged or unmerged what, newest first (admins only)",
        "audit log",
        query=obj(
            subject_kind=Str(max_length=32, min_length=1, description="contact or conversation"),
            subject_id=Id,
            cursor=Str(max_length=500),
            limit=Int(minimum=1, maximum=MAX_LIMIT, description=f"default {DEFAULT_LIMIT}"),
        ),
    ),
]
