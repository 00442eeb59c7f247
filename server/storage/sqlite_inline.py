"""Run a write group's SQLite statements on the event loop's thread.

aiosqlite runs every call (execute, fetch, cursor close) on a thread of
its own and hands the result back through the loop: four or so thread hops
per statement, each a GIL hand-over that costs ~0.1 ms on a busy core,
which made those hops, not SQLite, the larger part of a message's write
(bench/RESULTS.md, "B2 with group commit"). Inside a write transaction that
already holds SQLite's write lock a statement never waits for another
connection (WAL: readers don't block the writer), so it only costs its own
work, usually microseconds: calling it directly is cheaper than the hop.

Only the statements between `BEGIN IMMEDIATE` and `COMMIT` run inline:
BEGIN may wait up to busy_timeout for another process's writer, and COMMIT
may checkpoint the WAL (disk I/O); both stay on aiosqlite's thread. A
statement that turns out slow (a bulk delete) would hold up the loop, so
after one such statement the rest of the group goes back to the thread.

This relies on aiosqlite routing every call through `Connection._execute`
(aiosqlite 0.22) and on SQLAlchemy opening file databases with
`check_same_thread=False`; tests/storage/test_group_commit.py checks it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

# A statement this slow is not worth saving a thread hop for: the rest of
# its group runs on the thread again, the loop stays responsive.
SLOW_S = 0.005


@contextlib.contextmanager
def statements_inline(driver: Any) -> Iterator[None]:
    """While open, `driver` (an aiosqlite Connection) runs its calls on
    the calling thread; anything else is left as it is."""
    if not callable(getattr(type(driver), "_execute", None)):
        yield
        return

    async def run_here(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if time.perf_counter() - started > SLOW_S:
                log.debug("a slow statement: the rest of this write group runs on the thread")
                _restore(driver)

    driver._execute = run_here
    try:
        yield
    finally:
        _restore(driver)


def _restore(driver: Any) -> None:
    # The instance attribute shadows the class's method; removing it
    # brings the thread back.
    driver.__dict__.pop("_execute", None)
