"""Offline chat continuity (F2): a widget reply the visitor has not seen
within the inbox's `continuity_email_after_minutes` is emailed to them,
once, through the outbox to a real SMTP server (aiosmtpd), and their
answer by mail comes back into the same conversation and the widget. On
SQLite and PostgreSQL.

The widget inbox has no SMTP settings of its own: mail goes through the
server-wide relay, THREADLINE_SMTP_URL, set here the way an operator
sets it (the runtime's settings are read from the environment)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.actions.chat_continuity import do_queue_continuity_email
from server.actions.contacts import IdentityInput, do_add_contact_identity
from server.actions.context import ActionContext, perform
from server.actions.email_bounces import suppress_address
from server.actions.inboxes import do_update_inbox
from server.actions.outbound_email import do_claim_outbox
from server.actions.reads import do_mark_read_by_visitor
from server.clock import FrozenClock
from server.domain.actors import system_actor
from server.domain.email_tokens import parse_message_id_token, parse_reply_address
from server.domain.values import IdentityKind
from server.email.config import mail_identity
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.queries.reading import read
from server.queries.visitors import visitor_session_for_token
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.chat_continuity import ChatContinuity, queue_continuity_emails
from server.workers.email_delivery import EmailDelivery
from tests.api.test_attachments import PNG, uploaded
from tests.email.mails import mail
from tests.services.smtp import SmtpSink
from tests.support import Workspace, client, events_since, fetch_all, fetch_one, make_runtime
from tests.support import last_event_id as last_event

W = "/api/v1/widget"
HEADER = "X-Widget-Session"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as s:
        yield s


@pytest.fixture
async def runtime(migrated_url: str, tmp_path: Path, sink: SmtpSink) -> AsyncIterator[Runtime]:
    """The suite's runtime, with the server-wide relay pointing at `sink`."""
    rt = make_runtime(
        migrated_url,
        tmp_path / "data",
        THREADLINE_SMTP_URL=f"smtp://{sink.host}:{sink.port}?security=none",
    )
    yield rt
    await rt.close()


@pytest.fixture
async def browser(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime) as c:
        yield c


def clock(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


async def turn_on(runtime: Runtime, ws: Workspace, minutes: int | None = 10, **more: Any) -> None:
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.inbox_id,
        settings={"continuity_email_after_minutes": minutes, **more},
    )


class Visitor:
    """A visitor in the widget of `ws.inbox_id`, through the widget's REST API."""

    def __init__(self, runtime: Runtime, browser: httpx.AsyncClient, token: str) -> None:
        self.runtime, self.browser, self.token = runtime, browser, token
        self.conversation_id = 0
        self.sent = 0

    @classmethod
    async def start(
        cls, runtime: Runtime, browser: httpx.AsyncClient, ws: Workspace, **identify: str
    ) -> Visitor:
        row = await fetch_one(runtime, sa.select(t.inboxes).where(t.inboxes.c.id == ws.inbox_id))
        res = await browser.post(f"{W}/sessions", json={"inbox_token": row.public_token})
        assert res.status_code == 201, res.text
        visitor = cls(runtime, browser, res.json()["session_token"])
        if identify:  # the pre-chat form: a name and an address, unverified
            res = await browser.post(f"{W}/identify", json=identify, headers=visitor.headers)
            assert res.status_code == 200, res.text
            assert res.json()["verified"] is False
        return visitor

    @property
    def headers(self) -> dict[str, str]:
        return {HEADER: self.token}

    async def say(self, text: str) -> int:
        self.sent += 1
        res = await self.browser.post(
            f"{W}/messages",
            json={"text": text, "client_id": f"c{self.sent}"},
            headers=self.headers,
        )
        assert res.status_code == 201, res.text
        message = res.json()["message"]
        self.conversation_id = message["conversation_id"]
        return int(message["seq"])

    async def read_up_to(self, seq: int) -> None:
        session = await read(self.runtime, visitor_session_for_token, self.token)
        assert session is not None
        await perform(
            self.runtime,
            system_actor(session.workspace_id),
            do_mark_read_by_visitor,
            session_id=session.session_id,
            conversation_id=self.conversation_id,
            seq=seq,
        )

    async def contact_id(self) -> int:
        session = await read(self.runtime, visitor_session_for_token, self.token)
        assert session is not None
        return session.contact_id

    async def widget(self) -> dict[str, Any]:
        res = await self.browser.get(f"{W}/conversation", headers=self.headers)
        assert res.status_code == 200, res.text
        body: dict[str, Any] = res.json()
        return body


