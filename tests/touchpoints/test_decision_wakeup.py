"""A decision scheduled due now is claimed at once, not at the runner's
next poll: scheduling it nudges the schedulers over the bus after commit
(server.workers.wakeup), and the decision runner listens like the jobs
runner does."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from server.actions.context import ActionContext, perform
from server.actions.touch_episodes import schedule_step
from server.bus.base import SCHEDULER_TOPIC
from server.bus.memory import MemoryBus
from server.queries.records import Episode, load
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.touch_decisions import DecisionRunner
from tests.support import Workspace
from tests.touchpoints.claim_support import (
    contact,
    decisions_of,
    email_step,
    make_touchpoint,
    start,
)


async def test_a_decision_due_now_is_claimed_long_before_the_poll_interval(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, steps=[email_step(), email_step()])
    started = await start(runtime, tp, await contact(runtime, ws, "ann@shop.test"))
    async with runtime.db.write() as conn:
        # The first step went out earlier: nothing is due when the runner starts.
        await conn.execute(
            t.decisions.update()
            .where(t.decisions.c.id == started.decision_id)
            .values(state="sent", settled_at=runtime.clock.now())
        )

    async def schedule_second(ctx: ActionContext) -> None:
        row = (
            await ctx.conn.execute(
                sa.select(t.episodes).where(t.episodes.c.id == started.episode_id)
            )
        ).one()
        await schedule_step(ctx, episode=load(Episode, row), position=1, anchor=ctx.now)

    # Polling alone would find the decision after 120 s; the test allows 10.
    runner = DecisionRunner(runtime, poll_interval=120)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        bus = runtime.bus
        assert isinstance(bus, MemoryBus)
        async with asyncio.timeout(10):
            while SCHEDULER_TOPIC not in bus._subscribers:
                await asyncio.sleep(0.01)
        await perform(runtime, ws.system, schedule_second)
        async with asyncio.timeout(10):
            while runner.processed < 1:
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    second = (await decisions_of(runtime, started.episode_id))[1]
    assert second.state == "sending"
