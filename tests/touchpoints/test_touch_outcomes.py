"""A touch mail from the claim to a real SMTP server and back onto its
decision: sent at most once through a crash at each of four points,
`unknown` where the outcome is uncertain, settled by an admin."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.actions.context import ActionContext, perform
from server.actions.outbound_email import LEASE, do_claim_outbox
from server.actions.touch_claims import do_process_due_decisions
from server.actions.touch_settlement import do_settle_decision
from server.domain.actors import system_actor
from server.domain.errors import Conflict, Forbidden
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.email_delivery import EmailDelivery
from server.workers.touch_decisions import DecisionRunner
from tests.email.mails import mail
from tests.services.smtp import SmtpSink
from tests.support import Workspace, fetch_all, fetch_one, make_runtime
from tests.touchpoints.claim_support import (
    clock,
    contact,
    decision,
    mail_inbox,
    make_touchpoint,
    process,
    start,
)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as running:
        yield running


async def _deliver_all(runtime: Runtime) -> int:
    delivery = EmailDelivery(runtime, batch=50)
    total = 0
    while sent := await delivery.deliver_due():
        total += sent
    return total


async def test_a_touch_mail_is_automatic_mail_and_its_outcome_settles_the_decision(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    cid = await contact(runtime, ws, "ann@shop.test", name="Ann")
    started = await start(runtime, tp, cid)

    await DecisionRunner(runtime).run_due()
    await _deliver_all(runtime)

    [received] = sink.received
    assert received.rcpt_tos == ("ann@shop.test",)
    mail = email.message_from_bytes(received.data, policy=email.policy.default)
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["List-Unsubscribe"].startswith("<http://testserver/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Subject"] == "Hello Ann"
    # Replies go to the conversation's signed address: into the timeline.
    assert mail["Reply-To"] is not None and "shop@acme.test" not in mail["Reply-To"]
    row = await decision(runtime, started.decision_id)
    assert row.state == "sent"
    assert row.channel_message_id == mail["Message-ID"]
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == row.message_id))
    assert msg.delivery_status == "sent"


async def test_a_refused_mail_fails_the_decision_as_bounced(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, await contact(runtime, ws, "gone@shop.test"))
    sink.fail_next("rcpt", 550, "5.1.1 no such user")

    await process(runtime)
    await _deliver_all(runtime)

    row = await decision(runtime, started.decision_id)
    assert row.state == "failed" and row.reason.startswith("bounced: ")
    assert "no such user" in row.reason


async def test_crash_before_the_claim_commits_rolls_back_and_sends_once_later(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, await contact(runtime, ws, "ann@shop.test"))

    async def claim_then_die(ctx: ActionContext) -> None:
        batch = await do_process_due_decisions(ctx)
        assert batch.count("sending") == 1
        raise RuntimeError("the process died before commit")

    with pytest.raises(RuntimeError):
        await perform(runtime, system_actor(0), claim_then_die)
    row = await decision(runtime, started.decision_id)
    assert row.state == "scheduled" and row.message_id is None
    assert await fetch_all(runtime, sa.select(t.touch_ledger)) == []

    await process(runtime)
    await _deliver_all(runtime)
    assert len(sink.received) == 1
    assert (await decision(runtime, started.decision_id)).state == "sent"


async def test_crash_after_the_claim_commits_delivers_once(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, await contact(runtime, ws, "ann@shop.test"))
    await process(runtime)  # committed; the process dies before any delivery

    # Another process: the claim finds nothing more, the outbox sends it.
    assert (await process(runtime)).claimed == 0
    await _deliver_all(runtime)

    assert len(sink.received) == 1
    assert (await decision(runtime, started.decision_id)).state == "sent"


async def test_crash_after_smtp_accepted_leaves_unknown_never_resent_then_settled(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, await contact(runtime, ws, "ann@shop.test"))
    await process(runtime)
    delivery = EmailDelivery(runtime)
    # The worker claims the mail and the server takes it, then the
    # worker dies before recording the outcome.
    [job] = await perform(runtime, system_actor(0), do_claim_outbox, limit=10)
    outcome, _ = await delivery.attempt(job)
    assert outcome.status == "sent" and len(sink.received) == 1

    clock(runtime).advance(seconds=LEASE.total_seconds() + 1)
    await _deliver_all(runtime)

    assert len(sink.received) == 1  # never sent again by itself
    row = await decision(runtime, started.decision_id)
    assert row.state == "unknown"
    outbox = await fetch_one(runtime, sa.select(t.outbox).where(t.outbox.c.id == row.outbox_id))
    assert outbox.status == "unknown"

    # Only an admin settles it; a deliberate resend is one more mail.
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_settle_decision, decision_id=row.id, outcome="resend")
    settled = await perform(
        runtime, ws.admin, do_settle_decision, decision_id=row.id, outcome="resend"
    )
    assert settled.state == "sending" and settled.outbox_id != row.outbox_id
    with pytest.raises(Conflict):
        await perform(runtime, ws.admin, do_settle_decision, decision_id=row.id, outcome="sent")
    await _deliver_all(runtime)
    assert len(sink.received) == 2
    assert (await decision(runtime, started.decision_id)).state == "sent"


async def test_an_unknown_decision_settled_as_sent(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, await contact(runtime, ws, "ann@shop.test"))
    await process(runtime)
    # The connection breaks after DATA: the mail may have arrived.
    sink.drop_next_connection("data")
    await _deliver_all(runtime)
    row = await decision(runtime, started.decision_id)
    assert row.state == "unknown"

    settled = await perform(
        runtime, ws.admin, do_settle_decision, decision_id=row.id, outcome="sent"
    )

    assert settled.state == "sent"
    clock(runtime).advance(hours=1)
    await _deliver_all(runtime)
    assert sink.received == []  # the dropped DATA was never recorded, nor resent


async def test_crash_after_recording_sends_nothing_more(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    await start(runtime, tp, await contact(runtime, ws, "ann@shop.test"))
    await process(runtime)
    await _deliver_all(runtime)

    clock(runtime).advance(seconds=LEASE.total_seconds() + 1)
    assert (await process(runtime)).claimed == 0
    assert await _deliver_all(runtime) == 0
    assert len(sink.received) == 1


async def test_two_runners_over_200_due_decisions_send_each_mail_once(
    runtime: Runtime, ws: Workspace, sink: SmtpSink, migrated_url: str, tmp_path: Path
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws, kind="transactional")
    ids = []
    for i in range(200):
        cid = await contact(runtime, ws, f"c{i}@shop.test", name=f"C{i}")
        ids.append((await start(runtime, tp, cid, key=f"k{i}")).decision_id)
    other = make_runtime(migrated_url, tmp_path / "other")
    assert isinstance(other.clock, type(runtime.clock))
    try:
        first, second = DecisionRunner(runtime, batch=7), DecisionRunner(other, batch=7)

        async def drain(runner: DecisionRunner) -> None:
            while (await runner.process_batch()).claimed:
                await asyncio.sleep(0)

        await asyncio.gather(drain(first), drain(second))
        assert first.processed + second.processed == 200
        await asyncio.gather(
            _deliver_all(runtime),
            _deliver_all(other),
        )
    finally:
        await other.close()

    rows = [await decision(runtime, i) for i in ids]
    assert {r.state for r in rows} == {"sent"}
    recipients = sorted(r for m in sink.received for r in m.rcpt_tos)
    assert recipients == sorted(f"c{i}@shop.test" for i in range(200))
    assert len(await fetch_all(runtime, sa.select(t.touch_ledger))) == 200


async def test_a_reply_to_a_touch_reopens_its_conversation_in_the_timeline(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    cid = await contact(runtime, ws, "ann@shop.test", name="Ann")
    started = await start(runtime, tp, cid)
    await process(runtime)
    await _deliver_all(runtime)
    [received] = sink.received
    sent = email.message_from_bytes(received.data, policy=email.policy.default)
    row = await decision(runtime, started.decision_id)
    conv_id = (
        await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == row.message_id))
    ).conversation_id

    answer = mail(
        sender="Ann <ann@shop.test>",
        to=str(sent["Reply-To"]),
        subject=f"Re: {sent['Subject']}",
        in_reply_to=sent["Message-ID"],
        references=sent["Message-ID"],
        text="Is the blue one still in stock?",
    )
    outcome = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=answer,
        source="smtp",
        envelope_to=[str(sent["Reply-To"])],
    )

    assert (outcome.status, outcome.conversation_id) == ("stored", conv_id)
    conv = await fetch_one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == conv_id)
    )
    assert conv.status == "open" and conv.contact_id == cid


async def test_a_bounce_after_the_server_took_the_mail_fails_the_sent_touch(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, await contact(runtime, ws, "gone@shop.test"))
    await process(runtime)
    await _deliver_all(runtime)
    assert (await decision(runtime, started.decision_id)).state == "sent"
    [received] = sink.received
    ours = email.message_from_bytes(received.data, policy=email.policy.default)
    report = (
        "From: MAILER-DAEMON@shop.test\r\n"
        f"To: {received.mail_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@shop.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.shop.test\r\n\r\n"
        "Final-Recipient: rfc822; gone@shop.test\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ours['Message-ID']}\r\n"
        "--b--\r\n"
    ).encode()

    bounced = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=report,
        source="smtp",
        envelope_from="",
    )

    assert bounced.status == "bounce"
    row = await decision(runtime, started.decision_id)
    assert row.state == "failed" and row.reason.startswith("bounced: 5.1.1")