async def reply(
    c: httpx.AsyncClient, conversation_id: int, text: str, **extra: Any
) -> dict[str, Any]:
    res = await c.post(
        f"/api/v1/conversations/{conversation_id}/messages", json={"text": text, **extra}
    )
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


async def received(sink: SmtpSink, count: int) -> list[Any]:
    return await asyncio.to_thread(sink.wait_for, count)


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body_text(parsed: EmailMessage) -> str:
    part = parsed.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


async def outbox(runtime: Runtime) -> list[sa.Row[Any]]:
    return await fetch_all(runtime, sa.select(t.outbox).order_by(t.outbox.c.id))


async def message_row(runtime: Runtime, message_id: int) -> sa.Row[Any]:
    return await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == message_id))


async def test_unseen_replies_are_emailed_once_and_the_answer_lands_in_the_chat(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sink: SmtpSink,
) -> None:
    await turn_on(runtime, ws, 10)
    pat = await Visitor.start(runtime, browser, ws, name="Pat", email="Pat@Customer.test")
    await pat.say("Where is my order #1042?")
    conversation_id = pat.conversation_id
    first = await reply(admin_client, conversation_id, "It ships today.")
    await reply(admin_client, conversation_id, "Pat wrote from a new address", private=True)
    clock(runtime).advance(minutes=3)
    second = await reply(agent_client, conversation_id, "Tracking: https://track.test/1042")

    # Seven minutes after the first reply: not due yet.
    clock(runtime).advance(minutes=6, seconds=59)
    assert await queue_continuity_emails(runtime) == 0
    clock(runtime).advance(seconds=1)
    before = await last_event(runtime)
    assert await queue_continuity_emails(runtime) == 1
    assert await queue_continuity_emails(runtime) == 0  # decided once
    assert await events_since(runtime, before) == []  # the outcome is what is announced
    [row] = await outbox(runtime)
    assert (row.channel, row.status, row.stable_id) == (
        "email",
        "pending",
        f"continuity:{second['id']}",
    )
    assert row.message_id == second["id"]
    assert row.payload["message_ids"] == [first["id"], second["id"]]
    assert row.payload["email"]["to"] == [{"name": "", "address": "pat@customer.test"}]
    assert (row.payload["address_source"], row.payload["address_verified"]) == ("attribute", False)

    before = await last_event(runtime)
    assert await EmailDelivery(runtime).deliver_due() == 1
    [got] = await received(sink, 1)
    assert got.rcpt_tos == ("pat@customer.test",)
    parsed = parse(got.data)
    ident = mail_identity(runtime.settings)
    assert parsed["To"] == "pat@customer.test"
    assert parsed["From"] == f"Website <support@{ident.domain}>"  # two agents: the team
    assert parsed["Subject"] == "2 new replies from Website"
    assert parsed["Auto-Submitted"] == "auto-generated"
    reply_to = parsed["Reply-To"].addresses[0].addr_spec
    claims = parse_reply_address(reply_to, ident.keys)
    assert claims is not None
    assert (claims.inbox_id, claims.conversation_id) == (ws.inbox_id, conversation_id)
    assert got.mail_from == reply_to  # a bounce comes back to this conversation
    msgid = parse_message_id_token(parsed["Message-ID"], ident.keys)
    assert msgid is not None and msgid.conversation_id == conversation_id
    text = body_text(parsed)
    assert "Ada Admin wrote:\nIt ships today." in text
    assert "Gus Agent wrote:\nTracking: https://track.test/1042" in text
    assert text.index("It ships today.") < text.index("Tracking:")
    assert "new address" not in text  # never a private note
    assert "#1042?" not in text  # never the visitor's own words
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None and 'href="https://track.test/1042"' in str(html.get_content())

    # The chat messages keep their own delivery state; the outbox row and
    # one event say how the mail went.
    for sent_reply in (first, second):
        msg = await message_row(runtime, sent_reply["id"])
        assert (msg.delivery_status, msg.email_message_id) == (sent_reply["delivery_status"], None)
    [(kind, event)] = await events_since(runtime, before)
    assert kind == "message.emailed"
    assert event["message_ids"] == [first["id"], second["id"]]
    assert (event["status"], event["error"], event["address"]) == (
        "sent",
        None,
        "pat@customer.test",
    )
    assert (event["conversation_id"], event["inbox_id"]) == (conversation_id, ws.inbox_id)
    [row] = await outbox(runtime)
    assert row.status == "sent" and row.payload["sent_message_id"] == parsed["Message-ID"]

    # Pat answers from their mail client, quoting our mail.
    answer = mail(
        sender="Pat <pat@customer.test>",
        to=reply_to,
        subject=f"Re: {parsed['Subject']}",
        message_id="<answer1@customer.test>",
        in_reply_to=parsed["Message-ID"],
        references=parsed["Message-ID"],
        text="Thanks! Can it go to my office instead?\n\n"
        "On Mon, Jan 5, 2026 at 9:10 AM Website wrote:\n> It ships today.\n",
    )
    outcome = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.inbox_id,
        raw=answer,
        source="smtp",
        envelope_to=[reply_to],
    )
    assert (outcome.status, outcome.conversation_id) == ("stored", conversation_id)
    assert outcome.message_id is not None
    stored = await message_row(runtime, outcome.message_id)
    assert stored.text == "Thanks! Can it go to my office instead?"
    assert stored.email["thread"]["reason"] == "reply_address"
    # The typed address is not one of the contact's identities: the agent
    # sees the reply flagged, as any unproven sender is.
    assert stored.email["thread"]["flags"] == ["different_sender"]
    view = await pat.widget()
    assert view["conversation"]["id"] == conversation_id
    last = view["messages"][-1]
    assert (last["id"], last["direction"], last["sender_kind"]) == (
        outcome.message_id,
        "inbound",
        "contact",
    )
    assert last["text"] == "Thanks! Can it go to my office instead?"
    assert await queue_continuity_emails(runtime) == 0

    # The next unseen reply goes in a new mail that continues the thread.
    third = await reply(admin_client, conversation_id, "Sure, changed.")
    clock(runtime).advance(minutes=10)
    assert await queue_continuity_emails(runtime) == 1
    assert await EmailDelivery(runtime).deliver_due() == 1
    [_, got2] = await received(sink, 2)
    parsed2 = parse(got2.data)
    assert parsed2["Subject"] == "New reply from Ada Admin at Website"
    assert parsed2["From"] == f"Ada Admin at Website <support@{ident.domain}>"
    assert parsed2["In-Reply-To"] == parsed["Message-ID"]
    assert parsed2["Message-ID"] != parsed["Message-ID"]
    assert "Sure, changed." in body_text(parsed2) and "It ships today" not in body_text(parsed2)
    rows = await outbox(runtime)
    assert [r.payload["message_ids"] for r in rows] == [
        [first["id"], second["id"]],
        [third["id"]],
    ]


