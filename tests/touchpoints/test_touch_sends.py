"""The send a claim makes when every guard passes: the variant, the
rendered message in the customer's timeline, the outbox row, the ledger
row, the next step."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.actions.visitors import do_send_visitor_message, do_start_visitor_session
from server.domain.values import IdentityKind
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from server.storage import tables as t
from tests.email.mails import mail
from tests.support import Workspace, fetch_all, fetch_one
from tests.touchpoints.claim_support import (
    clock,
    contact,
    decision,
    decisions_of,
    email_step,
    make_touchpoint,
    process,
    start,
    widget_step,
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


async def test_a_visitors_answer_to_a_widget_touch_continues_its_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, inbox_id=ws.inbox_id, steps=[widget_step()])
    visitor = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    started = await start(runtime, tp, visitor.contact_id)
    await process(runtime)
    row = await decision(runtime, started.decision_id)
    touch = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == row.message_id))
    conv = t.conversations.c
    before = await fetch_one(
        runtime, sa.select(t.conversations).where(conv.id == touch.conversation_id)
    )
    assert before.status == "pending"  # out of the agents' queue

    answer = await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=visitor.session_id,
        text="Yes, does it come in blue?",
        client_id="c1",
    )

    assert answer.conversation_id == touch.conversation_id
    after = await fetch_one(
        runtime, sa.select(t.conversations).where(conv.id == touch.conversation_id)
    )
    assert after.status == "open"


async def test_a_chase_in_an_email_conversation_continues_its_thread(
    runtime: Runtime, ws: Workspace
) -> None:
    outcome = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=mail(sender="Pat <pat@customer.test>", message_id="<q1@customer.test>"),
        source="smtp",
    )
    assert outcome.conversation_id is not None and outcome.message_id is not None
    conv = await fetch_one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == outcome.conversation_id)
    )
    tp = await make_touchpoint(
        runtime, ws, name="Chase", kind="service", steps=[email_step(subject="{{ nothing }}")]
    )
    started = await start(
        runtime,
        tp,
        conv.contact_id,
        key=f"awaiting_reply:{outcome.message_id}",
        context={"message_id": outcome.message_id},
        conversation_id=conv.id,
    )

    await process(runtime)

    row = await decision(runtime, started.decision_id)
    assert row.state == "sending", row.reason
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == row.message_id))
    assert msg.conversation_id == conv.id
    assert msg.email["in_reply_to"] == ["<q1@customer.test>"]
    assert msg.email["subject"] == "Re: Where is my order?"


async def test_the_steps_of_an_episode_continue_one_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(
        runtime, ws, kind="transactional", steps=[email_step(), email_step(after=60)]
    )
    cid = await contact(runtime, ws, "ann@shop.test", name="Ann")
    started = await start(runtime, tp, cid)
    await process(runtime)
    clock(runtime).advance(seconds=60)
    await process(runtime)

    first, second = await decisions_of(runtime, started.episode_id)
    assert (first.state, second.state) == ("sending", "sending")
    messages = await fetch_all(
        runtime,
        sa.select(t.messages).where(t.messages.c.id.in_([first.message_id, second.message_id])),
    )
    assert len({m.conversation_id for m in messages}) == 1


async def test_a_conversation_a_touch_opens_starts_no_conversation_touchpoint(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws)
    on_new_conversation = await make_touchpoint(
        runtime,
        ws,
        name="New conversation",
        trigger={"kind": "event", "name": "conversation.created"},
    )
    async with runtime.db.write() as conn:
        await conn.execute(
            t.touchpoints.update()
            .where(t.touchpoints.c.id == on_new_conversation)
            .values(
                trigger_key="event:conversation.created",
                episode_key="conversation:{conversation_id}",
            )
        )
    cid = await contact(runtime, ws, "ann@shop.test", name="Ann")
    await start(runtime, tp, cid)

    batch = await process(runtime)

    assert batch.count("sending") == 1
    episodes = t.episodes.c
    touch_opened = sa.select(t.episodes).where(episodes.touchpoint_id == on_new_conversation)
    assert await fetch_all(runtime, touch_opened) == []
    # The same touchpoint does start for a conversation the customer opens.
    await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "bo@shop.test"),
        name="Bo",
        subject="Hello",
        text="A question",
    )
    assert len(await fetch_all(runtime, touch_opened)) == 1
