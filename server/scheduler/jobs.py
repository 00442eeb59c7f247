"""Which kinds of scheduled job `threadline serve` runs, and how."""

from __future__ import annotations

import asyncio

from server.actions.jobs import Handler
from server.actions.snooze_jobs import SNOOZE_WAKE
from server.actions.snoozes import wake_snooze_job
from server.runtime import Runtime
from server.scheduler.runner import JobRunner

HANDLERS: dict[str, Handler] = {SNOOZE_WAKE: wake_snooze_job}


async def run_scheduler(runtime: Runtime, stop: asyncio.Event) -> None:
    """Run every kind of due job until `stop` is set."""
    await JobRunner(runtime, HANDLERS).run(stop)
