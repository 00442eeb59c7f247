"""Bus fixtures. `bus` and `bus_factory` are parametrized over both backends,
so every contract test runs once on `MemoryBus` and once on `RedisBus`
against a real redis-server.

The shared `redis_server` lives for the whole run; each Redis-backed bus
gets channels of its own (a per-test prefix), so tests never hear each
other. Tests that stop or freeze Redis use `private_redis_server`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Protocol

import pytest

from server.bus.base import Bus
from server.bus.memory import DEFAULT_BUFFER, MemoryBus
from server.bus.redis import RedisBus
from tests.services.redis import RedisServer

_prefixes = itertools.count(1)


class BusFactory(Protocol):
    """Builds a bus of the test's backend; the fixture closes it."""

    def __call__(self, *, buffer: int = DEFAULT_BUFFER) -> Awaitable[Bus]: ...


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the whole run (started on first use)."""
    with RedisServer.start() as server:
        yield server


@pytest.fixture
def private_redis_server() -> Iterator[RedisServer]:
    """A Redis server of the test's own, free to stop, restart or freeze."""
    with RedisServer.start() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def bus_factory(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    made: list[Bus] = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        prefix = f"test{next(_prefixes)}:"

        def build(buffer: int) -> Bus:
            return RedisBus(url, buffer=buffer, prefix=prefix)

    else:

        def build(buffer: int) -> Bus:
            return MemoryBus(buffer=buffer)

    async def make(*, buffer: int = DEFAULT_BUFFER) -> Bus:
        bus = build(buffer)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()


@pytest.fixture
async def bus(bus_factory: BusFactory) -> Bus:
    """A fresh bus of each backend, closed after the test."""
    return await bus_factory()