async def test_seen_replies_notes_and_young_replies_are_not_emailed(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sink: SmtpSink,
) -> None:
    await turn_on(runtime, ws, 5)
    ann = await Visitor.start(runtime, browser, ws, email="ann@customer.test")
    await ann.say("Hello?")
    seen = await reply(admin_client, ann.conversation_id, "Hi Ann!")
    await ann.read_up_to(seen["seq"])
    await reply(admin_client, ann.conversation_id, "Internal: VIP", private=True)

    bob = await Visitor.start(runtime, browser, ws, email="bob@customer.test")
    await bob.say("Hello?")
    await reply(admin_client, bob.conversation_id, "Hi Bob!")
    await bob.say("Thanks, got it")  # typed in the chat after the reply: seen

    cat = await Visitor.start(runtime, browser, ws, email="cat@customer.test")
    await cat.say("Hello?")
    clock(runtime).advance(minutes=5)
    young = await reply(admin_client, cat.conversation_id, "Hi Cat!")

    clock(runtime).advance(minutes=4, seconds=59)
    assert await queue_continuity_emails(runtime) == 0
    assert await outbox(runtime) == []
    clock(runtime).advance(seconds=1)
    assert await queue_continuity_emails(runtime) == 1
    [row] = await outbox(runtime)
    assert row.payload["message_ids"] == [young["id"]]
    assert row.payload["email"]["to"][0]["address"] == "cat@customer.test"
    # Read in the chat after the mail was queued but before it went out:
    # not sent late, and the reply is not picked again.
    await cat.read_up_to(young["seq"])
    assert await EmailDelivery(runtime).deliver_due() == 0
    [row] = await outbox(runtime)
    assert row.status == "cancelled" and "read these replies" in (row.last_error or "")
    assert await queue_continuity_emails(runtime) == 0
    assert sink.received == []


