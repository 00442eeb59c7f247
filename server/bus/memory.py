"""In-process bus: the embedded default, one `threadline serve` process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

DEFAULT_BUFFER = 10_000


class MemorySubscription:
    def __init__(self, bus: MemoryBus, topic: str, buffer: int) -> None:
        self._bus = bus
        self._topic = topic
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=buffer)
        self._lost = False
        self._closed = False

    @property
    def lost(self) -> bool:
        return self._lost

    def deliver(self, message: bytes) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            # A reader this far behind resumes from the database instead of
            # holding memory without bound.
            self._lost = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus.unsubscribe(self._topic, self)
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._lost = True


class MemoryBus:
    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self._buffer = buffer
        self._subscribers: defaultdict[str, set[MemorySubscription]] = defaultdict(set)

    async def publish(self, topic: str, message: bytes) -> None:
        for sub in tuple(self._subscribers.get(topic, ())):
            sub.deliver(message)

    async def subscribe(self, topic: str) -> MemorySubscription:
        sub = MemorySubscription(self, topic, self._buffer)
        self._subscribers[topic].add(sub)
        return sub

    def unsubscribe(self, topic: str, sub: MemorySubscription) -> None:
        subs = self._subscribers.get(topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[topic]

    async def close(self) -> None:
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                await sub.close()
