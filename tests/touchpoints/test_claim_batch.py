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
from tests.support import Workspace, fetch_all, fetch_one
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


async def _claim_counting_statements(runtime: Runtime) -> tuple[int, int]:
    """Process one batch; (decisions claimed, SQL statements it ran)."""
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = runtime.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        batch = await process(runtime)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return batch.claimed, statements


async def _first_steps(runtime: Runtime, ws: Workspace, n: int, tag: str) -> list[int]:
    """`n` contacts, each with a first email step due now (its only step)."""
    tp = await make_touchpoint(runtime, ws, name=f"Welcome {tag}")
    ids = []
    for i in range(n):
        cid = await contact(runtime, ws, f"{tag}{i}@shop.test", name=f"{tag}{i}")
        ids.append((await start(runtime, tp, cid, key=f"{tag}:{i}")).decision_id)
    return ids


async def test_a_batchs_writes_do_not_grow_with_its_size(runtime: Runtime, ws: Workspace) -> None:
    # Touches opening conversations of their own are written together:
    # a batch of 12 runs the statements a batch of 3 runs, not 4x them.
    await _first_steps(runtime, ws, 3, "a")
    small = await _claim_counting_statements(runtime)
    await _first_steps(runtime, ws, 12, "b")
    large = await _claim_counting_statements(runtime)

    assert small[0] == 3
    assert large[0] == 12
    assert large[1] == small[1]


async def test_touches_written_together_are_each_a_conversation_of_their_own(
    runtime: Runtime, ws: Workspace
) -> None:
    ids = await _first_steps(runtime, ws, 4, "c")

    assert (await process(runtime)).count("sending") == 4

    conversations = set()
    for decision_id in ids:
        row = await decision(runtime, decision_id)
        assert row.state == "sending"
        message = await fetch_one(
            runtime, sa.select(t.messages).where(t.messages.c.id == row.message_id)
        )
        assert (message.seq, message.direction, message.sender_kind) == (1, "outbound", "system")
        assert message.delivery_status == "pending"
        assert message.idempotency_key == row.idempotency_key
        assert message.email["to"] == [
            {"name": "", "address": f"c{ids.index(decision_id)}@shop.test"}
        ]
        conv = await fetch_one(
            runtime,
            sa.select(t.conversations).where(t.conversations.c.id == message.conversation_id),
        )
        # A marketing mail's conversation stays out of the queue until answered.
        assert (conv.status, conv.last_seq, conv.contact_id) == ("resolved", 1, row.contact_id)
        assert conv.resolved_at is not None
        outbox = await fetch_one(runtime, sa.select(t.outbox).where(t.outbox.c.id == row.outbox_id))
        assert (outbox.message_id, outbox.stable_id) == (message.id, f"touch:{decision_id}")
        episode = await fetch_one(
            runtime, sa.select(t.episodes).where(t.episodes.c.id == row.episode_id)
        )
        assert (episode.conversation_id, episode.state) == (conv.id, "done")
        types = [
            e.type
            for e in await fetch_all(
                runtime,
                sa.select(t.events.c.type, t.events.c.payload).order_by(t.events.c.id),
            )
            if e.payload.get("decision_id") == decision_id
            or e.payload.get("conversation_id") == conv.id
            or e.payload.get("episode_id") == row.episode_id
        ]
        assert types[:3] == ["conversation.created", "message.created", "decision.sending"]
        assert types[-1] == "episode.ended"
        conversations.add(conv.id)
    assert len(conversations) == 4
    ledger = await fetch_all(runtime, sa.select(t.touch_ledger.c.decision_id))
    assert sorted(r.decision_id for r in ledger) == sorted(ids)
