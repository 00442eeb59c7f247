"""Fixtures for API tests: a runtime on a migrated database (SQLite and
PostgreSQL, via `migrated_url`), a seeded workspace, logged-in clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.runtime import Runtime
from tests.support import Workspace, client, login, make_runtime, seed_workspace


@pytest.fixture
async def runtime(migrated_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = make_runtime(migrated_url, tmp_path / "data")
    yield rt
    await rt.close()


@pytest.fixture
async def ws(runtime: Runtime) -> Workspace:
    return await seed_workspace(runtime)


@pytest.fixture
async def admin_client(runtime: Runtime, ws: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime) as c:
        await login(c, ws.admin_email)
        yield c


@pytest.fixture
async def agent_client(runtime: Runtime, ws: Workspace) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime) as c:
        await login(c, ws.agent_email)
        yield c


@pytest.fixture
async def anon_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime) as c:
        yield c
