"""Shared fixtures. Every service is real and started here; nothing is mocked
and nothing is skipped when a service is missing (it fails instead).

Database fixtures are parametrized over both backends, so a test that asks
for `database_url` (or `migrated_url`) runs once on SQLite and once on
PostgreSQL; `-m "not postgres"` leaves out the PostgreSQL half without
starting the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.storage.migrate import upgrade_to_head
from tests.services.postgres import PostgresServer

# --- Services ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole run (started on first use)."""
    with PostgresServer.start() as server:
        yield server


# --- Databases --------------------------------------------------------------


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


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """`database_url`, upgraded to the latest migration."""
    await upgrade_to_head(database_url)
    return database_url


# --- Application fixtures ---------------------------------------------------
# Runtime, clock, HTTP clients and factories (through the do_* actions) go
# below, built on `migrated_url`.
