"""The worker host (server.workers.runner): every worker starts, stops when
told, a crash is logged once and the worker restarted, one that returns
is not, and stop returns within the grace even if a worker ignores it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.workers.runner import WorkerHost

TIMEOUT = 10.0


class Polite:
    """Runs until stop is set, counting its runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0
        self.running = asyncio.Event()
        self.stopped = False

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        self.running.set()
        await stop.wait()
        self.stopped = True


class CrashesOnce(Polite):
    async def run(self, stop: asyncio.Event) -> None:
        if self.runs == 0:
            self.runs += 1
            raise RuntimeError("first run fails")
        await super().run(stop)


class Deaf:
    """Ignores the stop event: only cancellation ends it."""

    name = "deaf"

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.cancelled = False

    async def run(self, stop: asyncio.Event) -> None:
        self.running.set()
        try:
            await asyncio.get_running_loop().create_future()  # never done
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class ReturnsAtOnce:
    name = "done"

    def __init__(self) -> None:
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1


async def test_every_worker_runs_until_stopped() -> None:
    a, b = Polite("a"), Polite("b")
    async with WorkerHost([a, b], grace=TIMEOUT):
        await asyncio.wait_for(asyncio.gather(a.running.wait(), b.running.wait()), TIMEOUT)
        assert not a.stopped and not b.stopped
    assert a.stopped and b.stopped
    assert (a.runs, b.runs) == (1, 1)


async def test_a_crash_is_logged_once_and_the_worker_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crashy, steady = CrashesOnce("crashy"), Polite("steady")
    caplog.set_level(logging.ERROR, logger="server.workers.runner")
    async with WorkerHost([crashy, steady], grace=TIMEOUT, first_retry=0.01):
        await asyncio.wait_for(crashy.running.wait(), TIMEOUT)
        assert steady.running.is_set() and steady.runs == 1
    assert crashy.runs == 2 and crashy.stopped and steady.stopped
    [record] = caplog.records
    assert record.getMessage() == "worker crashy crashed; restarting in 0.0 s"
    assert record.exc_info is not None and "first run fails" in str(record.exc_info[1])


async def test_a_worker_that_returns_is_not_started_again() -> None:
    done, steady = ReturnsAtOnce(), Polite("steady")
    async with WorkerHost([done, steady], grace=TIMEOUT, first_retry=0.0):
        await asyncio.wait_for(steady.running.wait(), TIMEOUT)
        # Let the host's tasks run a few turns: a restart would show here.
        for _ in range(10):
            await asyncio.sleep(0)
    assert done.runs == 1


async def test_stop_returns_within_the_grace_when_a_worker_ignores_it() -> None:
    deaf, polite = Deaf(), Polite("polite")
    host = WorkerHost([deaf, polite], grace=0.2)
    host.start()
    await asyncio.wait_for(asyncio.gather(deaf.running.wait(), polite.running.wait()), TIMEOUT)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(host.stop(), TIMEOUT)
    assert loop.time() - began < 1.0
    assert deaf.cancelled and polite.stopped


async def test_a_host_starts_once() -> None:
    host = WorkerHost([Polite("a")], grace=TIMEOUT)
    async with host:
        with pytest.raises(RuntimeError):
            host.start()
