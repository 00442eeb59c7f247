"""Durable due work, the pure part (ARCHITECTURE.md rule 5): a job's
states, what a claim hands the worker, how long a claim lasts and when a
failed run is tried again. The rows live in `scheduled_jobs`; the
actions in server.actions.jobs claim and settle them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from enum import StrEnum


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its due time (or for a retry)
    CLAIMED = "claimed"  # leased to one worker until `lease_until`
    DONE = "done"
    CANCELLED = "cancelled"  # no longer wanted: superseded, or its guard said no
    FAILED = "failed"  # gave up after MAX_ATTEMPTS


# Statuses a job can still run from; the others are final.
LIVE = (JobStatus.SCHEDULED, JobStatus.CLAIMED)

# How long a claim holds a job: a worker that died with it loses it to the
# next claim after this.
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8


@dataclasses.dataclass(frozen=True)
class ClaimedJob:
    """One job leased to a worker: run it, then settle it (the run's
    transaction marks it done or cancelled; a failure reschedules it)."""

    id: int
    workspace_id: int
    kind: str
    subject_id: int
    due_at: datetime
    attempts: int


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """What a job's handler decided: `done`, or `cancelled` with why."""

    status: JobStatus
    note: str | None = None


def retry_at(attempts: int, now: datetime) -> datetime:
    """When a run that failed for the `attempts`-th time is tried again:
    15 s, doubling, at most 30 minutes."""
    return now + timedelta(seconds=min(15 * 2 ** max(attempts - 1, 0), 1800))
