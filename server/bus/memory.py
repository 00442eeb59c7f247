"""In-process bus: the embedded default, one `threadline serve` process.

`MemorySubscription` is also what `RedisBus` hands out: both backends fan
out into the same bounded per-subscriber buffers, so buffering, loss and
closing behave identically.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

DEFAULT_BUFFER = 10_000


class SubscriptionOwner(Protocol):
    """The bus a subscription belongs to; told when it closes."""

    async def unsubscribe(self, topic: str, sub: MemorySubscription) -> None: ...


class MemorySubscription:
    """One subscriber's bounded buffer. The bus calls `deliver` for each
    message and `mark_lost` when messages may have been missed upstream."""

    def __init__(self, owner: SubscriptionOwner, topic: str, buffer: int) -> None:
        self._owner = owner
        self._topic = topic
        self._buffer = buffer
        self._messages: deque[bytes] = deque()
        self._losses = 0
        self._closed = False
        self._readers: set[asyncio.Future[None]] = set()
        self._loss_watchers: set[asyncio.Future[None]] = set()

    @property
    def lost(self) -> bool:
        return self._losses > 0

    @property
    def losses(self) -> int:
        return self._losses

    def deliver(self, message: bytes) -> None:
        if self._closed:
            return
        if len(self._messages) >= self._buffer:
            # A reader this far behind resumes from the database instead of
            # holding memory without bound.
            self.mark_lost()
            return
        self._messages.append(message)
        _wake(self._readers)

    def mark_lost(self) -> None:
        if self._closed:
            return
        self._losses += 1
        _wake(self._loss_watchers)

    async def wait_lost(self, seen: int = 0) -> int:
        while self._losses <= seen and not self._closed:
            await _wait(self._loss_watchers)
        return self._losses

    def __aiter__(self) -> MemorySubscription:
        return self

    async def __anext__(self) -> bytes:
        while not self._messages:
            if self._closed:
                raise StopAsyncIteration
            await _wait(self._readers)
        return self._messages.popleft()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._messages.clear()
        _wake(self._readers)
        _wake(self._loss_watchers)
        await self._owner.unsubscribe(self._topic, self)


async def _wait(waiters: set[asyncio.Future[None]]) -> None:
    future = asyncio.get_running_loop().create_future()
    waiters.add(future)
    try:
        await future
    finally:
        waiters.discard(future)


def _wake(waiters: set[asyncio.Future[None]]) -> None:
    for future in waiters:
        if not future.done():
            future.set_result(None)


class MemoryBus:
    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self._buffer = buffer
        self._subscribers: dict[str, set[MemorySubscription]] = {}
        self._closed = False

    async def publish(self, topic: str, message: bytes) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        for sub in tuple(self._subscribers.get(topic, ())):
            sub.deliver(message)

    async def subscribe(self, topic: str) -> MemorySubscription:
        if self._closed:
            raise RuntimeError("the bus is closed")
        sub = MemorySubscription(self, topic, self._buffer)
        self._subscribers.setdefault(topic, set()).add(sub)
        return sub

    async def unsubscribe(self, topic: str, sub: MemorySubscription) -> None:
        subs = self._subscribers.get(topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[topic]

    async def ping(self) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")

    async def close(self) -> None:
        self._closed = True
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                await sub.close()
