"""Alembic environment: runs migrations over SQLAlchemy's async engine.

The database URL comes from `config.attributes["database_url"]` when the
server runs Alembic itself (server.storage.migrate, used by
`threadline migrate` and the tests), otherwise from the environment, the
same way the server reads it (server.settings.Settings.from_env).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from server.settings import Settings
from server.storage.migrate import context_options

config = context.config

# Only the `alembic` command line has an ini file; when the server runs
# migrations it keeps its own logging setup.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    return Settings.from_env().database_url


def run_migrations_offline() -> None:
    """Emit the migration as SQL (`alembic upgrade head --sql`)."""
    url = sa.make_url(database_url())
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **context_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


# pg_advisory_xact_lock key: "threadline migrate".
MIGRATION_LOCK_KEY = 7_461_776_001


def do_run_migrations(connection: sa.Connection) -> None:
    context.configure(connection=connection, **context_options(connection.dialect.name))
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several `threadline serve` processes starting at once: the
            # first migrates, the others wait here and then find the schema
            # at head. (SQLite serialises DDL on its own.)
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def run_async_migrations() -> None:
    # A plain engine rather than server.storage.db.Database: SQLite batch
    # migrations rebuild tables, which its foreign_keys=ON would get in the way of.
    engine = create_async_engine(database_url(), poolclass=sa.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
