"""The bus: a fast, lossy path from committed events to live listeners.

It is never the source of truth (PROTOCOLS.md P1): a subscriber that misses
messages — a slow reader whose buffer overflowed, a Redis outage — learns it
from `Subscription.losses` and resumes from the events table.

Two backends implement these protocols, `MemoryBus` (one process) and
`RedisBus` (several processes), and one contract suite (tests/bus) runs
against both, so they behave the same. `server.bus.factory.make_bus` picks
one from the settings.

How a listener uses a subscription::

    sub = await bus.subscribe(topic)      # subscribe first,
    seen = 0
    ...load state from the database...    # then read, then go live:
    # one task                            # another task (or race the two)
    async for message in sub:             while True:
        handle(message)                       seen = await sub.wait_lost(seen)
                                              replay from the events table

Replaying overlaps what arrives live, so handlers dedupe by event id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class Subscription(Protocol):
    """Messages for one topic, in publish order, until closed.

    Delivery is best effort. A subscriber keeps receiving after a loss; what
    it missed is in the events table. It may also get a message published
    shortly before `Bus.subscribe` returned, another reason to dedupe.
    """

    @property
    def lost(self) -> bool:
        """True once any message for this subscriber may have been dropped
        (`losses > 0`). It never goes back to False."""
        ...

    @property
    def losses(self) -> int:
        """A counter that grows whenever messages for this subscriber may
        have been dropped. Compare it with the value last acted on: a change
        means "replay from the events table now"; the amount means nothing.

        It grows when this subscriber's buffer is full and a message is
        dropped, when the backend's connection drops, and once more when the
        connection is back and messages flow again, so a replay made after
        that covers the whole outage. A subscription made while the backend
        is unreachable starts with `losses > 0`."""
        ...

    async def wait_lost(self, seen: int = 0) -> int:
        """Wait until `losses` exceeds `seen` and return it (at once if it
        already does). Also returns once the subscription is closed, then
        possibly with `losses == seen`."""
        ...

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The messages. The iteration ends when the subscription is closed."""
        ...

    async def close(self) -> None:
        """Stop receiving: messages not yet read are discarded and an
        `async for` over this subscription ends. Closing twice is a no-op."""
        ...


class Bus(Protocol):
    async def publish(self, topic: str, message: bytes) -> None:
        """Send to every current subscriber of `topic`. May raise if the
        backend is down (quickly: a dead Redis costs a write about a
        second); callers on the write path catch and log."""
        ...

    async def subscribe(self, topic: str) -> Subscription:
        """Start receiving; messages published after this returns arrive
        (unless `losses` says otherwise). Never fails because the backend is
        down: the subscription then starts lost and receives once it is back."""
        ...

    async def ping(self) -> None:
        """Return once the backend answered; raise (within about the
        backend's timeout) if it is unreachable. For readiness reports: a
        down bus degrades live delivery, it never fails a write."""
        ...

    async def close(self) -> None:
        """Close every subscription (their iterations end) and release the
        backend's connections. Idempotent; `publish` and `subscribe` raise
        `RuntimeError` afterwards."""
        ...


def workspace_topic(workspace_id: int) -> str:
    return f"ws.{workspace_id}"


# A nudge to the schedulers of every process: a write just added work that
# may be due before their next look (server.workers.wakeup). The message
# carries nothing; a lost one only costs the poll interval.
SCHEDULER_TOPIC = "scheduler.due"


def failure_text(exc: BaseException) -> str:
    """A failed publish, for a one-line log: during a Redis outage every
    write and every keystroke's typing signal fails the same expected way,
    and listeners catch up from the log, so a traceback says nothing."""
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
