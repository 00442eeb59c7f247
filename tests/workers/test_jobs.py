"""The job runner (server.workers.jobs) on a real database, both
backends, with a frozen clock: a snoozed conversation reopens at its
time, once, with its event; after a restart; after a worker died holding
its job; and an idle runner only reads."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.context import ActionContext, perform
from server.actions.conversations import do_create_conversation
from server.actions.jobs import do_claim_jobs
from server.actions.snooze_jobs import SNOOZE_WAKE
from server.actions.snoozes import wake_snooze_job
from server.bus.base import workspace_topic
from server.clock import FrozenClock
from server.domain.jobs import LEASE, ClaimedJob, JobOutcome
from server.queries.jobs import next_job_due
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.jobs import HANDLERS, JobRunner
from tests.support import T0, Workspace, fetch_all, make_runtime, seed_workspace, snooze

LATER = T0 + timedelta(hours=2)


def clock(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


async def another_conversation(runtime: Runtime, ws: Workspace) -> int:
    cid: int = await perform(
        runtime, ws.agent, do_create_conversation, inbox_id=ws.inbox_id, contact_id=ws.contact_id
    )
    return cid


async def statuses(runtime: Runtime, *cids: int) -> list[str]:
    c = t.conversations.c
    rows = await fetch_all(runtime, sa.select(c.id, c.status).where(c.id.in_(cids)))
    by_id = {r.id: r.status for r in rows}
    return [by_id[cid] for cid in cids]


async def wakes(runtime: Runtime) -> list[int]:
    """The conversation of every snooze_expired event, in log order."""
    e = t.events.c
    rows = await fetch_all(
        runtime,
        sa.select(e.payload).where(e.type == "conversation.status_changed").order_by(e.id),
    )
    return [r.payload["conversation_id"] for r in rows if r.payload["reason"] == "snooze_expired"]


async def job_rows(runtime: Runtime) -> list[tuple[Any, ...]]:
    j = t.scheduled_jobs.c
    rows = await fetch_all(
        runtime,
        sa.select(j.subject_id, j.status, j.attempts, j.claimed_by).order_by(j.due_at, j.id),
    )
    return [tuple(r) for r in rows]


async def test_a_snooze_wakes_once_at_its_time(runtime: Runtime, ws: Workspace) -> None:
    first, second = ws.conversation_id, await another_conversation(runtime, ws)
    await snooze(runtime, ws, first, LATER)
    await snooze(runtime, ws, second, LATER + timedelta(hours=1))
    runner = JobRunner(runtime, HANDLERS, worker="a")

    assert await runner.run_due() == 0
    assert await job_rows(runtime) == [
        (first, "scheduled", 0, None),
        (second, "scheduled", 0, None),
    ]

    clock(runtime).advance(hours=2)
    assert await runner.run_due() == 1
    assert await statuses(runtime, first, second) == ["open", "snoozed"]
    assert await runner.run_due() == 0

    clock(runtime).advance(hours=5)
    assert await runner.run_due() == 1
    assert await runner.run_due() == 0
    assert await statuses(runtime, first, second) == ["open", "open"]
    assert await wakes(runtime) == [first, second]
    assert await job_rows(runtime) == [(first, "done", 1, "a"), (second, "done", 1, "a")]


async def test_an_idle_runner_takes_no_write_lock(runtime: Runtime, ws: Workspace) -> None:
    await snooze(runtime, ws, ws.conversation_id, LATER)
    runner = JobRunner(runtime, HANDLERS, worker="a")
    # Another writer holds the write lock (on SQLite, the database's only
    # one): a round with nothing due answers without waiting for it.
    async with runtime.db.write() as conn:
        await conn.execute(sa.select(1))
        assert await asyncio.wait_for(runner.run_due(), timeout=5) == 0
    assert await runner.idle_seconds() == runner.poll_interval
    clock(runtime).advance(hours=2, seconds=-0.25)
    assert await runner.idle_seconds() == 0.25


async def test_an_idle_running_loop_only_reads(
    runtime: Runtime, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    await snooze(runtime, ws, ws.conversation_id, LATER)
    writes, reads = 0, 0
    real_write = runtime.db.write

    def counting_write() -> Any:
        nonlocal writes
        writes += 1
        return real_write()

    async def counting_next_job_due(*args: Any) -> datetime | None:
        nonlocal reads
        reads += 1
        return await next_job_due(*args)

    monkeypatch.setattr(runtime.db, "write", counting_write)
    monkeypatch.setattr("server.workers.jobs.next_job_due", counting_next_job_due)
    stop = asyncio.Event()
    task = asyncio.create_task(JobRunner(runtime, HANDLERS, poll_interval=0.02).run(stop))

    async def polled() -> None:
        while reads < 5:
            await asyncio.sleep(0.02)  # polling interval of a condition wait

    try:
        await asyncio.wait_for(polled(), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    # Polling every interval: on SQLite a write would take the one write lock.
    assert writes == 0


async def test_the_running_loop_wakes_the_conversation_when_its_time_comes(
    runtime: Runtime, ws: Workspace
) -> None:
    await snooze(runtime, ws, ws.conversation_id, LATER)
    sub = await runtime.bus.subscribe(workspace_topic(ws.id))
    stop = asyncio.Event()
    task = asyncio.create_task(JobRunner(runtime, HANDLERS, poll_interval=0.02).run(stop))
    try:
        clock(runtime).advance(hours=2)

        async def woken() -> dict[str, Any]:
            async for message in sub:
                event = json.loads(message)
                if event["type"] == "conversation.status_changed":
                    return dict(event)
            raise AssertionError("the subscription ended")

        event = await asyncio.wait_for(woken(), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await sub.close()
    assert (event["data"]["conversation_id"], event["data"]["reason"]) == (
        ws.conversation_id,
        "snooze_expired",
    )
    assert await wakes(runtime) == [ws.conversation_id]


async def test_a_snooze_wakes_after_a_restart(migrated_url: str, tmp_path: Path) -> None:
    before = make_runtime(migrated_url, tmp_path / "data")
    try:
        ws = await seed_workspace(before)
        await snooze(before, ws, ws.conversation_id, LATER)
    finally:
        await before.close()
    # The server was down past the snooze's end; the new process has
    # nothing in memory, only the rows.
    after = make_runtime(migrated_url, tmp_path / "data")
    try:
        clock(after).advance(hours=3)
        assert await JobRunner(after, HANDLERS, worker="b").run_due() == 1
        assert await statuses(after, ws.conversation_id) == ["open"]
        assert await wakes(after) == [ws.conversation_id]
    finally:
        await after.close()


async def test_a_job_whose_worker_died_is_run_once_by_another(
    runtime: Runtime, ws: Workspace
) -> None:
    await snooze(runtime, ws, ws.conversation_id, LATER)
    clock(runtime).advance(hours=2)
    [held] = await perform(runtime, ws.system, do_claim_jobs, worker="a", kinds=[SNOOZE_WAKE])
    b = JobRunner(runtime, HANDLERS, worker="b")
    assert await b.run_due() == 0  # a's lease holds

    clock(runtime).advance(seconds=LEASE.total_seconds() + 1)
    assert await b.run_due() == 1
    # a comes back to its old claim: no longer its own, nothing happens.
    await JobRunner(runtime, HANDLERS, worker="a").execute(held)
    assert await wakes(runtime) == [ws.conversation_id]
    assert await job_rows(runtime) == [(ws.conversation_id, "done", 2, "b")]


async def test_a_failed_run_is_retried_after_a_backoff(runtime: Runtime, ws: Workspace) -> None:
    await snooze(runtime, ws, ws.conversation_id, LATER)
    failures = ["the database hiccuped"]

    async def flaky(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
        outcome = await wake_snooze_job(ctx, job)  # its change is rolled back
        if failures:
            raise RuntimeError(failures.pop())
        return outcome

    runner = JobRunner(runtime, {SNOOZE_WAKE: flaky}, worker="a")
    clock(runtime).advance(hours=2)
    assert await runner.run_due() == 1
    j = t.scheduled_jobs.c
    [row] = await fetch_all(runtime, sa.select(j.status, j.run_at, j.due_at, j.last_error))
    assert tuple(row) == (
        "scheduled",
        LATER + timedelta(seconds=15),
        LATER,
        "the database hiccuped",
    )
    assert (await statuses(runtime, ws.conversation_id), await wakes(runtime)) == (["snoozed"], [])

    clock(runtime).advance(seconds=14)
    assert await runner.run_due() == 0
    clock(runtime).advance(seconds=1)
    assert await runner.run_due() == 1
    assert await wakes(runtime) == [ws.conversation_id]
    assert await job_rows(runtime) == [(ws.conversation_id, "done", 2, "a")]
