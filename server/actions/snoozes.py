"""A snoozed conversation reopens at its time (FEATURES.md F4).

Its wake-up is a job written with the snooze (server.actions.snooze_jobs).
The scheduler (server.workers.jobs) runs the job through
`wake_snooze_job`, which decides again under the conversation's lock
(server.domain.conversations.snooze_wake): a job that outlived its
snooze changes nothing, so each snooze wakes at most once.
"""

from __future__ import annotations

from datetime import datetime

from server.actions.context import ActionContext
from server.actions.conversations import state_of, status_changed
from server.domain.conversations import SnoozeWake, snooze_wake, status_change
from server.domain.errors import NotFound
from server.domain.jobs import ClaimedJob, JobOutcome, JobStatus
from server.domain.values import ConversationStatus
from server.queries.access import access_conversation
from server.storage import tables as t

SNOOZE_EXPIRED = "snooze_expired"


async def do_wake_snoozed_conversation(
    ctx: ActionContext, *, conversation_id: int, due_at: datetime
) -> SnoozeWake:
    """Reopen the conversation if it is still snoozed until `due_at` and
    that time has come; emits conversation.status_changed with reason
    `snooze_expired`. Returns what was found."""
    row = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    state = state_of(row)
    decision = snooze_wake(state, due_at=due_at, now=ctx.now)
    if decision is not SnoozeWake.WAKE:
        return decision
    change = status_change(state, ConversationStatus.OPEN, snoozed_until=None, now=ctx.now)
    assert change is not None  # a snoozed conversation always changes on waking
    await ctx.conn.execute(
        t.conversations.update()
        .where(t.conversations.c.id == conversation_id)
        .values(**change.columns())
    )
    await ctx.emit(status_changed(row, change.status, None, reason=SNOOZE_EXPIRED))
    return decision


async def wake_snooze_job(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
    """The scheduler's handler for SNOOZE_WAKE jobs."""
    try:
        decision = await do_wake_snoozed_conversation(
            ctx, conversation_id=job.subject_id, due_at=job.due_at
        )
    except NotFound:  # deleted meanwhile: nothing left to wake
        return JobOutcome(JobStatus.CANCELLED, "the conversation no longer exists")
    if decision is SnoozeWake.EARLY:
        # Claimed before its time (a worker's clock ahead of the writer's):
        # not done; the failure path reschedules it.
        raise RuntimeError("claimed before the snooze's end")
    if decision is SnoozeWake.STALE:
        return JobOutcome(JobStatus.CANCELLED, "no longer snoozed until this time")
    return JobOutcome(JobStatus.DONE)
