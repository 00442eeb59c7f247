"""A job scheduled due now starts at once, not at the runner's next poll:
the write nudges every scheduler over the bus after commit."""

from __future__ import annotations

import asyncio

from server.actions.context import ActionContext, perform
from server.actions.jobs import schedule_job
from server.bus.base import SCHEDULER_TOPIC
from server.bus.memory import MemoryBus
from server.domain.jobs import ClaimedJob, JobOutcome, JobStatus
from server.runtime import Runtime
from server.workers.jobs import JobRunner
from tests.support import Workspace

KIND = "test.nudged"


async def test_a_job_due_now_runs_long_before_the_poll_interval(
    runtime: Runtime, ws: Workspace
) -> None:
    ran = asyncio.Event()

    async def handler(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
        ran.set()
        return JobOutcome(JobStatus.DONE)

    async def schedule(ctx: ActionContext) -> None:
        await schedule_job(
            ctx, workspace_id=ws.id, kind=KIND, subject_id=1, key="now", due_at=ctx.now
        )

    # Polling alone would find the job after 120 s; the test allows 10.
    runner = JobRunner(runtime, {KIND: handler}, worker="a", poll_interval=120)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        bus = runtime.bus
        assert isinstance(bus, MemoryBus)
        async with asyncio.timeout(10):
            while SCHEDULER_TOPIC not in bus._subscribers:
                await asyncio.sleep(0.01)
        await perform(runtime, ws.agent, schedule)
        async with asyncio.timeout(10):
            await ran.wait()
    finally:
        stop.set()
        await task
