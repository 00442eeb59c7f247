"""The wake-up job of a snoozed conversation, kept in step with the
snooze (server.actions.snoozes runs it).

Every writer that changes a conversation's `snoozed_until` calls
`set_snooze_wake` in its transaction, under the conversation's lock: a
snooze schedules its wake-up (superseding the one of an earlier snooze),
anything else — unsnoozing, resolving, a customer's message, a merge —
cancels it. So the job exists exactly when the snooze does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from server.actions.context import ActionContext
from server.actions.jobs import cancel_jobs, schedule_job

SNOOZE_WAKE = "conversation.snooze_wake"


def snooze_key(conversation_id: int, until: datetime) -> str:
    """One wake-up per (conversation, snooze time)."""
    return f"{conversation_id}@{until.astimezone(UTC).isoformat()}"


async def set_snooze_wake(
    ctx: ActionContext, *, workspace_id: int, conversation_id: int, until: datetime | None
) -> None:
    """The conversation is now snoozed until `until` (None: not snoozed)."""
    if until is None:
        await cancel_jobs(ctx, kind=SNOOZE_WAKE, subject_id=conversation_id, reason="unsnoozed")
        return
    await schedule_job(
        ctx,
        workspace_id=workspace_id,
        kind=SNOOZE_WAKE,
        subject_id=conversation_id,
        key=snooze_key(conversation_id, until),
        due_at=until,
    )
