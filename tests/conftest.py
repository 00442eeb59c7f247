"""Shared fixtures. Every service is real and started here; nothing is mocked
and nothing is skipped when a service is missing (it fails instead).

Database fixtures are parametrized over both backends, so a test that asks
for `database_url` (or `migrated_url`) runs once on SQLite and once on
PostgreSQL; `-m "not postgres"` leaves out the PostgreSQL half without
starting the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from server.runtime import Runtime
from server.storage.migrate import upgrade_to_head
from tests.services.postgres import PostgresServer
from tests.support import Workspace, client, login, make_runtime, seed_workspace

T = TypeVar("T")

# --- Services ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole run (started on first use)."""
    with PostgresServer.start() as server:
        yield server


# --- Databases --------------------------------------------------------------


def run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own thread and loop: session
    fixtures may be first requested from inside a test's running loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file in `tmp_path`, or a fresh
    database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'threadline.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return await server.create_database()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    run_apart(upgrade_to_head(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def migrated_pg_template(pg_server: PostgresServer) -> str:
    """A PostgreSQL database migrated to head once per run; tests get
    `CREATE DATABASE ... TEMPLATE` copies (much faster than migrating)."""

    async def make() -> str:
        url = await pg_server.create_database()
        await upgrade_to_head(url)
        return pg_server.database_name(url)

    return run_apart(make())


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database at the latest migration: a copy of a template that
    was upgraded by Alembic at the start of the run (the migration tests
    themselves upgrade empty databases through `database_url`)."""
    if request.param == "sqlite":
        path = tmp_path / "threadline.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return await server.create_database(template=request.getfixturevalue("migrated_pg_template"))


# --- Application fixtures ---------------------------------------------------
# A runtime on a migrated database (both backends), a seeded workspace and
# logged-in clients, for the action and API suites.


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
