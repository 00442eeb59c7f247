"""When scheduled work is next due (server.actions.jobs claims it).

The scheduler asks `next_job_due` in a read before it claims anything and
sleeps until that time: an idle server never opens a write transaction
just to find nothing (on SQLite every write transaction takes the
database's one write lock)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.jobs import LIVE, JobStatus
from server.storage import tables as t


def claimable(now: datetime, kinds: Collection[str]) -> sa.ColumnElement[bool]:
    """Jobs of `kinds` a worker may claim at `now`: scheduled and due to run, or
    claimed by a worker whose lease ran out (it died or hung)."""
    j = t.scheduled_jobs.c
    return sa.and_(
        j.kind.in_(kinds),
        sa.or_(
            sa.and_(j.status == JobStatus.SCHEDULED.value, j.run_at <= now),
            sa.and_(j.status == JobStatus.CLAIMED.value, j.lease_until < now),
        ),
    )


async def next_job_due(conn: AsyncConnection, kinds: Collection[str]) -> datetime | None:
    """The earliest time a job of `kinds` becomes claimable (maybe in the
    past), or None when there is nothing left to run."""
    j = t.scheduled_jobs.c
    # A scheduled job is claimable from its run_at, a claimed one once its
    # lease runs out; min() keeps the column's type, so aware UTC.
    claimable_from = sa.case((j.status == JobStatus.SCHEDULED.value, j.run_at), else_=j.lease_until)
    due: datetime | None = await conn.scalar(
        sa.select(sa.func.min(claimable_from)).where(
            j.kind.in_(kinds), j.status.in_([s.value for s in LIVE])
        )
    )
    return due
