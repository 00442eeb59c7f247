"""Promo codes reserved in the claim: one per decision, the same one on a
retry, none burned by a failed render, a failed decision when the pool is
dry, a warning at low stock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.context import ActionContext, perform
from server.actions.promo_reservations import reserve_code
from server.actions.touch_claims import do_process_due_decisions
from server.domain.actors import system_actor
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, events_since, fetch_all, last_event_id
from tests.touchpoints.claim_support import (
    contact,
    decision,
    email_step,
    make_touchpoint,
    process,
    start,
)


async def _pool(runtime: Runtime, ws: Workspace, codes: list[str], *, low_stock: int = 0) -> int:
    now = runtime.clock.now()
    async with runtime.db.write() as conn:
        pool_id: int = (
            await conn.execute(
                t.promo_pools.insert()
                .values(
                    workspace_id=ws.id,
                    name="Birthday",
                    valid_days=14,
                    low_stock=low_stock,
                    created_at=now,
                )
                .returning(t.promo_pools.c.id)
            )
        ).scalar_one()
        for code in codes:
            await conn.execute(
                t.promo_codes.insert().values(
                    workspace_id=ws.id, pool_id=pool_id, code=code, state="free"
                )
            )
    return pool_id


def _promo_step(pool_id: int, body: str = "Your code: {{ promo.code }}") -> dict[str, Any]:
    return email_step(
        variants=[
            {
                "id": "a",
                "weight": 1,
                "subject": "Happy birthday",
                "body": body,
                "html": False,
                "promo_pool_id": pool_id,
            }
        ]
    )


async def _codes(runtime: Runtime) -> list[Any]:
    return await fetch_all(runtime, sa.select(t.promo_codes).order_by(t.promo_codes.c.code))


async def test_a_send_carries_the_code_it_reserved_with_its_expiry(
    runtime: Runtime, ws: Workspace
) -> None:
    pool = await _pool(runtime, ws, ["BDAY-AAAA", "BDAY-BBBB"])
    tp = await make_touchpoint(runtime, ws, steps=[_promo_step(pool)])
    cid = await contact(runtime, ws, "ann@shop.test")
    started = await start(runtime, tp, cid)

    await process(runtime)

    row = await decision(runtime, started.decision_id)
    first, second = await _codes(runtime)
    assert (first.state, first.decision_id, first.contact_id) == ("issued", row.id, cid)
    assert first.issued_at == runtime.clock.now()
    assert first.expires_at - first.issued_at == timedelta(days=14)
    assert row.rendered["text"] == f"Your code: {first.code}"
    assert second.state == "free"


async def test_a_retried_claim_reuses_the_code_of_the_decision(
    runtime: Runtime, ws: Workspace
) -> None:
    pool = await _pool(runtime, ws, ["A1", "B2", "C3"])
    tp = await make_touchpoint(runtime, ws, steps=[_promo_step(pool)])
    cid = await contact(runtime, ws, "ann@shop.test")
    started = await start(runtime, tp, cid)

    async def twice(ctx: ActionContext) -> tuple[str, str]:
        one = await reserve_code(ctx, decision_id=started.decision_id, pool_id=pool, contact_id=cid)
        two = await reserve_code(ctx, decision_id=started.decision_id, pool_id=pool, contact_id=cid)
        assert one is not None and two is not None
        return one.code, two.code

    one, two = await perform(runtime, ws.system, twice)
    assert one == two
    # The claim that follows (a retry of the send) takes the same code.
    await process(runtime)
    issued = [c for c in await _codes(runtime) if c.state == "issued"]
    assert [c.code for c in issued] == [one]


async def test_a_crashed_claim_gives_its_code_back_with_the_rollback(
    runtime: Runtime, ws: Workspace
) -> None:
    pool = await _pool(runtime, ws, ["A1"])
    tp = await make_touchpoint(runtime, ws, steps=[_promo_step(pool)])
    started = await start(runtime, tp, await contact(runtime, ws, "ann@shop.test"))

    async def claim_then_die(ctx: ActionContext) -> None:
        await do_process_due_decisions(ctx)
        raise RuntimeError("died")

    with pytest.raises(RuntimeError):
        await perform(runtime, system_actor(0), claim_then_die)
    assert [c.state for c in await _codes(runtime)] == ["free"]
    await process(runtime)
    [code] = await _codes(runtime)
    assert (code.state, code.decision_id) == ("issued", started.decision_id)


async def test_an_empty_pool_fails_the_decision_and_a_bad_template_burns_no_code(
    runtime: Runtime, ws: Workspace
) -> None:
    empty = await _pool(runtime, ws, [])
    async with runtime.db.write() as conn:
        await conn.execute(
            t.promo_pools.update().where(t.promo_pools.c.id == empty).values(name="Empty")
        )
    full = await _pool(runtime, ws, ["A1"])
    dry = await make_touchpoint(runtime, ws, name="Dry", steps=[_promo_step(empty)])
    broken = await make_touchpoint(
        runtime, ws, name="Broken", steps=[_promo_step(full, body="{{ promo.code | nope }}")]
    )
    cid = await contact(runtime, ws, "ann@shop.test")
    a = await start(runtime, dry, cid, key="a")
    b = await start(runtime, broken, cid, key="b")

    await process(runtime)

    failed = await decision(runtime, a.decision_id)
    assert (failed.state, failed.reason) == ("failed", "promo pool Empty is empty")
    bad = await decision(runtime, b.decision_id)
    assert bad.state == "failed" and bad.reason.startswith("template: ")
    [code] = await _codes(runtime)
    assert (code.state, code.decision_id) == ("free", None)


async def test_issuing_down_to_the_low_stock_mark_warns(runtime: Runtime, ws: Workspace) -> None:
    pool = await _pool(runtime, ws, ["A1", "B2", "C3"], low_stock=1)
    tp = await make_touchpoint(runtime, ws, kind="transactional", steps=[_promo_step(pool)])
    after = await last_event_id(runtime)
    for i in range(2):
        await start(runtime, tp, await contact(runtime, ws, f"c{i}@shop.test"), key=f"k{i}")

    await process(runtime)

    lows = [p for kind, p in await events_since(runtime, after) if kind == "promo_pool.low"]
    assert [(p["pool_id"], p["free"]) for p in lows] == [(pool, 1)]
