"""The send a claim makes when every guard passes: the variant, the
rendered message in the customer's timeline, the outbox row, the ledger
row, the next step."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, fetch_all, fetch_one
from tests.touchpoints.claim_support import (
    contact,
    decision,
    decisions_of,
    email_step,
    make_touchpoint,
    process,
    start,
)


async def test_an_email_touch_is_written_in_a_resolved_conversation_and_queued(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, steps=[email_step(), email_step(after=3600)])
    cid = await contact(runtime, ws, "ann@shop.test", name="Ann")
    started = await start(runtime, tp, cid)

    batch = await process(runtime)

    assert batch.claimed == 1 and batch.count("sending") == 1
    row = await decision(runtime, started.decision_id)
    assert row.state == "sending" and row.variant == "a"
    assert row.rendered["subject"] == "Hello Ann"
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == row.message_id))
    assert msg.text == "Hi Ann, your cart waits."
    assert msg.sender_kind == "system" and msg.direction == "outbound"
    assert msg.email["to"] == [{"name": "", "address": "ann@shop.test"}]
    conv = await fetch_one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == msg.conversation_id)
    )
    # A marketing touch stays out of the agents' queue until the customer answers.
    assert conv.status == "resolved" and conv.inbox_id == ws.other_inbox_id
    outbox = await fetch_one(runtime, sa.select(t.outbox).where(t.outbox.c.id == row.outbox_id))
    assert outbox.payload == {"kind": "touch", "decision_id": started.decision_id}
    assert outbox.message_id == msg.id and outbox.status == "pending"
    [entry] = await fetch_all(
        runtime, sa.select(t.touch_ledger).where(t.touch_ledger.c.contact_id == cid)
    )
    assert (entry.kind, entry.channel, entry.decision_id) == ("marketing", "email", row.id)
    _, second = await decisions_of(runtime, started.episode_id)
    # The next step, anchored at the send.
    assert second.state == "scheduled" and second.position == 1
    assert second.due_at == runtime.clock.now() + timedelta(hours=1)
    # Processing again sends nothing twice.
    again = await process(runtime)
    assert again.claimed == 0
