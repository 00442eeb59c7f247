"""The claim reads a whole batch's rows at once (template data, zones,
the touch ledger) and must come to what reading them one decision at a
time would: the same template data per contact, and caps that count the
touches this very batch sent before."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.queries.touch_data import LOOKBACK_EVENTS, contacts_facts, touch_data
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, fetch_all
from tests.touchpoints.claim_support import (
    clock,
    contact,
    decision,
    make_touchpoint,
    process,
    settings,
    start,
)


async def _track(runtime: Runtime, ws: Workspace, cid: int, name: str, props: Any) -> None:
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contact_events.insert().values(
                workspace_id=ws.id,
                contact_id=cid,
                name=name,
                properties=props,
                created_at=runtime.clock.now(),
            )
        )
    clock(runtime).advance(seconds=1)


async def _data(runtime: Runtime, ws: Workspace, cid: int, **batch: Any) -> dict[str, Any]:
    async with runtime.db.read() as conn:
        return await touch_data(
            conn,
            workspace_id=ws.id,
            contact_id=cid,
            episode_context={"cart_id": "c1"},
            promo=None,
            links={"unsubscribe": None},
            touchpoint_name="Cart",
            now=runtime.clock.now(),
            **batch,
        )


async def test_a_batchs_template_data_is_each_contacts_own(runtime: Runtime, ws: Workspace) -> None:
    ann = await contact(runtime, ws, "ann@shop.test", name="Ann", attributes={"tier": "gold"})
    bob = await contact(runtime, ws, "bob@shop.test", name="Bob")
    quiet = await contact(runtime, ws, None, name="Quiet")  # no address, no events
    await _track(runtime, ws, ann, "cart_updated", {"cart_id": "c1", "items": [{"name": "Mug"}]})
    await _track(runtime, ws, bob, "cart_updated", {"cart_id": "c1", "items": [{"name": "Pot"}]})
    await _track(runtime, ws, bob, "order_placed", {"order_id": 1, "items": [{"name": "Lid"}]})
    # More views than the look-back: only the latest count, per contact.
    for i in range(LOOKBACK_EVENTS + 5):
        await _track(runtime, ws, ann, "product_viewed", {"name": f"P{i}", "sku": f"p{i}"})
    await _track(runtime, ws, bob, "product_viewed", {"name": "Cup", "sku": "cup"})

    async with runtime.db.read() as conn:
        facts = await contacts_facts(conn, [ann, bob, quiet, 999_999])

    assert set(facts) == {ann, bob, quiet}
    assert len(facts[ann].events["product_viewed"]) == LOOKBACK_EVENTS
    for cid in (ann, bob, quiet):
        one_by_one = await _data(runtime, ws, cid)
        batched = await _data(runtime, ws, cid, facts=facts[cid], workspace_name="Acme")
        assert batched == one_by_one
    assert (await _data(runtime, ws, bob))["events"]["cart"]["items"][0]["name"] == "Pot"


async def test_caps_count_what_the_same_batch_sent_contact_by_contact(
    runtime: Runtime, ws: Workspace
) -> None:
    await settings(runtime, ws, {"caps": {"marketing": [{"count": 2, "window": "7d"}]}})
    ann = await contact(runtime, ws, "ann@shop.test")
    bob = await contact(runtime, ws, "bob@shop.test")
    ann_ids = []
    for priority in (90, 50, 10):
        tp = await make_touchpoint(runtime, ws, name=f"P{priority}", priority=priority)
        ann_ids.append((await start(runtime, tp, ann, key=f"a:{priority}")).decision_id)
    tp = await make_touchpoint(runtime, ws, name="Bob's")
    bob_id = (await start(runtime, tp, bob, key="b:1")).decision_id

    batch = await process(runtime)  # all four in one batch, one transaction

    assert batch.claimed == 4
    states = [(await decision(runtime, i)).state for i in ann_ids]
    assert states == ["sending", "sending", "skipped"]  # the third meets the cap
    assert (await decision(runtime, ann_ids[2])).reason == "frequency cap"
    assert (await decision(runtime, bob_id)).state == "sending"  # Ann's touches aren't Bob's
    ledger = await fetch_all(runtime, sa.select(t.touch_ledger.c.contact_id))
    assert sorted(row.contact_id for row in ledger) == sorted([ann, ann, bob])
