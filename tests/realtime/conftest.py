"""Fixtures for realtime tests: a runtime on a migrated database (SQLite and
PostgreSQL, via `migrated_url`) with a bus that can fail, a seeded
workspace, real uvicorn servers and API tokens.

Every server started through `servers` is stopped at teardown (its clients
closed first), and any ERROR the server logged fails the test unless the
test declared it expected (`errors.expect`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from server.realtime.hub import Limits
from server.runtime import Runtime
from server.storage import secrets
from tests.realtime.live import (
    ErrorRecords,
    FlakyBus,
    LiveServer,
    make_live_runtime,
    new_token,
)
from tests.support import Workspace, seed_workspace


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Password hashing strength is not under test here, and the default
    argon2 cost (about 0.1 s a hash, blocking the loop the server runs in)
    would dominate the run."""
    monkeypatch.setattr(secrets, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))


@pytest.fixture
def errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    unexpected = handler.unexpected()
    assert not unexpected, f"the server logged errors: {unexpected}"


@pytest.fixture
async def runtime(
    migrated_url: str, tmp_path: Path, errors: ErrorRecords
) -> AsyncIterator[Runtime]:
    rt = make_live_runtime(migrated_url, tmp_path / "data")
    yield rt
    await rt.close()


@pytest.fixture
def bus(runtime: Runtime) -> FlakyBus:
    assert isinstance(runtime.bus, FlakyBus)
    return runtime.bus


@pytest.fixture
async def ws(runtime: Runtime) -> Workspace:
    return await seed_workspace(runtime)


class Servers:
    """Starts LiveServers; the fixture stops whatever is still running."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started: list[LiveServer] = []

    async def start(
        self, runtime: Runtime | None = None, limits: Limits | None = None, **config: Any
    ) -> LiveServer:
        server = LiveServer(runtime or self.runtime, limits, **config)
        self.started.append(server)
        return await server.start()


@pytest.fixture
async def servers(runtime: Runtime) -> AsyncIterator[Servers]:
    made = Servers(runtime)
    yield made
    for server in made.started:
        await server.stop()


@pytest.fixture
async def live(servers: Servers) -> LiveServer:
    """A server with the default limits."""
    return await servers.start()


@pytest.fixture
async def admin_token(runtime: Runtime, ws: Workspace) -> str:
    return (await new_token(runtime, ws.admin))[1]


@pytest.fixture
async def agent_token(runtime: Runtime, ws: Workspace) -> str:
    return (await new_token(runtime, ws.agent))[1]
