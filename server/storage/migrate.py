"""Bring a database's schema to the latest Alembic revision, and check that
the migrations and `server.storage.tables` describe the same schema.

The migration scripts live in the repository's top-level `alembic/`
directory, found relative to this package. Alembic's env.py drives an async
engine with `asyncio.run`, which cannot be called from inside a running event
loop, so the async entry points run Alembic in a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from server.storage.tables import metadata
from server.storage.types import UTCDateTime

# server/storage/migrate.py -> the repository root, which holds alembic/.
ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"

# Alembic keeps the running migration in module globals (alembic.context,
# alembic.op): one migration at a time per process.
_alembic_lock = threading.Lock()


def context_options(dialect_name: str) -> dict[str, Any]:
    """Options for `MigrationContext.configure`, shared by env.py and
    `check_schema_matches` so that migrating and comparing agree."""
    return {
        "target_metadata": metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table.
        "render_as_batch": dialect_name == "sqlite",
        # Types are compared by the DDL they compile to, so UTCDateTime is
        # compared as its impl, DateTime(timezone=True).
        "compare_type": True,
        "compare_server_default": True,
        "render_item": _render_item,
    }


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our own column types as plain SQLAlchemy types, so that a
    drafted migration does not import the application (a migration must keep
    working after the application's code changes)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def alembic_config(database_url: str, secret_key: str = "") -> Config:
    """The configuration `threadline migrate` and the tests run Alembic with.

    Built in code rather than read from alembic.ini, so that env.py leaves
    the application's logging configuration alone.
    """
    if not (ALEMBIC_DIR / "env.py").is_file():
        raise RuntimeError(
            f"Alembic migrations not found at {ALEMBIC_DIR}: run the server from "
            "a source checkout (pip install -e .) so the alembic/ directory is present"
        )
    cfg = Config()
    # Config values go through ConfigParser interpolation: escape '%'.
    cfg.set_main_option("script_location", str(ALEMBIC_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = database_url
    # For data migrations that encrypt (0010); without it they read the
    # key the way the server does.
    if secret_key:
        cfg.attributes["secret_key"] = secret_key
    return cfg


def upgrade_to_head_sync(database_url: str, secret_key: str = "", revision: str = "head") -> None:
    """Upgrade to the latest revision (or `revision`). Must not be called
    from a thread running an event loop (env.py calls `asyncio.run`)."""
    with _alembic_lock:
        alembic_upgrade(alembic_config(database_url, secret_key), revision)


async def upgrade_to_head(database_url: str, secret_key: str = "", revision: str = "head") -> None:
    """Upgrade to the latest revision (or `revision`), from async code."""
    await asyncio.to_thread(upgrade_to_head_sync, database_url, secret_key, revision)


@functools.cache
def head_revision() -> str:
    """The newest revision among the migration scripts (read once)."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {ALEMBIC_DIR}")
    return head


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at; None before the first migration."""

    def revision(sync_conn: sa.Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    return await conn.run_sync(revision)


async def schema_differences(database_url: str) -> list[Any]:
    """The differences Alembic's autogenerate finds between the database and
    `metadata`: an empty list means they agree."""
    engine = create_async_engine(database_url, poolclass=sa.NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_compare)
    finally:
        await engine.dispose()


def _compare(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts=context_options(connection.dialect.name))
    return list(compare_metadata(context, metadata))


def check_schema_matches(database_url: str) -> list[Any]:
    """`schema_differences` for synchronous callers. Runs on its own event
    loop in a worker thread, so it works whether or not the calling thread
    already runs one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_schema_differences_in_new_loop, database_url).result()


def _schema_differences_in_new_loop(database_url: str) -> list[Any]:
    return asyncio.run(schema_differences(database_url))
