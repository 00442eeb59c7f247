"""`Flag`: asyncio.Event's set / clear / is_set / wait, for objects there
are thousands of per process (one set per live socket).

An asyncio.Event allocates a deque for its waiters up front (~760 bytes
with its first block) and carries a __dict__; most of a socket's events
are never waited on, or by one waiter at a time. A Flag has no waiter
storage until something waits, then a one-item list, and no __dict__:
fewer and smaller objects per socket, for the memory and for the
garbage collector, which walks every one of them (bench/RESULTS.md, B3).
"""

from __future__ import annotations

import asyncio
from typing import Literal


class Flag:
    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters = self._waiters
        if waiters is not None:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> Literal[True]:
        """Return once the flag is set (at once if it is)."""
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            waiters = self._waiters
            if waiters is not None:
                waiters.remove(waiter)
                if not waiters:
                    self._waiters = None
