"""Diagnostic launcher, for benchmarks only: `threadline serve` exactly as
server/cli.py runs it, plus two measurements, appended every half second as
JSON lines ({"lock": [...], "lag": [...], "gc": [...]}) to the file named by
$BENCH_TRACE_FILE (uvicorn re-raises SIGTERM after shutdown, so there is no
reliable moment to write at exit):

- the SQLite write lock (server/storage/db.py): how long each write
  transaction waited for it and then held it. Every write (so every POSTed
  message) holds it from BEGIN IMMEDIATE to COMMIT, awaiting a thread hop per
  statement, so 1 / (mean hold) is the ceiling on writes per second;
- event-loop lag: how late a 5 ms timer fires, i.e. how long anything that
  is ready (such as the next statement of the transaction holding the lock)
  waits for its turn on the loop;
- garbage-collector pauses: (wall time at the end, generation, seconds),
  the server's own collections (server.heap) included;
- on SIGUSR1, a full collection timed ("probe": wall time, ms, objects the
  collector tracks outside the frozen heap, objects frozen): what a full
  collection costs with the sockets then open.

Usage: BENCH_TRACE_FILE=trace.json python bench/serve_traced.py serve --port 8000
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import time
from typing import Any, Literal

import uvicorn

from server import cli
from server.storage import db as dbmod

LOCK: list[tuple[float, float, float]] = []  # (wall time at release, wait s, hold s)
LAG: list[tuple[float, float]] = []  # (wall time, lag s)
GC: list[tuple[float, int, float]] = []  # (wall time at the end, generation, pause s)
PROBE: list[tuple[float, float, int, int]] = []  # (wall time, full collection ms, tracked, frozen)
_gc_start = [0.0]
_tasks: set[asyncio.Task[None]] = set()


class TimedLock(asyncio.Lock):
    """asyncio.Lock that records how long each holder waited and held it."""

    _acquired_at = 0.0
    _waited = 0.0

    async def acquire(self) -> Literal[True]:
        t0 = time.perf_counter()
        got = await super().acquire()
        self._acquired_at = time.perf_counter()
        self._waited = self._acquired_at - t0
        return got

    def release(self) -> None:
        LOCK.append((time.time(), self._waited, time.perf_counter() - self._acquired_at))
        super().release()


_original_init = dbmod.Database.__init__


def _init(self: dbmod.Database, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    if self._sqlite_write_lock is not None:
        self._sqlite_write_lock = TimedLock()


async def _lag() -> None:
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(0.005)
        LAG.append((time.time(), time.perf_counter() - t0 - 0.005))


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
    else:
        GC.append((time.time(), info["generation"], time.perf_counter() - _gc_start[0]))


def _probe(signum: int, frame: object) -> None:
    tracked = len(gc.get_objects())
    t0 = time.perf_counter()
    gc.collect()
    PROBE.append((time.time(), (time.perf_counter() - t0) * 1000, tracked, gc.get_freeze_count()))


async def _flush(path: str) -> None:
    while True:
        await asyncio.sleep(0.5)
        lock, lag, pauses, probes = LOCK[:], LAG[:], GC[:], PROBE[:]
        del LOCK[: len(lock)], LAG[: len(lag)], GC[: len(pauses)], PROBE[: len(probes)]
        chunk = {"lock": lock, "lag": lag, "gc": pauses, "probe": probes}
        with open(path, "a") as f:  # noqa: ASYNC230 -- a few KB per 0.5 s, like a log line
            f.write(json.dumps(chunk) + "\n")


_original_startup = uvicorn.Server.startup


async def _startup(self: uvicorn.Server, sockets: Any = None) -> None:
    loop = asyncio.get_running_loop()
    _tasks.add(loop.create_task(_lag()))
    _tasks.add(loop.create_task(_flush(os.environ["BENCH_TRACE_FILE"])))
    await _original_startup(self, sockets=sockets)


if __name__ == "__main__":
    dbmod.Database.__init__ = _init  # type: ignore[method-assign]
    uvicorn.Server.startup = _startup  # type: ignore[method-assign]
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _probe)
    cli.main()
