"""The touchpoint decision runner (TOUCHPOINTS.md rule 2): claims due
decisions in short transactions (server.actions.touch_claims) until
told to stop.

Like the scheduled jobs runner (server.workers.jobs) it keeps no state in
memory, so any number of runners (one per `threadline serve` or
`threadline worker` process) share the rows: FOR UPDATE SKIP LOCKED on
PostgreSQL hands each decision to one of them. Between rounds it asks,
in a read, when the next decision is due and sleeps until then, never
longer than `poll_interval` (a decision another process writes may be
due sooner than anything this runner saw), and a nudge cuts the sleep
short (server.workers.wakeup): a write that schedules a decision due now,
in any process, has it claimed now. While decisions are due it claims
batch after batch without sleeping. A failed round (the database
away, a bug in one decision that raised) rolls back whole, is logged,
and is tried again after `poll_interval`: the rows are still pending.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from server.actions.context import perform
from server.actions.touch_claims import ProcessedBatch, do_process_due_decisions
from server.domain.actors import system_actor
from server.domain.unsubscribe import unsubscribe_url
from server.email.config import mail_identity
from server.queries.reading import read
from server.queries.touch_decisions import next_decision_due
from server.runtime import Runtime
from server.workers.wakeup import Wakeup

log = logging.getLogger(__name__)

HELD_RETRY = 0.1  # seconds


class DecisionRunner:
    name = "touchpoint decisions"

    def __init__(self, runtime: Runtime, *, poll_interval: float = 1.0, batch: int = 100) -> None:
        self.runtime = runtime
        self.poll_interval = poll_interval
        self.batch = batch
        self._key = mail_identity(runtime.settings).key
        self.processed = 0  # decisions claimed since start (for the benchmark)

    def unsubscribe_link(self, workspace_id: int, address: str) -> str:
        """The one-click link templates show; the same one the mail's
        List-Unsubscribe header carries (server.workers.email_delivery)."""
        return unsubscribe_url(
            self.runtime.settings.public_url, workspace_id, address, key=self._key
        )

    async def run(self, stop: asyncio.Event) -> None:
        wakeup = Wakeup(self.runtime.bus)
        await wakeup.start()
        try:
            while not stop.is_set():
                await wakeup.sleep(stop, await self._round())
        finally:
            await wakeup.close()

    async def _round(self) -> float:
        """Claim while decisions are due; how long to sleep after."""
        try:
            due = await self._next_due()
            if not self._is_due(due):
                return self._wait(due)
            if (await self.process_batch()).claimed:
                return 0.0  # maybe more are due: the next batch at once
            # Due, but held by other transactions (another runner, an exit
            # being written): look again shortly, not in a tight loop.
            return min(HELD_RETRY, self.poll_interval)
        except Exception:
            log.exception("touchpoint decisions: a round failed")
            return self.poll_interval

    async def idle_seconds(self) -> float:
        """How long to sleep: until the next decision is due, at most
        `poll_interval`."""
        return self._wait(await self._next_due())

    async def run_due(self) -> ProcessedBatch:
        """One round: claim what is due (after asking in a read whether
        anything is)."""
        if not self._is_due(await self._next_due()):
            return ProcessedBatch(0, {})
        return await self.process_batch()

    async def process_batch(self) -> ProcessedBatch:
        batch = await perform(
            self.runtime,
            system_actor(0),
            do_process_due_decisions,
            limit=self.batch,
            unsubscribe_link=self.unsubscribe_link,
        )
        self.processed += batch.claimed
        return batch

    async def _next_due(self) -> datetime | None:
        return await read(self.runtime, next_decision_due)

    def _is_due(self, due: datetime | None) -> bool:
        return due is not None and due <= self.runtime.clock.now()

    def _wait(self, due: datetime | None) -> float:
        if due is None:
            return self.poll_interval
        ahead = (due - self.runtime.clock.now()).total_seconds()
        return min(max(ahead, 0.0), self.poll_interval)
