"""RedisBus beyond the contract: one pub/sub connection per bus, several
processes (buses) on one Redis, and outages — Redis stopped, restarted on
the same port, or hung — against a real redis-server of the test's own.

Nothing here measures time: waits are for a condition, under a generous
guard that only a hang reaches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.bus.base import Subscription
from server.bus.redis import DEFAULT_PING_INTERVAL, DEFAULT_TIMEOUT, RedisBus
from tests.services.redis import RedisServer, free_port

GUARD = 10.0
PREFIX = "outage:"


class NewBus(Protocol):
    """Makes a RedisBus with quick reconnects unless told otherwise."""

    def __call__(
        self,
        url: str,
        *,
        timeout: float = ...,
        ping_interval: float = ...,
        reconnect_min: float = ...,
        reconnect_max: float = ...,
        prefix: str = ...,
    ) -> RedisBus: ...


@pytest.fixture
async def new_bus() -> AsyncIterator[NewBus]:
    """RedisBus instances with quick reconnects, closed after the test."""
    made: list[RedisBus] = []

    def new(
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        reconnect_min: float = 0.02,
        reconnect_max: float = 0.2,
        prefix: str = PREFIX,
    ) -> RedisBus:
        bus = RedisBus(
            url,
            timeout=timeout,
            ping_interval=ping_interval,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
            prefix=prefix,
        )
        made.append(bus)
        return bus

    yield new
    for bus in made:
        await bus.close()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def receive(sub: Subscription, count: int = 1) -> list[bytes]:
    iterator = aiter(sub)
    async with asyncio.timeout(GUARD):
        return [await anext(iterator) for _ in range(count)]


async def next_loss(sub: Subscription, seen: int) -> int:
    async with asyncio.timeout(GUARD):
        losses = await sub.wait_lost(seen)
    assert losses > seen
    return losses


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll `condition` until it holds, under the guard."""
    async with asyncio.timeout(GUARD):
        while not await condition():
            await asyncio.sleep(0.01)