async def test_no_address_the_setting_off_or_too_late_queue_nothing(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
) -> None:
    anonymous = await Visitor.start(runtime, browser, ws)
    await anonymous.say("Hi, just browsing")
    await reply(admin_client, anonymous.conversation_id, "Let us know!")
    typed = await Visitor.start(runtime, browser, ws, email="dan@customer.test")
    await typed.say("Hello")
    late = await reply(admin_client, typed.conversation_id, "Hi Dan")

    clock(runtime).advance(minutes=30)
    assert await queue_continuity_emails(runtime) == 0  # off: no setting, no default
    await turn_on(runtime, ws, 10)
    # Turned on long after the reply fell due: too late to mail about it.
    clock(runtime).advance(hours=24)
    assert await queue_continuity_emails(runtime) == 0
    assert await outbox(runtime) == []
    # The anonymous visitor has no address: nothing queued, nothing fails.
    result = await perform(
        runtime,
        ws.system,
        do_queue_continuity_email,
        conversation_id=anonymous.conversation_id,
    )
    assert result is None
    assert (await message_row(runtime, late["id"])).delivery_status == late["delivery_status"]

    await reply(admin_client, typed.conversation_id, "Still there?")
    clock(runtime).advance(minutes=10)
    await turn_on(runtime, ws, None)  # off again
    assert await queue_continuity_emails(runtime) == 0
    await turn_on(runtime, ws, 10)
    assert await queue_continuity_emails(runtime) == 1


async def test_verified_address_first_suppressed_ones_skipped_and_strict_inboxes(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
) -> None:
    await turn_on(runtime, ws, 10)
    eve = await Visitor.start(runtime, browser, ws, email="eve-typed@customer.test")
    await eve.say("Hello")
    await perform(
        runtime,
        ws.system,
        do_add_contact_identity,
        contact_id=await eve.contact_id(),
        identity=IdentityInput(IdentityKind.EMAIL, "eve@verified.test", verified=True),
    )
    await reply(admin_client, eve.conversation_id, "Hi Eve")
    fay = await Visitor.start(runtime, browser, ws, email="fay@customer.test")
    await fay.say("Hello")
    await reply(admin_client, fay.conversation_id, "Hi Fay")
    await perform(
        runtime, ws.system, suppress_address, inbox_id=None, address="fay@customer.test", reason="x"
    )
    clock(runtime).advance(minutes=10)
    await turn_on(runtime, ws, 10, require_verification=True)
    assert await queue_continuity_emails(runtime) == 1  # Eve's verified address only
    await turn_on(runtime, ws, 10, require_verification=False)
    assert await queue_continuity_emails(runtime) == 0  # Fay's only address is suppressed
    [row] = await outbox(runtime)
    assert row.payload["email"]["to"] == [{"name": "", "address": "eve@verified.test"}]
    assert (row.payload["address_source"], row.payload["address_verified"]) == ("identity", True)


