"""The scheduled jobs worker (ARCHITECTURE.md rule 5): claims due
`scheduled_jobs` rows and runs each through its kind's handler (an action,
server.actions.jobs), until told to stop; `HANDLERS` says which kinds
this server runs.

It keeps no state in memory; several runners (one per `threadline serve`
or `threadline worker` process) share the rows safely, and one started
after a restart picks up whatever came due meanwhile. Between rounds it asks, in a read, when the
next job is due and sleeps until then, but never longer than
`poll_interval`: a job another process writes may be due sooner than
anything this runner has seen, and the cap bounds how late it is noticed.
An idle server thus reads once per interval and never opens a write
transaction (on SQLite, the database's one write lock) to find nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import datetime

from server.actions.context import perform
from server.actions.jobs import ClaimLost, Handler, do_claim_jobs, do_fail_job, do_run_job
from server.actions.requeue import requeue_away_job, requeue_unanswered_job
from server.actions.snooze_jobs import SNOOZE_WAKE
from server.actions.snoozes import wake_snooze_job
from server.actions.touch_planning import (
    BROADCAST_PLAN,
    DATE_SCAN,
    SEGMENT_SCAN,
    run_broadcast_plan,
    run_date_scan,
    run_segment_scan,
)
from server.domain.actors import system_actor
from server.domain.assignment import AGENT_AWAY, REPLY_DUE
from server.domain.jobs import ClaimedJob
from server.queries.jobs import next_job_due
from server.queries.reading import read
from server.runtime import Runtime
from server.workers.wakeup import Wakeup

log = logging.getLogger(__name__)

HANDLERS: dict[str, Handler] = {
    SNOOZE_WAKE: wake_snooze_job,
    REPLY_DUE: requeue_unanswered_job,
    AGENT_AWAY: requeue_away_job,
    BROADCAST_PLAN: run_broadcast_plan,
    SEGMENT_SCAN: run_segment_scan,
    DATE_SCAN: run_date_scan,
}


def worker_name() -> str:
    """Unique per runner: host, process and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    name = "scheduled jobs"

    def __init__(
        self,
        runtime: Runtime,
        handlers: Mapping[str, Handler],
        *,
        worker: str | None = None,
        poll_interval: float = 1.0,
        batch: int = 20,
    ) -> None:
        self.runtime = runtime
        self.handlers = dict(handlers)
        self.worker = worker or worker_name()
        self.poll_interval = poll_interval
        self.batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        """Run due jobs until `stop` is set; an error in one round is logged
        and the next round tries again after `poll_interval`. Sleeps are cut
        short by a nudge (server.workers.wakeup): a job scheduled due now,
        by any process, runs now."""
        wakeup = Wakeup(self.runtime.bus)
        await wakeup.start()
        try:
            while not stop.is_set():
                try:
                    due = await self._next_due()
                    if self._is_due(due) and await self.claim_and_run():
                        continue  # maybe more are due: claim the next batch at once
                    wait = self._wait(due)
                except Exception:
                    log.exception("scheduled jobs: a round failed")
                    wait = self.poll_interval
                await wakeup.sleep(stop, wait)
        finally:
            await wakeup.close()

    async def idle_seconds(self) -> float:
        """How long to sleep: until the next job is due, at most `poll_interval`."""
        return self._wait(await self._next_due())

    async def run_due(self) -> int:
        """One round: claim what is due (after asking in a read whether
        anything is) and run each once. Returns how many were claimed."""
        return await self.claim_and_run() if self._is_due(await self._next_due()) else 0

    async def claim_and_run(self) -> int:
        """Claim a batch of due jobs and run each once; how many were claimed."""
        jobs = await perform(
            self.runtime,
            system_actor(0),
            do_claim_jobs,
            worker=self.worker,
            kinds=list(self.handlers),
            limit=self.batch,
        )
        for job in jobs:
            await self.execute(job)
        return len(jobs)

    async def _next_due(self) -> datetime | None:
        return await read(self.runtime, next_job_due, self.handlers)

    def _is_due(self, due: datetime | None) -> bool:
        return due is not None and due <= self.runtime.clock.now()

    def _wait(self, due: datetime | None) -> float:
        if due is None:
            return self.poll_interval
        ahead = (due - self.runtime.clock.now()).total_seconds()
        return min(max(ahead, 0.0), self.poll_interval)

    async def execute(self, job: ClaimedJob) -> None:
        actor = system_actor(job.workspace_id)
        try:
            await perform(
                self.runtime,
                actor,
                do_run_job,
                job=job,
                worker=self.worker,
                handler=self.handlers[job.kind],
            )
        except ClaimLost:
            log.info("scheduled job %s was taken over by another worker", job.id)
        except Exception as exc:
            log.exception("scheduled job %s (%s) failed; will retry", job.id, job.kind)
            await perform(
                self.runtime, actor, do_fail_job, job=job, worker=self.worker, error=str(exc)
            )
