"""The audit log: who did what that an admin may need to answer for later
(merges and their undo). Actions call `record_audit` inside their own
transaction, so an entry exists exactly when the change it describes
does. Admins read it with GET /audit_log (server.queries.audit).

Entries are not events: nothing streams them, and they outlive the
event log's retention and the agents they name.
"""

from __future__ import annotations

from typing import Any

from server.actions.context import ActionContext
from server.storage import tables as t


async def record_audit(
    ctx: ActionContext,
    action: str,
    subject_kind: str,
    subject_id: int,
    details: dict[str, Any],
) -> int:
    """Write one entry for the acting agent (or the system) at `ctx.now`.
    `action` is a dotted name such as `contact.merged`; `subject_kind` and
    `subject_id` name the object it is filed under (the filter of GET
    /audit_log); `details` is JSON-simple. Returns the entry's id."""
    entry_id: int = (
        await ctx.conn.execute(
            t.audit_log.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                actor_kind=ctx.actor.kind.value,
                actor_id=ctx.actor.agent_id,
                action=action,
                subject_kind=subject_kind,
                subject_id=subject_id,
                details=details,
                created_at=ctx.now,
            )
            .returning(t.audit_log.c.id)
        )
    ).scalar_one()
    return entry_id