async def outcome(awaitable: Awaitable[object]) -> BaseException | None:
    """What `awaitable` raised (None if nothing), failing if it hangs."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=GUARD)
    if not done:
        task.cancel()
        await asyncio.wait({task})
        pytest.fail("hung instead of failing fast")
    return task.exception()


# --- Connections --------------------------------------------------------


async def test_one_pubsub_connection_and_one_redis_subscription_per_topic(
    redis_server: RedisServer, redis_client: Redis, new_bus: NewBus
) -> None:
    bus = new_bus(redis_server.url, prefix="refcount:")
    subs = {topic: [await bus.subscribe(topic) for _ in range(3)] for topic in ("a", "b", "c")}

    async def numsub(topic: str) -> int:
        [(_, count)] = await redis_client.pubsub_numsub(f"refcount:{topic}")
        return int(count)

    assert [await numsub(topic) for topic in "abc"] == [1, 1, 1]
    clients = await redis_client.client_list()
    assert sum(1 for c in clients if int(c["sub"]) > 0) == 1

    # The channel stays while a local subscriber is left, and goes with the last.
    for sub in subs["a"][:2]:
        await sub.close()
    assert await numsub("a") == 1
    await subs["a"][2].close()

    async def a_unsubscribed() -> bool:
        return await numsub("a") == 0

    await eventually(a_unsubscribed)
    assert [await numsub(topic) for topic in "bc"] == [1, 1]


async def test_two_buses_hear_each_other(redis_server: RedisServer, new_bus: NewBus) -> None:
    # Like two server processes sharing one Redis.
    one, two = new_bus(redis_server.url), new_bus(redis_server.url)
    sub_one = await one.subscribe("t")
    sub_two = await two.subscribe("t")

    await one.publish("t", b"from one")
    await two.publish("t", b"from two")

    assert await receive(sub_one, 2) == [b"from one", b"from two"]
    assert await receive(sub_two, 2) == [b"from one", b"from two"]


async def test_url_options_do_not_change_what_subscribers_get(
    redis_server: RedisServer, new_bus: NewBus
) -> None:
    bus = new_bus(f"{redis_server.url}?decode_responses=True&protocol=3")
    sub = await bus.subscribe("t")
    await bus.publish("t", b"\xffraw bytes")

    assert await receive(sub) == [b"\xffraw bytes"]


# --- Outages --------------------------------------------------------------


async def test_publish_fails_fast_while_redis_is_stopped(
    private_redis_server: RedisServer, new_bus: NewBus
) -> None:
    bus = new_bus(private_redis_server.url)
    await bus.publish("t", b"fine")

    private_redis_server.stop()

    error = await outcome(bus.publish("t", b"into the void"))
    assert isinstance(error, RedisConnectionError)


async def test_publish_fails_fast_while_redis_hangs(
    private_redis_server: RedisServer, new_bus: NewBus
) -> None:
    bus = new_bus(private_redis_server.url, timeout=0.2)
    await bus.publish("t", b"fine")

    private_redis_server.freeze()
    try:
        error = await outcome(bus.publish("t", b"into the void"))
    finally:
        private_redis_server.thaw()
    assert isinstance(error, TimeoutError | RedisTimeoutError)


async def test_subscribers_are_lost_when_redis_goes_and_hear_again_when_it_is_back(
    private_redis_server: RedisServer, new_bus: NewBus
) -> None:
    server = private_redis_server
    bus = new_bus(server.url)
    subs = [await bus.subscribe("t") for _ in range(2)]
    other = await bus.subscribe("other")
    await bus.publish("t", b"before")
    for sub in subs:
        assert await receive(sub) == [b"before"]

    server.stop()

    down = [await next_loss(sub, 0) for sub in [*subs, other]]
    assert all(sub.lost for sub in [*subs, other])

    server.start_again()

    # The second loss comes once Redis confirms the re-subscription: from
    # then on, what is published arrives (and a replay covers the outage).
    for sub, seen in zip([*subs, other], down, strict=True):
        await next_loss(sub, seen)
    await bus.publish("t", b"after")
    await bus.publish("other", b"after too")
    for sub in subs:
        assert await receive(sub) == [b"after"]
    assert await receive(other) == [b"after too"]
    assert all(sub.lost for sub in subs)  # it never goes back


async def test_subscribing_while_redis_is_down_starts_lost_and_hears_once_it_is_back(
    private_redis_server: RedisServer, new_bus: NewBus
) -> None:
    server = private_redis_server
    bus = new_bus(server.url)
    early = await bus.subscribe("t")
    server.stop()
    seen = await next_loss(early, 0)

    during = await bus.subscribe("t")
    fresh_topic = await bus.subscribe("new")
    assert during.lost
    assert fresh_topic.lost
    during_seen, fresh_seen = during.losses, fresh_topic.losses

    server.start_again()

    await next_loss(early, seen)
    await next_loss(during, during_seen)
    await next_loss(fresh_topic, fresh_seen)
    await bus.publish("t", b"back")
    await bus.publish("new", b"back too")
    assert await receive(early) == [b"back"]
    assert await receive(during) == [b"back"]
    assert await receive(fresh_topic) == [b"back too"]


async def test_without_redis_subscribe_starts_lost_and_publish_fails_fast(
    new_bus: NewBus,
) -> None:
    port = free_port()
    bus = new_bus(f"redis://127.0.0.1:{port}/0")

    sub = await bus.subscribe("t")
    assert sub.lost
    error = await outcome(bus.publish("t", b"nobody home"))
    assert isinstance(error, RedisConnectionError)


async def test_a_hung_redis_is_detected_by_ping_and_recovered_from(
    private_redis_server: RedisServer, new_bus: NewBus
) -> None:
    server = private_redis_server
    bus = new_bus(server.url, ping_interval=0.05, timeout=0.2)
    sub = await bus.subscribe("t")

    server.freeze()  # the TCP connection stays up; only PING tells
    try:
        seen = await next_loss(sub, 0)
    finally:
        server.thaw()

    await next_loss(sub, seen)
    await bus.publish("t", b"awake")
    assert await receive(sub) == [b"awake"]


async def test_closing_the_bus_while_redis_is_down_ends_everything(
    private_redis_server: RedisServer, new_bus: NewBus
) -> None:
    bus = new_bus(private_redis_server.url)
    sub = await bus.subscribe("t")
    private_redis_server.stop()
    await next_loss(sub, 0)

    assert await outcome(bus.close()) is None

    async with asyncio.timeout(GUARD):
        assert [message async for message in sub] == []


async def test_reconnect_delays_grow_and_are_capped(new_bus: NewBus) -> None:
    bus = new_bus("redis://127.0.0.1:1/0", reconnect_min=0.1, reconnect_max=5.0)
    first = [bus._backoff(0) for _ in range(50)]
    later = [bus._backoff(1000) for _ in range(50)]
    assert all(0.05 <= delay <= 0.1 for delay in first)
    assert all(2.5 <= delay <= 5.0 for delay in later)
