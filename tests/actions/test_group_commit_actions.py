"""`perform` on SQLite under concurrency goes through group commit
(server.storage.group_commit): concurrent actions share one transaction,
each is still all-or-nothing, events are published only after the commit
and in log order, idempotency and IntegrityError retries still hold."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.actions.context import ActionContext, perform
from server.actions.messages import MessageResult, do_send_message
from server.bus.memory import MemoryBus
from server.domain.errors import InvalidInput
from server.runtime import Runtime
from server.storage import tables as t
from server.storage.db import Database
from tests.support import Workspace, fetch_all, make_runtime, seed_workspace


class CheckingBus(MemoryBus):
    """Records every published event with whether a fresh reader could see
    its row at that moment (it can only once the event is committed)."""

    def __init__(self) -> None:
        super().__init__()
        self.db: Database | None = None
        self.published: list[tuple[int, str, int | None, bool]] = []

    async def publish(self, topic: str, message: bytes) -> None:
        event = json.loads(message)
        if self.db is not None and event["type"] == "message.created":
            async with self.db.read() as conn:
                visible = await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(t.events)
                    .where(t.events.c.id == event["event_id"])
                )
            self.published.append(
                (event["event_id"], event["type"], event["data"].get("seq"), visible == 1)
            )
        await super().publish(topic, message)


@pytest.fixture
async def sqlite_runtime(
    migrated_sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[tuple[Runtime, CheckingBus]]:
    path = tmp_path / "threadline.db"
    shutil.copyfile(migrated_sqlite_template, path)
    rt = make_runtime(f"sqlite+aiosqlite:///{path}", tmp_path / "data")
    bus = CheckingBus()
    await rt.bus.close()
    rt = dataclasses.replace(rt, bus=bus)
    yield rt, bus
    await rt.close()


@pytest.fixture
async def rt(sqlite_runtime: tuple[Runtime, CheckingBus]) -> Runtime:
    return sqlite_runtime[0]


@pytest.fixture
async def sws(rt: Runtime) -> Workspace:
    return await seed_workspace(rt)


def write_commits(rt: Runtime) -> list[int]:
    counter = [0]

    @sa.event.listens_for(rt.db.engine.sync_engine, "commit")
    def on_commit(conn: sa.Connection) -> None:
        if conn.get_execution_options().get("threadline_write"):
            counter[0] += 1

    return counter


def one_group(rt: Runtime) -> None:
    assert rt.db.group_commit is not None
    rt.db.group_commit.max_open_s = 60.0


async def texts(rt: Runtime, cid: int) -> list[tuple[int, str]]:
    rows = await fetch_all(
        rt,
        sa.select(t.messages.c.seq, t.messages.c.text)
        .where(t.messages.c.conversation_id == cid)
        .order_by(t.messages.c.seq),
    )
    return [(row.seq, row.text) for row in rows]


def send(
    rt: Runtime, ws: Workspace, text: str, idempotency_key: str | None = None
) -> asyncio.Future[MessageResult]:
    return asyncio.ensure_future(
        perform(
            rt,
            ws.agent,
            do_send_message,
            conversation_id=ws.conversation_id,
            text=text,
            idempotency_key=idempotency_key,
        )
    )


async def test_concurrent_sends_commit_together_and_publish_in_seq_order(
    sqlite_runtime: tuple[Runtime, CheckingBus], sws: Workspace
) -> None:
    rt, bus = sqlite_runtime
    bus.db = rt.db
    one_group(rt)
    commits = write_commits(rt)

    results = await asyncio.gather(*(send(rt, sws, f"reply {i}") for i in range(30)))

    assert commits[0] == 1
    first = results[0].seq
    assert [r.seq for r in results] == list(range(first, first + 30))
    assert [row[0] for row in bus.published] == sorted(row[0] for row in bus.published)
    assert [row[2] for row in bus.published] == [r.seq for r in results]
    assert all(visible for *_, visible in bus.published)


async def test_a_failing_action_rolls_back_alone(rt: Runtime, sws: Workspace) -> None:
    one_group(rt)
    commits = write_commits(rt)

    async def do_send_then_refuse(ctx: ActionContext) -> None:
        await do_send_message(ctx, conversation_id=sws.conversation_id, text="doomed")
        raise InvalidInput("refused after writing", field="text")

    before = await texts(rt, sws.conversation_id)
    outcomes = await asyncio.gather(
        send(rt, sws, "one"),
        perform(rt, sws.agent, do_send_then_refuse),
        send(rt, sws, "two"),
        return_exceptions=True,
    )

    assert isinstance(outcomes[1], InvalidInput)
    assert commits[0] == 1
    last = before[-1][0]
    assert await texts(rt, sws.conversation_id) == [*before, (last + 1, "one"), (last + 2, "two")]


async def test_an_integrity_error_retries_in_a_later_savepoint(rt: Runtime, sws: Workspace) -> None:
    one_group(rt)
    attempts: list[int] = []

    async def do_flaky(ctx: ActionContext) -> MessageResult:
        attempts.append(len(attempts))
        result = await do_send_message(
            ctx, conversation_id=sws.conversation_id, text=f"try {len(attempts)}"
        )
        if len(attempts) == 1:
            raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed"))
        return result

    before = await texts(rt, sws.conversation_id)
    outcomes = await asyncio.gather(
        send(rt, sws, "one"), perform(rt, sws.agent, do_flaky), send(rt, sws, "two")
    )

    assert attempts == [0, 1]
    assert outcomes[1].message.text == "try 2"
    written = [text for _, text in await texts(rt, sws.conversation_id)][len(before) :]
    assert sorted(written) == ["one", "try 2", "two"]


async def test_the_same_idempotency_key_in_one_group_creates_one_message(
    rt: Runtime, sws: Workspace
) -> None:
    one_group(rt)

    a, b = await asyncio.gather(
        send(rt, sws, "once", idempotency_key="k-1"), send(rt, sws, "once", idempotency_key="k-1")
    )

    assert a.message_id == b.message_id
    assert (a.replayed, b.replayed) == (False, True)
    assert [text for _, text in await texts(rt, sws.conversation_id)].count("once") == 1
