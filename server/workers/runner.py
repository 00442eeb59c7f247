"""The one way background work runs: each worker is an object with a
`name` and `async run(stop)` that works until `stop` is set; a
`WorkerHost` runs a list of them as tasks, beside the HTTP server
(`threadline serve`) or on its own (`threadline worker`).

The policy, the same for every worker:
- a worker that returns is done and is not started again (the SMTP
  listener returns when its port is taken: the others still run);
- a worker that raises has crashed: one log record (its name, the error,
  the traceback) and it is started again after a back-off that doubles
  from `first_retry` up to `last_retry` seconds, and starts over once a run
  lasted `last_retry` seconds. Each worker already retries a failed round
  itself, so a crash is a bug; restarting keeps the other channels, and a
  server's HTTP side, running while it is fixed;
- `stop()` sets the event every worker watches, waits up to `grace`
  seconds for all of them to return, then cancels the stragglers (and
  waits up to `grace` more for the cancellation: a worker that swallows it
  is left behind and logged, and stop still returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

log = logging.getLogger(__name__)


class Worker(Protocol):
    @property
    def name(self) -> str: ...

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then return."""


class WorkerHost:
    def __init__(
        self,
        workers: Sequence[Worker],
        *,
        grace: float,
        first_retry: float = 1.0,
        last_retry: float = 60.0,
    ) -> None:
        self.workers = list(workers)
        self.grace = grace
        self.first_retry = first_retry
        self.last_retry = last_retry
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("the workers are already started")
        self._tasks = [
            asyncio.create_task(self._keep(worker), name=f"worker: {worker.name}")
            for worker in self.workers
        ]

    async def stop(self) -> None:
        self._stop.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self.grace)
        for task in pending:
            log.warning(
                "%s: still running %.1f s after stop, cancelled", task.get_name(), self.grace
            )
            task.cancel()
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=self.grace)
            for task in stuck:
                log.error("%s: ignored its cancellation; left behind", task.get_name())

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _keep(self, worker: Worker) -> None:
        """Run `worker` until it returns or stop is set, restarting it
        after each crash (the policy in the module docstring)."""
        loop = asyncio.get_running_loop()
        delay = self.first_retry
        while not self._stop.is_set():
            began = loop.time()
            try:
                await worker.run(self._stop)
            except Exception:
                if self._stop.is_set():
                    log.exception("worker %s crashed while stopping", worker.name)
                    return
                if loop.time() - began >= self.last_retry:
                    delay = self.first_retry
                log.exception("worker %s crashed; restarting in %.1f s", worker.name, delay)
            else:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, self.last_retry)
