"""The bus: a fast, lossy path from committed events to live listeners.

It is never the source of truth (PROTOCOLS.md P1): a subscriber that misses
messages — a slow reader whose buffer overflowed, a Redis outage — learns it
from `Subscription.lost` and resumes from the events table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class Subscription(Protocol):
    """Messages for one topic, in publish order, until closed."""

    @property
    def lost(self) -> bool:
        """True once any message for this subscriber was dropped."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, topic: str, message: bytes) -> None:
        """Send to every current subscriber of `topic`. May raise if the
        backend is down; callers on the write path catch and log."""
        ...

    async def subscribe(self, topic: str) -> Subscription:
        """Start receiving; messages published after this returns arrive."""
        ...

    async def close(self) -> None: ...


def workspace_topic(workspace_id: int) -> str:
    return f"ws.{workspace_id}"