async def test_concurrent_rounds_queue_one_mail_and_a_crash_queues_none(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
) -> None:
    await turn_on(runtime, ws, 10)
    gil = await Visitor.start(runtime, browser, ws, email="gil@customer.test")
    await gil.say("Hello")
    await reply(admin_client, gil.conversation_id, "Hi Gil")
    clock(runtime).advance(minutes=10)

    async def crashing(ctx: ActionContext, *, conversation_id: int) -> None:
        queued = await do_queue_continuity_email(ctx, conversation_id=conversation_id)
        assert queued is not None
        raise RuntimeError("the worker died before the commit")

    with pytest.raises(RuntimeError):
        await perform(runtime, ws.system, crashing, conversation_id=gil.conversation_id)
    assert await outbox(runtime) == []

    counts = await asyncio.gather(*(queue_continuity_emails(runtime) for _ in range(4)))
    direct = await asyncio.gather(
        *(
            perform(
                runtime, ws.system, do_queue_continuity_email, conversation_id=gil.conversation_id
            )
            for _ in range(4)
        )
    )
    assert sum(counts) == 1 and direct == [None] * 4
    [row] = await outbox(runtime)
    assert row.stable_id.startswith("continuity:")


async def test_smtp_failures_stay_on_the_outbox_row_and_a_bounce_suppresses(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sink: SmtpSink,
) -> None:
    await turn_on(runtime, ws, 10)
    hal = await Visitor.start(runtime, browser, ws, email="hal@customer.test")
    await hal.say("Hello")
    first = await reply(admin_client, hal.conversation_id, "Hi Hal")
    clock(runtime).advance(minutes=10)
    assert await queue_continuity_emails(runtime) == 1
    delivery = EmailDelivery(runtime)
    before = await last_event(runtime)
    sink.fail_next("rcpt", 451, "4.3.0 Try again later")
    assert await delivery.deliver_due() == 1
    [row] = await outbox(runtime)
    assert row.status == "pending" and "451" in (row.last_error or "")
    assert await events_since(runtime, before) == []  # retries are not announced
    clock(runtime).advance(seconds=31)
    assert await delivery.deliver_due() == 1
    [sent] = await received(sink, 1)
    msg = await message_row(runtime, first["id"])
    assert (msg.delivery_status, msg.delivery_error) == (first["delivery_status"], None)

    # The mail bounces later: the address is suppressed, so the next
    # unseen reply is not mailed to it.
    ours = parse(sent.data)
    report = (
        "From: MAILER-DAEMON@customer.test\r\n"
        f"To: {sent.mail_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-hal@customer.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; hal@customer.test\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ours['Message-ID']}\r\n"
        "--b--\r\n"
    ).encode()
    bounced = await ingest_mail(
        MailIntake.of(runtime), inbox_id=ws.inbox_id, raw=report, source="smtp", envelope_from=""
    )
    assert bounced.status == "bounce"
    msg = await message_row(runtime, first["id"])
    assert msg.delivery_status == first["delivery_status"]  # the chat reply is fine
    await reply(admin_client, hal.conversation_id, "Are you still there?")
    clock(runtime).advance(minutes=10)
    assert await queue_continuity_emails(runtime) == 0

    # A permanent refusal fails the mail, with the reason, once.
    ivy = await Visitor.start(runtime, browser, ws, email="ivy@customer.test")
    await ivy.say("Hello")
    reply_ivy = await reply(admin_client, ivy.conversation_id, "Hi Ivy")
    clock(runtime).advance(minutes=10)
    assert await queue_continuity_emails(runtime) == 1
    before = await last_event(runtime)
    sink.fail_next("rcpt", 550, "5.1.1 No such user")
    assert await delivery.deliver_due() == 1
    [(kind, event)] = await events_since(runtime, before)
    assert kind == "message.emailed"
    assert event["status"] == "failed" and "5.1.1 No such user" in event["error"]
    assert event["message_ids"] == [reply_ivy["id"]]
    msg = await message_row(runtime, reply_ivy["id"])
    assert (msg.delivery_status, msg.delivery_error) == (reply_ivy["delivery_status"], None)
    clock(runtime).advance(hours=1)
    assert await delivery.deliver_due() == 0
    assert await queue_continuity_emails(runtime) == 0


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `check` until it holds (a condition, not a fixed sleep)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def test_the_runner_queues_in_rounds_until_stopped_and_files_go_along(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sink: SmtpSink,
) -> None:
    await turn_on(runtime, ws, 10)
    joe = await Visitor.start(runtime, browser, ws, email="joe@customer.test")
    await joe.say("Hello")
    file = await uploaded(admin_client, ws.inbox_id)
    await reply(admin_client, joe.conversation_id, "Your label", attachment_ids=[file["id"]])
    clock(runtime).advance(minutes=10)
    stop = asyncio.Event()
    task = asyncio.create_task(ChatContinuity(runtime, interval=0.05).run(stop))

    async def queued() -> bool:
        return len(await outbox(runtime)) == 1

    await wait_until(queued)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(await outbox(runtime)) == 1
    assert await EmailDelivery(runtime).deliver_due() == 1
    [got] = await received(sink, 1)
    parsed = parse(got.data)
    assert "Ada Admin wrote:\nYour label\nAttached: shot.png" in body_text(parsed)
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "shot.png"
    assert attachment.get_content() == PNG


