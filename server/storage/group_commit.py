"""Group commit for SQLite's single writer (BENCHMARKS.md B2).

SQLite has one writer at a time, and a write transaction costs its fixed
part (checkout, `BEGIN IMMEDIATE`, `COMMIT` with its WAL append, the pool's
reset) however little it writes. So the writes that arrive while one is
running do not each wait for a transaction of their own: they queue, and
one drain task runs them one after another on the one writer connection in
a single transaction, each inside its own SAVEPOINT, and commits once.

- Each unit of work stays all-or-nothing: one that raises is rolled back to
  its savepoint alone, and its caller gets the exception; the others go on.
- A caller is answered only after the COMMIT of its group: no one sees
  success for a change that then rolled back. If the COMMIT fails, every
  caller of the group gets that error.
- After the commit, each caller's `after_commit` runs (publishing its
  events), in the order the group ran them and group after group: so
  listeners see events in log order. That step runs off the writer, which
  meanwhile starts the next group.

A group closes when the queue is empty, or at `max_actions` or after
`max_open_s`, so a burst does not keep one transaction open without end.
The drain task exists only while there is work: the first write to arrive
starts it, and it ends when the queue is empty.

Work runs in the drain task, in a context of its own: a caller's context
variables (a request's idempotency claim) are not visible there, so work
must get what it needs from its closure.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.storage.sqlite_inline import statements_inline

log = logging.getLogger(__name__)

T = TypeVar("T")

Work = Callable[[AsyncConnection], Awaitable[T]]
AfterCommit = Callable[[T], Awaitable[None]]

MAX_ACTIONS = 200
MAX_OPEN_S = 0.02


class GroupLost(Exception):
    """SQLite rolled back the whole transaction on its own (it does so on
    some errors: disk full, I/O error, interrupt): the work that had run
    in it before is undone too, and its callers get this."""


@dataclasses.dataclass(eq=False)
class _Item(Generic[T]):
    work: Work[T]
    after_commit: AfterCommit[T] | None
    answer: asyncio.Future[T]
    outcome: Any = None


class GroupCommitter:
    """Runs units of write work in shared transactions on one connection.

    `lock` is the process's SQLite write lock, which `Database.write()`
    takes too: code that writes directly gets its turn between groups."""

    def __init__(
        self,
        engine: AsyncEngine,
        lock: asyncio.Lock,
        *,
        max_actions: int = MAX_ACTIONS,
        max_open_s: float = MAX_OPEN_S,
    ) -> None:
        self._engine = engine
        self._lock = lock
        self.max_actions = max_actions
        self.max_open_s = max_open_s
        self._queue: collections.deque[_Item[Any]] = collections.deque()
        self._drain_task: asyncio.Task[None] | None = None
        # The announcing of the last committed group: the next one waits for
        # it, so events go out in log order across groups too.
        self._last_announce: asyncio.Task[None] | None = None
        self.commits = 0

    async def run(self, work: Work[T], after_commit: AfterCommit[T] | None = None) -> T:
        """Run `work` in a savepoint of the current or next group; return
        its result once the group committed and `after_commit(result)` ran."""
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(work, after_commit, answer))
        if self._drain_task is None:
            # A fresh context: work must not see the first caller's context
            # variables (they belong to its request only).
            self._drain_task = asyncio.get_running_loop().create_task(
                self._drain(), context=contextvars.Context()
            )
        return await answer

    async def wait_idle(self) -> None:
        """Return once nothing is queued, running or being announced."""
        while self._drain_task is not None or self._last_announce is not None:
            if self._drain_task is not None:
                await asyncio.shield(self._drain_task)
            elif self._last_announce is not None:
                await asyncio.shield(self._last_announce)

    async def _drain(self) -> None:
        try:
            while self._queue:
                async with self._lock:
                    try:
                        conn = await self._engine.connect()
                    except Exception as exc:
                        # No connection for anyone waiting now.
                        _fail(list(self._queue), exc)
                        self._queue.clear()
                        return
                    try:
                        await self._one_group(conn)
                    except Exception:
                        # The group's callers have the error; the queue goes
                        # on in a new group, on a new connection.
                        log.debug("a write group failed", exc_info=True)
                    finally:
                        await conn.close()
        except BaseException as exc:
            _fail(list(self._queue), exc)
            self._queue.clear()
            raise
        finally:
            self._drain_task = None

    async def _one_group(self, conn: AsyncConnection) -> None:
        done: list[_Item[Any]] = []
        started = time.monotonic()
        try:
            await conn.begin()
        except BaseException as exc:
            # Busy past busy_timeout (another process holds the write): the
            # waiting callers have waited that long already.
            _fail(list(self._queue), exc)
            self._queue.clear()
            raise
        driver = (await conn.get_raw_connection()).driver_connection
        try:
            with statements_inline(driver):
                kept = await self._run_queued(conn, done, started)
            if not kept:
                await conn.invalidate()
                return
            await conn.commit()
        except BaseException as exc:
            # The COMMIT failed (or the task is being cancelled): nothing of
            # the group is durable and no caller was answered yet.
            _fail(done, exc)
            # SQLite may still hold the transaction open (a COMMIT refused
            # by a deferred constraint does): the connection is discarded,
            # which rolls back whatever is left, rather than pooled.
            await conn.invalidate()
            raise
        self.commits += 1
        if done:
            previous = self._last_announce
            task = asyncio.get_running_loop().create_task(self._announce(done, previous))
            self._last_announce = task
            task.add_done_callback(self._forget_announce)

    async def _run_queued(
        self, conn: AsyncConnection, done: list[_Item[Any]], started: float
    ) -> bool:
        """Run queued work into the open transaction, each in a savepoint,
        until the group is full; False when SQLite lost the transaction
        (every caller of the group then has its error)."""
        while (
            self._queue
            and len(done) < self.max_actions
            and time.monotonic() - started < self.max_open_s
        ):
            item = self._queue.popleft()
            if item.answer.done():
                continue  # its caller was cancelled before its turn
            try:
                async with conn.begin_nested():
                    item.outcome = await item.work(conn)
            except Exception as exc:
                _fail([item], exc)
                if not await _in_transaction(conn):
                    _fail(done, GroupLost("the write transaction was rolled back by the database"))
                    done.clear()
                    return False
                continue
            done.append(item)
        return True

    def _forget_announce(self, task: asyncio.Task[None]) -> None:
        if self._last_announce is task:
            self._last_announce = None

    async def _announce(self, done: list[_Item[Any]], previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        for item in done:
            try:
                if item.after_commit is not None:
                    await item.after_commit(item.outcome)
            except Exception as exc:
                # Committed, but the caller learns what went wrong after.
                _fail([item], exc)
                continue
            if not item.answer.done():
                item.answer.set_result(item.outcome)


def _fail(items: list[_Item[Any]], exc: BaseException) -> None:
    for item in items:
        if not item.answer.done():
            if isinstance(exc, asyncio.CancelledError):
                item.answer.cancel()
            else:
                item.answer.set_exception(exc)


async def _in_transaction(conn: AsyncConnection) -> bool:
    """Whether SQLite itself still has the transaction open (SQLAlchemy's
    bookkeeping does not know when SQLite rolled back on its own)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    return bool(getattr(driver, "in_transaction", True))
