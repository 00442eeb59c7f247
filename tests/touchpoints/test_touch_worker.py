"""The decision runner as `threadline serve` and `threadline worker` host
it: it claims what comes due, keeps going past a decision that fails,
and sleeps until the next due time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from server.runtime import Runtime
from server.workers.background import background_workers
from server.workers.touch_decisions import DecisionRunner
from tests.support import Workspace
from tests.touchpoints.claim_support import (
    clock,
    contact,
    decision,
    email_step,
    make_touchpoint,
    start,
)

DEADLINE = 30.0


async def eventually(check: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.05)  # polling interval of a condition wait
    raise AssertionError("condition not met in time")


def test_serve_and_worker_both_run_the_decision_runner(runtime: Runtime) -> None:
    for smtp_listener in (True, False):
        names = [w.name for w in background_workers(runtime, smtp_listener=smtp_listener)]
        assert names.count(DecisionRunner.name) == 1


async def test_the_runner_fails_a_broken_template_and_keeps_sending(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    broken = await make_touchpoint(
        runtime, ws, name="Broken", steps=[email_step(body="{{ x | nope }}")]
    )
    fine = await make_touchpoint(runtime, ws, name="Fine", kind="transactional")
    bad = await start(runtime, broken, cid, key="b")
    runner = DecisionRunner(runtime, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:

        async def settled(decision_id: int, state: str) -> bool:
            return bool((await decision(runtime, decision_id)).state == state)

        await eventually(lambda: settled(bad.decision_id, "failed"))
        # Written while the runner runs: found at its next look.
        good = await start(runtime, fine, cid, key="g")
        await eventually(lambda: settled(good.decision_id, "sending"))
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    row = await decision(runtime, bad.decision_id)
    assert row.reason.startswith("template: ")


async def test_the_runner_reads_when_to_wake_and_claims_nothing_early(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    tp = await make_touchpoint(runtime, ws, kind="transactional")
    later = await start(runtime, tp, cid, due_at=runtime.clock.now() + timedelta(seconds=30))
    runner = DecisionRunner(runtime, poll_interval=60)

    assert (await runner.run_due()).claimed == 0
    assert await runner.idle_seconds() == 30
    clock(runtime).advance(seconds=30)
    assert (await runner.run_due()).claimed == 1
    assert (await decision(runtime, later.decision_id)).state == "sending"
