"""Durable due work (ARCHITECTURE.md rule 5, PROTOCOLS.md P1): rows in
`scheduled_jobs` with a due time, claimed in short transactions and run
through actions.

- `schedule_job` / `cancel_jobs` are called by the action whose change
  makes the work due or moot (snoozing, unsnoozing), in its transaction,
  so the job exists exactly when the change does. One decision is one
  row: the UNIQUE (kind, key) says so, and scheduling another key for
  the same subject supersedes (cancels) the one before.
- `do_claim_jobs` leases due rows to one worker (FOR UPDATE SKIP LOCKED
  on PostgreSQL; SQLite's one writer at a time does the same), so two
  workers never take the same row while its lease holds.
- `do_run_job` runs a claimed job's handler and settles the row in one
  transaction: the handler's change, its events and the row's `done`
  commit together or not at all. A worker whose lease ran out and was
  taken over finds the row no longer its own and rolls back: the work is
  done once, by whoever holds the row.
- `do_fail_job` puts a job whose run raised back to `scheduled` with a
  backoff, until MAX_ATTEMPTS.

Handlers take the conversation (or other subject) lock before the job
row is written, like every writer of a subject does, so the two kinds of
writers never wait on each other in opposite orders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.jobs import (
    LEASE,
    LIVE,
    MAX_ATTEMPTS,
    ClaimedJob,
    JobOutcome,
    JobStatus,
    retry_at,
)
from server.queries.jobs import claimable
from server.queries.records import ScheduledJob, load
from server.storage import tables as t

MAX_ERROR = 1000

# Runs one claimed job inside the transaction that settles it.
Handler = Callable[[ActionContext, ClaimedJob], Awaitable[JobOutcome]]


class ClaimLost(Exception):
    """The job is no longer this worker's (its lease ran out and another
    worker took it, or it was cancelled): the run is rolled back."""


async def schedule_job(
    ctx: ActionContext,
    *,
    workspace_id: int,
    kind: str,
    subject_id: int,
    key: str,
    due_at: datetime,
) -> None:
    """Make `key` the one live job of `kind` for `subject_id`, due at
    `due_at`. Other live jobs of the subject are cancelled (superseded).
    Scheduling a key again is harmless: a live row stays as it is, a
    cancelled one is scheduled again, a finished one is not rerun. The
    caller holds the subject's lock, so no two of these race on it."""
    j = t.scheduled_jobs.c
    await cancel_jobs(ctx, kind=kind, subject_id=subject_id, reason="superseded", keep_key=key)
    existing: str | None = await ctx.conn.scalar(
        sa.select(j.status).where(j.kind == kind, j.key == key).with_for_update()
    )
    if existing not in (None, JobStatus.CANCELLED.value):
        return  # live or finished: stays as it is
    ctx.due_work_added()
    if existing is None:
        await ctx.conn.execute(
            t.scheduled_jobs.insert().values(
                workspace_id=workspace_id,
                kind=kind,
                subject_id=subject_id,
                key=key,
                due_at=due_at,
                run_at=due_at,
                status=JobStatus.SCHEDULED.value,
                attempts=0,
                created_at=ctx.now,
            )
        )
    else:
        await ctx.conn.execute(
            t.scheduled_jobs.update()
            .where(j.kind == kind, j.key == key)
            .values(
                status=JobStatus.SCHEDULED.value,
                due_at=due_at,
                run_at=due_at,
                attempts=0,
                lease_until=None,
                claimed_by=None,
                last_error=None,
                finished_at=None,
            )
        )


async def cancel_jobs(
    ctx: ActionContext, *, kind: str, subject_id: int, reason: str, keep_key: str | None = None
) -> None:
    """Cancel the live jobs of `kind` for `subject_id` (the work became
    moot), but for the one with `keep_key`."""
    j = t.scheduled_jobs.c
    where = [j.kind == kind, j.subject_id == subject_id, j.status.in_([s.value for s in LIVE])]
    if keep_key is not None:
        where.append(j.key != keep_key)
    await _finish(ctx, JobStatus.CANCELLED, reason, *where)


async def do_claim_jobs(
    ctx: ActionContext, *, worker: str, kinds: Collection[str], limit: int = 20
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs of `kinds` to `worker`, earliest first.
    Rows other workers hold locked are skipped; a row whose runs failed or
    whose leases ran out MAX_ATTEMPTS times is given up (`failed`) instead of being run again."""
    j = t.scheduled_jobs.c
    rows = [
        load(ScheduledJob, row)
        for row in await ctx.conn.execute(
            sa.select(t.scheduled_jobs)
            .where(claimable(ctx.now, kinds))
            .order_by(j.run_at, j.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ]
    jobs = []
    for row in rows:
        if row.attempts >= MAX_ATTEMPTS:
            note = f"gave up after {row.attempts} attempts"
            await _finish(ctx, JobStatus.FAILED, note, j.id == row.id)
            continue
        await ctx.conn.execute(
            t.scheduled_jobs.update()
            .where(j.id == row.id)
            .values(
                status=JobStatus.CLAIMED.value,
                claimed_by=worker,
                lease_until=ctx.now + LEASE,
                attempts=row.attempts + 1,
            )
        )
        jobs.append(
            ClaimedJob(
                id=row.id,
                workspace_id=row.workspace_id,
                kind=row.kind,
                subject_id=row.subject_id,
                due_at=row.due_at,
                attempts=row.attempts + 1,
            )
        )
    return jobs


async def do_run_job(
    ctx: ActionContext, *, job: ClaimedJob, worker: str, handler: Handler
) -> JobOutcome:
    """Run `handler` for `job` and settle the row in the same transaction.
    Raises ClaimLost (rolling the handler's change back) when the row is
    no longer claimed by `worker`."""
    outcome = await handler(ctx, job)
    j = t.scheduled_jobs.c
    settled = await ctx.conn.scalar(
        t.scheduled_jobs.update()
        .where(j.id == job.id, j.status == JobStatus.CLAIMED.value, j.claimed_by == worker)
        .values(
            status=outcome.status.value,
            lease_until=None,
            finished_at=ctx.now,
            last_error=outcome.note[:MAX_ERROR] if outcome.note else None,
        )
        .returning(j.id)
    )
    if settled is None:
        raise ClaimLost(f"job {job.id} is no longer claimed by {worker}")
    return outcome


async def do_fail_job(ctx: ActionContext, *, job: ClaimedJob, worker: str, error: str) -> None:
    """Record that running `job` raised: try again after a backoff, or
    give up after MAX_ATTEMPTS. Nothing happens if the row is no longer
    this worker's."""
    j = t.scheduled_jobs.c
    mine = (j.id == job.id, j.status == JobStatus.CLAIMED.value, j.claimed_by == worker)
    if job.attempts >= MAX_ATTEMPTS:
        await _finish(ctx, JobStatus.FAILED, error, *mine)
        return
    await ctx.conn.execute(
        t.scheduled_jobs.update()
        .where(*mine)
        .values(
            status=JobStatus.SCHEDULED.value,
            run_at=retry_at(job.attempts, ctx.now),
            lease_until=None,
            claimed_by=None,
            last_error=error[:MAX_ERROR],
        )
    )


async def _finish(
    ctx: ActionContext, status: JobStatus, note: str, *where: sa.ColumnElement[bool]
) -> None:
    """End the jobs `where` selects with `status`, `note` their last error."""
    await ctx.conn.execute(
        t.scheduled_jobs.update()
        .where(*where)
        .values(
            status=status.value, lease_until=None, finished_at=ctx.now, last_error=note[:MAX_ERROR]
        )
    )
