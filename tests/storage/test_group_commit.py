"""Group commit on SQLite (server.storage.group_commit): concurrent units of
work share one transaction, each stays all-or-nothing in its savepoint, and
no caller is answered before the COMMIT that makes its work durable.

These run on a real SQLite file; the actions' side is in
tests/actions/test_group_commit_actions.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.db import Database
from server.storage.group_commit import GroupCommitter


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'group.db'}")
    async with database.write() as conn:
        await conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        await conn.exec_driver_sql(
            "CREATE TABLE child (id INTEGER PRIMARY KEY,"
            " parent_id INTEGER NOT NULL REFERENCES parent (id), label TEXT NOT NULL UNIQUE)"
        )
        await conn.exec_driver_sql("INSERT INTO parent (id) VALUES (1)")
    yield database
    await database.dispose()


def committer(db: Database) -> GroupCommitter:
    assert db.group_commit is not None
    return db.group_commit


def count_write_commits(db: Database) -> list[int]:
    """A one-element counter of COMMITs on write connections (reads commit
    their own BEGIN too; those are not counted)."""
    counter = [0]

    @sa.event.listens_for(db.engine.sync_engine, "commit")
    def on_commit(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("threadline_write"):
            counter[0] += 1

    return counter


def insert(label: str, parent_id: int = 1) -> Callable[[AsyncConnection], Awaitable[str]]:
    async def work(conn: AsyncConnection) -> str:
        await conn.execute(
            sa.text("INSERT INTO child (parent_id, label) VALUES (:p, :l)"),
            {"p": parent_id, "l": label},
        )
        return label

    return work


async def labels(db: Database) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(sa.text("SELECT label FROM child ORDER BY id"))
        return [row.label for row in rows]


async def test_concurrent_work_commits_once(db: Database) -> None:
    commits = count_write_commits(db)
    group = committer(db)
    group.max_open_s = 60.0

    results = await asyncio.gather(*(group.run(insert(f"row {i}")) for i in range(20)))

    assert results == [f"row {i}" for i in range(20)]
    assert commits[0] == 1
    assert await labels(db) == [f"row {i}" for i in range(20)]


async def test_a_group_closes_at_its_cap(db: Database) -> None:
    commits = count_write_commits(db)
    group = committer(db)
    group.max_open_s, group.max_actions = 60.0, 4

    await asyncio.gather(*(group.run(insert(f"row {i}")) for i in range(10)))

    assert commits[0] == 3
    assert len(await labels(db)) == 10


async def test_a_failing_unit_rolls_back_alone(db: Database) -> None:
    commits = count_write_commits(db)
    group = committer(db)
    group.max_open_s = 60.0

    async def half_then_fail(conn: AsyncConnection) -> str:
        await insert("doomed")(conn)
        raise RuntimeError("refused")

    outcomes = await asyncio.gather(
        group.run(insert("a")),
        group.run(half_then_fail),
        group.run(insert("a")),  # a unique violation: rolls back alone as well
        group.run(insert("b")),
        return_exceptions=True,
    )

    assert outcomes[0] == "a" and outcomes[3] == "b"
    assert isinstance(outcomes[1], RuntimeError)
    assert isinstance(outcomes[2], IntegrityError)
    assert commits[0] == 1
    assert await labels(db) == ["a", "b"]


async def test_no_caller_is_answered_before_a_commit_that_fails(db: Database) -> None:
    group = committer(db)
    group.max_open_s = 60.0
    answered: list[str] = []

    async def dangling(conn: AsyncConnection) -> str:
        # Checked at COMMIT, not now: the group's COMMIT fails.
        await conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        return await insert("dangling", parent_id=99)(conn)

    async def answer(label: str) -> None:
        answered.append(label)

    outcomes = await asyncio.gather(
        group.run(insert("a"), answer),
        group.run(dangling, answer),
        group.run(insert("b"), answer),
        return_exceptions=True,
    )

    assert all(isinstance(o, IntegrityError) for o in outcomes), outcomes
    assert answered == []
    assert await labels(db) == []
    # The writer goes on with the next group.
    assert await group.run(insert("c")) == "c"
    assert await labels(db) == ["c"]


async def test_after_commit_runs_after_the_commit_in_run_order(db: Database) -> None:
    group = committer(db)
    group.max_actions = 3  # several groups: the order holds across them
    seen: list[tuple[str, list[str]]] = []

    async def after(label: str) -> None:
        # What a fresh reader sees now: the work is committed already.
        seen.append((label, await labels(db)))
        await asyncio.sleep(0)  # let a later group's announcing try to overtake

    names = [f"row {i}" for i in range(10)]
    await asyncio.gather(*(group.run(insert(name), after) for name in names))

    assert [label for label, _ in seen] == names
    for label, visible in seen:
        assert label in visible


async def test_direct_writes_take_turns_with_groups(db: Database) -> None:
    group = committer(db)

    async def direct(label: str) -> None:
        async with db.write() as conn:
            await insert(label)(conn)

    await asyncio.gather(
        *(group.run(insert(f"g{i}")) for i in range(5)),
        *(direct(f"d{i}") for i in range(5)),
        *(group.run(insert(f"g{i}")) for i in range(5, 10)),
    )

    assert sorted(await labels(db)) == sorted(
        [f"g{i}" for i in range(10)] + [f"d{i}" for i in range(5)]
    )


async def test_a_cancelled_caller_does_not_stall_the_group(db: Database) -> None:
    group = committer(db)
    release = asyncio.Event()

    async def slow(conn: AsyncConnection) -> str:
        await release.wait()
        return await insert("slow")(conn)

    first = asyncio.create_task(group.run(slow))
    waiting = asyncio.create_task(group.run(insert("never")))
    behind = asyncio.create_task(group.run(insert("behind")))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()

    assert await first == "slow"
    assert await behind == "behind"
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await labels(db) == ["slow", "behind"]


async def sqlite_thread(conn: AsyncConnection) -> int:
    """The id of the thread SQLite runs this connection's statements on."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.create_function("thread_id", 0, threading.get_ident)
    value = await conn.scalar(sa.text("SELECT thread_id()"))
    assert isinstance(value, int)
    return value


async def test_a_groups_statements_run_on_the_loop_thread_until_one_is_slow(
    db: Database,
) -> None:
    group = committer(db)

    async def threads(conn: AsyncConnection) -> tuple[int, int]:
        before = await sqlite_thread(conn)
        # Well past sqlite_inline.SLOW_S: the rest goes back to the thread.
        await conn.scalar(
            sa.text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000)"
                " SELECT count(*) FROM n"
            )
        )
        return before, await sqlite_thread(conn)

    before, after = await group.run(threads)

    assert before == threading.get_ident()
    assert after != threading.get_ident()
    # Outside a group (a direct write), statements stay on aiosqlite's thread.
    async with db.write() as conn:
        assert await sqlite_thread(conn) != threading.get_ident()
