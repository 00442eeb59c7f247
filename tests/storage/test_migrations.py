"""Alembic migrations build the schema of server.storage.tables, on SQLite
and PostgreSQL, and SQLite connections are configured per PROTOCOLS.md P1."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.command import downgrade
from alembic.script import ScriptDirectory

from server.queries.inbox_secrets import inbox_secrets_of
from server.storage import tables as t
from server.storage.db import Database
from server.storage.migrate import (
    alembic_config,
    check_schema_matches,
    upgrade_to_head,
)
from server.storage.secrets import SecretBox
from server.storage.tables import metadata
from tests.services.postgres import PostgresServer


async def table_names(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.read() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await db.dispose()


async def current_revision(url: str) -> str:
    db = Database(url)
    try:
        async with db.read() as conn:
            result = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            return str(result.scalar_one())
    finally:
        await db.dispose()


async def execute(url: str, sql: str) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            await conn.execute(sa.text(sql))
    finally:
        await db.dispose()


async def test_upgrade_of_an_empty_database_creates_every_table(database_url: str) -> None:
    assert await table_names(database_url) == set()

    await upgrade_to_head(database_url)

    assert await table_names(database_url) == {*metadata.tables, "alembic_version"}
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert await current_revision(database_url) == head


async def test_upgrade_at_head_is_a_no_op(migrated_url: str) -> None:
    await upgrade_to_head(migrated_url)

    assert check_schema_matches(migrated_url) == []


async def test_migrations_and_tables_agree(migrated_url: str) -> None:
    assert check_schema_matches(migrated_url) == []


def describe(diffs: list[Any]) -> list[tuple[str, ...]]:
    """Alembic's diff entries, reduced to what tells them apart:
    ('add_index', index), ('remove_column', table, column),
    ('modify_type', table, column). Column changes come grouped in lists."""
    described: list[tuple[str, ...]] = []
    for diff in diffs:
        for change in diff if isinstance(diff, list) else [diff]:
            kind = change[0]
            if kind in {"add_index", "remove_index"}:
                described.append((kind, change[1].name))
            elif kind in {"add_column", "remove_column"}:
                described.append((kind, change[2], change[3].name))
            elif kind.startswith("modify_"):
                described.append((kind, change[2], change[3]))
            else:
                described.append((kind,))
    return described


@pytest.mark.parametrize(
    ("alteration", "expected"),
    [
        pytest.param(
            "DROP INDEX ix_messages_contact_created",
            ("add_index", "ix_messages_contact_created"),
            id="dropped-index",
        ),
        pytest.param(
            "ALTER TABLE contacts ADD COLUMN nickname VARCHAR(50)",
            ("remove_column", "contacts", "nickname"),
            id="extra-column",
        ),
    ],
)
async def test_schema_comparison_reports_a_drifted_database(
    migrated_url: str, alteration: str, expected: tuple[str, ...]
) -> None:
    await execute(migrated_url, alteration)

    diffs = check_schema_matches(migrated_url)

    assert describe(diffs) == [expected]


@pytest.mark.postgres
async def test_schema_comparison_checks_column_types(pg_server: PostgresServer) -> None:
    # UTCDateTime is compared as the type it creates, TIMESTAMP WITH TIME ZONE.
    url = await pg_server.create_database()
    await upgrade_to_head(url)
    await execute(url, "ALTER TABLE contacts ALTER COLUMN created_at TYPE TIMESTAMP")

    assert describe(check_schema_matches(url)) == [("modify_type", "contacts", "created_at")]


async def test_downgrade_to_base_drops_every_table(migrated_url: str) -> None:
    await asyncio.to_thread(downgrade, alembic_config(migrated_url), "base")

    assert await table_names(migrated_url) == {"alembic_version"}


@pytest.mark.parametrize("kind", ["read", "write"])
async def test_sqlite_connections_follow_p1(tmp_path: Path, kind: str) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'threadline.db'}")
    try:
        async with db.read() if kind == "read" else db.write() as conn:

            async def pragma(name: str) -> Any:
                return (await conn.execute(sa.text(f"PRAGMA {name}"))).scalar_one()

            assert await pragma("journal_mode") == "wal"
            assert await pragma("foreign_keys") == 1
            assert await pragma("busy_timeout") >= 5000
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_concurrent_migrations_wait_for_each_other(pg_server: PostgresServer) -> None:
    """Two processes starting at once on an empty database: one migrates,
    the other waits for it and finds the schema at head."""
    url = await pg_server.create_database()
    env = {**os.environ, "THREADLINE_DATABASE_URL": url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "server", "migrate"],
            env={**env, "THREADLINE_DATA_DIR": str(Path(tempfile.mkdtemp()))},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert check_schema_matches(url) == []


async def test_0010_moves_chat_secrets_into_the_encrypted_store(database_url: str) -> None:
    # A Slack inbox written before secrets were split off: its bot token in
    # the settings, in clear, next to an existing encrypted secret.
    key = "migration test key"
    box = SecretBox(key)
    await upgrade_to_head(database_url, key, revision="0009")
    db = Database(database_url)
    try:
        async with db.write() as conn:
            ws = (
                await conn.execute(
                    t.workspaces.insert()
                    .values(name="Acme", settings={}, created_at=datetime.now(UTC))
                    .returning(t.workspaces.c.id)
                )
            ).scalar_one()
            for kind, settings, sealed in (
                ("slack", {"team_id": "T1", "bot_token": "xoxb-1", "signing_secret": "s"}, None),
                ("social", {"access_token": "tok"}, box.encrypt(json.dumps({"app_secret": "a"}))),
                ("widget", {"greeting": "Hi"}, box.encrypt("hmac-key")),
            ):
                await conn.execute(
                    t.inboxes.insert().values(
                        workspace_id=ws,
                        name=kind,
                        kind=kind,
                        public_token=f"pt-{kind}",
                        settings=settings,
                        secret_encrypted=sealed,
                        created_at=datetime.now(UTC),
                    )
                )
    finally:
        await db.dispose()

    await upgrade_to_head(database_url, key)

    db = Database(database_url)
    try:
        async with db.read() as conn:
            rows = {r.kind: r for r in await conn.execute(sa.select(t.inboxes))}
    finally:
        await db.dispose()
    assert rows["slack"].settings == {"team_id": "T1"}
    assert inbox_secrets_of(box, rows["slack"].secret_encrypted) == {
        "bot_token": "xoxb-1",
        "signing_secret": "s",
    }
    assert rows["social"].settings == {}
    assert inbox_secrets_of(box, rows["social"].secret_encrypted) == {
        "app_secret": "a",
        "access_token": "tok",
    }
    assert rows["widget"].settings == {"greeting": "Hi"}
    assert box.decrypt(rows["widget"].secret_encrypted) == "hmac-key"