async def test_automatic_mail_whose_sending_broke_off_is_unknown_never_resent(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sink: SmtpSink,
) -> None:
    """PROTOCOLS.md P1: an automatic mail is sent at most once. A worker
    that died holding the row, or a connection that broke during DATA,
    leaves it `unknown`; a person's reply would be retried instead."""
    await turn_on(runtime, ws, 10)
    pat = await Visitor.start(runtime, browser, ws, name="Pat", email="pat@customer.test")
    await pat.say("Hello?")
    await reply(admin_client, pat.conversation_id, "Hi Pat!")
    clock(runtime).advance(minutes=11)
    assert await queue_continuity_emails(runtime) == 1
    # A worker claims it and dies before recording anything.
    [_job] = await perform(runtime, system_actor(0), do_claim_outbox)
    clock(runtime).advance(minutes=6)  # its lease has run out
    before = await last_event(runtime)
    assert await EmailDelivery(runtime).deliver_due() == 0
    [row] = await outbox(runtime)
    assert row.status == "unknown" and "not sent again" in row.last_error
    [(kind, event)] = await events_since(runtime, before)
    assert (kind, event["status"]) == ("message.emailed", "unknown")
    assert sink.received == []

    # The connection breaks after DATA was sent: it may have arrived.
    await reply(admin_client, pat.conversation_id, "Still there?")
    clock(runtime).advance(minutes=11)
    assert await queue_continuity_emails(runtime) == 1
    sink.drop_next_connection("data")
    assert await EmailDelivery(runtime).deliver_due() == 1
    newest = (await outbox(runtime))[-1]
    assert newest.status == "unknown" and "may have arrived" in newest.last_error
    clock(runtime).advance(hours=2)
    assert await EmailDelivery(runtime).deliver_due() == 0
