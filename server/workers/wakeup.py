"""How a scheduler sleeps: until its next due time, its poll interval, a
stop, or a nudge — whichever comes first.

A write that adds due work (server.actions.context.ActionContext.
due_work_added) publishes a nudge on the bus after commit, so work due
now starts at once in whichever process claims it, not at the next poll.
The bus is lossy by design: a lost nudge (Redis down, a full buffer) only
means the work is found at the next poll, which stays the bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.bus.base import SCHEDULER_TOPIC, Bus, Subscription

log = logging.getLogger(__name__)


class Wakeup:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._nudged = asyncio.Event()
        self._sub: Subscription | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._reader is not None:
            return
        try:
            self._sub = await self.bus.subscribe(SCHEDULER_TOPIC)
        except Exception:
            log.warning("scheduler nudges unavailable; polling only", exc_info=True)
            return
        self._reader = asyncio.create_task(self._read(self._sub), name="scheduler nudges")

    async def _read(self, sub: Subscription) -> None:
        async for _ in sub:
            self._nudged.set()

    async def sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Return after `seconds`, or sooner on `stop` or a nudge."""
        if seconds <= 0 or stop.is_set():
            return
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._nudged.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            self._nudged.clear()

    async def close(self) -> None:
        if self._sub is not None:
            await self._sub.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._sub = self._reader = None
