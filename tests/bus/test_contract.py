"""The bus contract, run against every backend (MemoryBus, and RedisBus on a
real redis-server): what `server/bus/base.py` promises, checked the same way
for both.

Deliveries on Redis are asynchronous, so tests never assert that something
did *not* arrive by waiting: they publish a marker after it, and check the
marker comes first (one publisher's messages arrive in publish order).
"""

from __future__ import annotations

import asyncio

import pytest

from server.bus.base import Bus, Subscription
from server.bus.factory import make_bus
from server.bus.memory import MemoryBus
from server.bus.redis import RedisBus
from tests.bus.conftest import BusFactory
from tests.services.redis import RedisServer

# Generous: only a hang ever gets near it.
GUARD = 10.0


async def receive(sub: Subscription, count: int = 1) -> list[bytes]:
    """The next `count` messages of `sub`, failing rather than hanging."""
    iterator = aiter(sub)
    async with asyncio.timeout(GUARD):
        return [await anext(iterator) for _ in range(count)]


async def rest(sub: Subscription) -> list[bytes]:
    """Everything the iteration still yields, until it ends."""
    async with asyncio.timeout(GUARD):
        return [message async for message in sub]


def numbered(count: int) -> list[bytes]:
    return [f"m{i}".encode() for i in range(count)]


async def test_subscriber_gets_messages_published_after_subscribe_in_order(bus: Bus) -> None:
    await bus.publish("t", b"before anyone listened")
    sub = await bus.subscribe("t")
    for message in numbered(20):
        await bus.publish("t", message)

    assert await receive(sub, 20) == numbered(20)
    assert not sub.lost
    assert sub.losses == 0


async def test_topics_are_isolated(bus: Bus) -> None:
    sub_a = await bus.subscribe("a")
    sub_b = await bus.subscribe("b")

    await bus.publish("a", b"a1")
    await bus.publish("b", b"b1")
    await bus.publish("a", b"a2")
    await bus.publish("b", b"b2")

    assert await receive(sub_a, 2) == [b"a1", b"a2"]
    assert await receive(sub_b, 2) == [b"b1", b"b2"]


async def test_every_subscriber_of_a_topic_gets_every_message(bus: Bus) -> None:
    subs = [await bus.subscribe("t") for _ in range(3)]
    for message in numbered(5):
        await bus.publish("t", message)

    for sub in subs:
        assert await receive(sub, 5) == numbered(5)


async def test_concurrent_first_subscribers_all_receive(bus: Bus) -> None:
    subs = await asyncio.gather(*(bus.subscribe("t") for _ in range(5)))
    await bus.publish("t", b"hello")

    for sub in subs:
        assert await receive(sub) == [b"hello"]


async def test_closed_subscription_gets_nothing_and_its_iteration_ends(bus: Bus) -> None:
    sub = await bus.subscribe("t")
    witness = await bus.subscribe("t")
    await bus.publish("t", b"unread")
    assert await receive(witness) == [b"unread"]  # so `sub` has it buffered too

    await sub.close()
    await bus.publish("t", b"after close")
    assert await receive(witness) == [b"after close"]

    assert await rest(sub) == []  # the unread message was discarded
    await sub.close()  # a second close is harmless


async def test_close_ends_an_iteration_that_is_waiting(bus: Bus) -> None:
    sub = await bus.subscribe("t")
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def read() -> None:
        async for message in sub:
            got.append(message)
            arrived.set()

    reading = asyncio.create_task(read())
    await bus.publish("t", b"one")
    async with asyncio.timeout(GUARD):
        await arrived.wait()  # `read` is now waiting for the next message

    await sub.close()

    async with asyncio.timeout(GUARD):
        await reading
    assert got == [b"one"]


async def test_slow_subscriber_overflows_and_is_lost_while_a_fast_one_keeps_all(
    bus_factory: BusFactory,
) -> None:
    bus = await bus_factory(buffer=4)
    slow = await bus.subscribe("t")
    fast = await bus.subscribe("t")

    for message in numbered(12):
        await bus.publish("t", message)
        assert await receive(fast) == [message]

    assert slow.lost
    assert slow.losses > 0
    assert not fast.lost
    assert fast.losses == 0
    async with asyncio.timeout(GUARD):
        assert await slow.wait_lost(0) == slow.losses
    # The slow one kept what fitted, dropped the rest, and receives again
    # once it has room.
    assert await receive(slow, 4) == numbered(4)
    await bus.publish("t", b"later")
    assert await receive(slow) == [b"later"]
    assert await receive(fast) == [b"later"]


async def test_wait_lost_wakes_a_waiting_owner_on_overflow(bus_factory: BusFactory) -> None:
    bus = await bus_factory(buffer=2)
    slow = await bus.subscribe("t")
    watching = asyncio.create_task(slow.wait_lost(0))
    for message in numbered(3):
        await bus.publish("t", message)

    async with asyncio.timeout(GUARD):
        assert await watching >= 1
    assert slow.lost


async def test_wait_lost_returns_when_the_subscription_closes(bus: Bus) -> None:
    sub = await bus.subscribe("t")
    watching = asyncio.create_task(sub.wait_lost(0))
    await sub.close()

    async with asyncio.timeout(GUARD):
        assert await watching == 0


async def test_unsubscribing_everyone_then_subscribing_again_works(bus: Bus) -> None:
    first = await bus.subscribe("t")
    second = await bus.subscribe("t")
    await bus.publish("t", b"one")
    assert await receive(first) == [b"one"]
    await first.close()
    await second.close()

    again = await bus.subscribe("t")
    await bus.publish("t", b"two")

    assert await receive(again) == [b"two"]


async def test_closing_the_bus_ends_every_subscription(bus: Bus) -> None:
    subs = [await bus.subscribe(topic) for topic in ("a", "a", "b")]
    readings = [asyncio.create_task(rest(sub)) for sub in subs]

    await bus.close()

    for reading in readings:
        assert await reading == []
    with pytest.raises(RuntimeError):
        await bus.publish("a", b"late")
    with pytest.raises(RuntimeError):
        await bus.subscribe("a")
    with pytest.raises(RuntimeError):
        await bus.ping()
    await bus.close()  # a second close is harmless


async def test_ping_answers_while_the_backend_is_up(bus: Bus) -> None:
    await bus.ping()


async def test_make_bus_picks_the_backend_from_the_url(redis_server: RedisServer) -> None:
    assert isinstance(make_bus(""), MemoryBus)
    assert isinstance(make_bus("  "), MemoryBus)

    bus = make_bus(redis_server.url)
    try:
        assert isinstance(bus, RedisBus)
        sub = await bus.subscribe("t")
        await bus.publish("t", b"hello")
        assert await receive(sub) == [b"hello"]
    finally:
        await bus.close()
