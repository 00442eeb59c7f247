"""Two runners on one PostgreSQL database (each with its own engine, as
two `serve` processes have) drain the same due wake-ups at once: every
conversation is woken exactly once, with one event, and no job is run
by both (FOR UPDATE SKIP LOCKED plus the claim's lease). A runner that
finds rows another is claiming takes the others at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.actions.context import ActionContext, perform
from server.actions.conversations import do_create_conversation
from server.actions.jobs import do_claim_jobs
from server.actions.snooze_jobs import SNOOZE_WAKE
from server.actions.snoozes import wake_snooze_job
from server.clock import FrozenClock
from server.domain.actors import system_actor
from server.domain.jobs import ClaimedJob, JobOutcome
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.jobs import JobRunner
from tests.services.postgres import PostgresServer
from tests.support import T0, fetch_all, make_runtime, seed_workspace, snooze

pytestmark = pytest.mark.postgres

CONVERSATIONS = 40


@pytest.fixture
async def pg_url(pg_server: PostgresServer, migrated_pg_template: str) -> str:
    return await pg_server.create_database(template=migrated_pg_template)


@pytest.fixture
async def runtimes(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[Runtime, Runtime]]:
    a = make_runtime(pg_url, tmp_path / "a")
    b = make_runtime(pg_url, tmp_path / "b")
    yield a, b
    await a.close()
    await b.close()


async def snoozed_conversations(runtime: Runtime, n: int) -> list[int]:
    """`n` conversations snoozed until ten minutes after T0 (a few
    seconds apart), then the runtime's clock an hour later."""
    ws = await seed_workspace(runtime)
    cids = [ws.conversation_id]
    for _ in range(n - 1):
        cids.append(
            await perform(
                runtime,
                ws.agent,
                do_create_conversation,
                inbox_id=ws.inbox_id,
                contact_id=ws.contact_id,
            )
        )
    for i, cid in enumerate(cids):
        await snooze(runtime, ws, cid, T0 + timedelta(minutes=10, seconds=i % 3))
    return cids


def advance(*runtimes: Runtime) -> None:
    for rt in runtimes:
        assert isinstance(rt.clock, FrozenClock)
        rt.clock.advance(hours=1)


async def test_a_second_runner_skips_the_jobs_the_first_is_claiming(
    runtimes: tuple[Runtime, Runtime],
) -> None:
    a, b = runtimes
    await snoozed_conversations(a, 3)
    advance(a, b)
    async with a.db.write() as conn:
        ctx = ActionContext(conn, a.clock.now(), system_actor(0))
        [held] = await do_claim_jobs(ctx, worker="a", kinds=[SNOOZE_WAKE], limit=1)
        # a's claim is not committed yet; b takes the others at once.
        others = await asyncio.wait_for(
            perform(b, system_actor(0), do_claim_jobs, worker="b", kinds=[SNOOZE_WAKE]),
            timeout=10,
        )
    assert len(others) == 2
    assert held.id not in {job.id for job in others}


async def drain(runner: JobRunner) -> int:
    ran = 0
    while n := await runner.run_due():
        ran += n
    return ran


async def test_two_runners_wake_every_conversation_exactly_once(
    runtimes: tuple[Runtime, Runtime],
) -> None:
    a, b = runtimes
    cids = await snoozed_conversations(a, CONVERSATIONS)
    advance(a, b)

    runs: list[int] = []

    async def counted(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
        runs.append(job.id)  # also the runs that were rolled back
        return await wake_snooze_job(ctx, job)

    handlers = {SNOOZE_WAKE: counted}
    ran = await asyncio.gather(
        drain(JobRunner(a, handlers, worker="a", batch=3)),
        drain(JobRunner(b, handlers, worker="b", batch=3)),
    )

    assert sum(ran) == CONVERSATIONS  # claimed once each, between the two
    assert all(ran)  # ... and both took part
    # No job's handler ran in both (a wasted run would be a double send
    # for work done outside the transaction, such as a mail).
    assert sorted(Counter(runs).values()) == [1] * CONVERSATIONS
    c, e, j = t.conversations.c, t.events.c, t.scheduled_jobs.c
    rows = await fetch_all(a, sa.select(c.status).where(c.id.in_(cids)))
    assert Counter(r.status for r in rows) == {"open": CONVERSATIONS}
    events = await fetch_all(a, sa.select(e.payload).where(e.type == "conversation.status_changed"))
    woken = Counter(
        p.payload["conversation_id"] for p in events if p.payload["reason"] == "snooze_expired"
    )
    assert woken == dict.fromkeys(cids, 1)
    jobs = await fetch_all(a, sa.select(j.status, j.attempts))
    assert Counter(tuple(r) for r in jobs) == {("done", 1): CONVERSATIONS}
