"""Agent replies by email through the outbox to a real SMTP server
(aiosmtpd, tests/services/smtp.py): the exact bytes, the threading
headers, retries, failures, and the customer's answer coming back into
the same conversation. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connectors.email.render import render_email
from server.actions.context import perform
from server.actions.inboxes import do_update_inbox
from server.actions.outbound_email import do_claim_outbox
from server.clock import FrozenClock
from server.domain.actors import system_actor
from server.domain.email_tokens import parse_message_id_token, parse_reply_address
from server.email.config import mail_identity
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.email_delivery import EmailDelivery
from tests.email.mails import mail
from tests.email.test_inbound_email import post
from tests.services.smtp import SmtpSink
from tests.services.tls import TestCA
from tests.support import Workspace, events_since, fetch_all, fetch_one, last_event_id


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as s:
        yield s


async def use_sink(runtime: Runtime, ws: Workspace, sink: SmtpSink, **smtp: Any) -> None:
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.other_inbox_id,
        settings={
            "address": "billing@acme.test",
            "from_name": "Acme Billing",
            "smtp": {"host": sink.host, "port": sink.port, "security": "none", **smtp},
        },
        box=runtime.secrets,
    )


async def received(sink: SmtpSink, count: int) -> list[Any]:
    return await asyncio.to_thread(sink.wait_for, count)


async def test_a_reply_goes_out_once_with_headers_that_continue_the_thread(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, sink: SmtpSink
) -> None:
    await use_sink(runtime, ws, sink)
    first = await post(
        admin_client,
        ws.other_inbox_id,
        mail(
            message_id="<q1@customer.test>",
            references="<older@customer.test>",
            cc="Sam Colleague <sam@customer.test>, billing@acme.test",
            to="billing@acme.test",
        ),
    )
    conversation_id = first["conversation_id"]
    defaults = await admin_client.get(f"/api/v1/conversations/{conversation_id}/email_defaults")
    assert defaults.json() == {
        "to": ["pat@customer.test"],
        "cc": ["sam@customer.test"],  # reply to all, but never to ourselves
        "subject": "Re: Where is my order?",
        "suppressed": [],
    }
    res = await admin_client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "It ships today.\n.\nAlex"},
    )
    assert res.status_code == 201, res.text
    reply_id = res.json()["id"]
    assert res.json()["delivery_status"] == "pending"
    assert res.json()["email"]["to"] == [{"name": "", "address": "pat@customer.test"}]

    delivery = EmailDelivery(runtime)
    [job] = await perform(runtime, system_actor(0), do_claim_outbox)
    expected = render_email(await delivery.compose(job))
    # A crash after the server took the mail and before it was recorded:
    # the lease runs out, the row is claimed again, the same bytes go out.
    outcome, _ = await delivery.attempt(job)
    assert outcome.status == "sent"
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(minutes=6)
    before = await last_event_id(runtime)
    assert await delivery.deliver_due() == 1
    [one, two] = await received(sink, 2)
    assert one.data == two.data == expected

    parsed = email.message_from_bytes(one.data, policy=email.policy.default)
    ident = mail_identity(runtime.settings)
    claims = parse_message_id_token(parsed["Message-ID"], ident.keys)
    assert claims is not None and claims.conversation_id == conversation_id
    assert claims.message_ref == reply_id
    assert parsed["In-Reply-To"] == "<q1@customer.test>"
    assert parsed["References"] == "<older@customer.test> <q1@customer.test>"
    assert parsed["Subject"] == "Re: Where is my order?"
    assert parsed["From"] == "Ada Admin at Acme Billing <billing@acme.test>"
    assert parsed["To"] == "pat@customer.test" and parsed["Cc"] == "sam@customer.test"
    reply_to = parsed["Reply-To"].addresses[0].addr_spec
    reply_claims = parse_reply_address(reply_to, ident.keys)
    assert reply_claims is not None and reply_claims.conversation_id == conversation_id
    assert one.mail_from == reply_to  # bounces come back to the listener
    assert sorted(one.rcpt_tos) == ["pat@customer.test", "sam@customer.test"]
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == (
        "It ships today.\n.\nAlex"
    )

    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == reply_id))
    assert msg.delivery_status == "sent" and msg.email_message_id == parsed["Message-ID"]
    assert [k for k, _ in await events_since(runtime, before)] == ["message.delivery_changed"]
    outbox = await fetch_all(runtime, sa.select(t.outbox))
    assert [(r.status, r.attempts) for r in outbox] == [("sent", 2)]  # two claims

    # The customer answers the mail they got: it joins the conversation.
    answer = mail(
        to=reply_to,
        subject=f"Re: {parsed['Subject']}",
        message_id="<q2@customer.test>",
        in_reply_to=parsed["Message-ID"],
        references=f"{parsed['References']} {parsed['Message-ID']}",
    )
    back = await post(admin_client, ws.other_inbox_id, answer)
    assert back["conversation_id"] == conversation_id
    stored = await fetch_one(
        runtime, sa.select(t.messages).where(t.messages.c.id == back["message_id"])
    )
    assert stored.email["thread"]["reason"] == "reply_address"


async def test_a_colleague_replying_into_the_thread_is_copied_never_put_in_the_customers_place(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, sink: SmtpSink
) -> None:
    await use_sink(runtime, ws, sink)
    delivery = EmailDelivery(runtime)
    first = await post(
        admin_client,
        ws.other_inbox_id,
        mail(
            message_id="<c1@customer.test>",
            to="billing@acme.test",
            cc="Sam Colleague <sam@customer.test>",
        ),
    )
    conversation_id = first["conversation_id"]
    url = f"/api/v1/conversations/{conversation_id}"
    res = await admin_client.post(f"{url}/messages", json={"text": "Which order?"})
    assert res.status_code == 201, res.text
    assert await delivery.deliver_due() == 1
    [ours] = await received(sink, 1)
    sent = email.message_from_bytes(ours.data, policy=email.policy.default)

    # Sam answers our mail (reply to all, with a Reply-To of his own): one-
    # to-one mail, so it joins, flagged; Pat is still the customer.
    answer = mail(
        sender="Sam Colleague <sam@customer.test>",
        to=sent["Reply-To"],
        cc="Pat Doe <pat@customer.test>",
        subject=f"Re: {sent['Subject']}",
        message_id="<c2@customer.test>",
        in_reply_to=sent["Message-ID"],
        references=f"{sent['References']} {sent['Message-ID']}",
        headers={"Reply-To": "Sam at home <sam@home.test>"},
    )
    back = await post(admin_client, ws.other_inbox_id, answer)
    assert back["conversation_id"] == conversation_id
    joined = await fetch_one(
        runtime, sa.select(t.messages).where(t.messages.c.id == back["message_id"])
    )
    assert joined.email["thread"]["flags"] == ["different_sender"]
    defaults = (await admin_client.get(f"{url}/email_defaults")).json()
    assert (defaults["to"], defaults["cc"]) == (["pat@customer.test"], ["sam@home.test"])
    assert defaults["subject"] == "Re: Where is my order?"

    # The next reply, left to the defaults, reaches both, Pat in To.
    res = await admin_client.post(f"{url}/messages", json={"text": "Order #1042 ships today."})
    assert res.status_code == 201, res.text
    assert res.json()["email"]["to"] == [{"name": "", "address": "pat@customer.test"}]
    assert res.json()["email"]["cc"] == [{"name": "", "address": "sam@home.test"}]
    assert await delivery.deliver_due() == 1
    second = (await received(sink, 2))[1]
    parsed = email.message_from_bytes(second.data, policy=email.policy.default)
    assert (parsed["To"], parsed["Cc"]) == ("pat@customer.test", "sam@home.test")
    assert sorted(second.rcpt_tos) == ["pat@customer.test", "sam@home.test"]
    assert parsed["In-Reply-To"] == "<c2@customer.test>"  # the thread goes on from Sam's

    # When Pat writes again, the reply goes back to Pat as before.
    again = mail(
        to=sent["Reply-To"],
        message_id="<c3@customer.test>",
        in_reply_to=parsed["Message-ID"],
        subject="Re: Where is my order?",
    )
    assert (await post(admin_client, ws.other_inbox_id, again))["conversation_id"] == (
        conversation_id
    )
    defaults = (await admin_client.get(f"{url}/email_defaults")).json()
    assert (defaults["to"], defaults["cc"]) == (["pat@customer.test"], [])


async def test_someone_else_in_a_conversation_of_their_own_is_answered_as_its_customer(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    await post(admin_client, ws.other_inbox_id, mail(message_id="<d1@customer.test>"))
    # An unsigned stored Message-ID proves nothing about Sam: his mail
    # opens a conversation of its own (flagged, linked), where he is the
    # customer and his Reply-To is where the answer goes.
    sams = mail(
        sender="Sam <sam@customer.test>",
        message_id="<d2@customer.test>",
        in_reply_to="<d1@customer.test>",
        headers={"Reply-To": "sam@home.test"},
    )
    out = await post(admin_client, ws.other_inbox_id, sams)
    msg = await fetch_one(
        runtime, sa.select(t.messages).where(t.messages.c.id == out["message_id"])
    )
    assert msg.email["thread"]["reason"] == "new_different_sender"
    assert msg.email["thread"]["flags"] == ["different_sender"]
    url = f"/api/v1/conversations/{out['conversation_id']}/email_defaults"
    assert (await admin_client.get(url)).json()["to"] == ["sam@home.test"]


async def test_temporary_failures_retry_with_backoff_and_permanent_ones_fail_with_the_reason(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, sink: SmtpSink
) -> None:
    await use_sink(runtime, ws, sink)
    first = await post(admin_client, ws.other_inbox_id, mail(to="billing@acme.test"))
    url = f"/api/v1/conversations/{first['conversation_id']}/messages"
    reply = (await admin_client.post(url, json={"text": "Checking."})).json()
    delivery = EmailDelivery(runtime)
    sink.fail_next("rcpt", 451, "4.3.0 Try again later")
    assert await delivery.deliver_due() == 1
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == reply["id"]))
    assert msg.delivery_status == "pending"
    assert msg.delivery_error is not None and "451" in msg.delivery_error
    # Not due yet: nothing is tried until the backoff has passed.
    assert await delivery.deliver_due() == 0
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(seconds=31)
    assert await delivery.deliver_due() == 1
    await received(sink, 1)
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == reply["id"]))
    assert (msg.delivery_status, msg.delivery_error) == ("sent", None)

    second = (await admin_client.post(url, json={"text": "Again."})).json()
    sink.fail_next("rcpt", 550, "5.1.1 No such user")
    assert await delivery.deliver_due() == 1
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == second["id"]))
    assert msg.delivery_status == "failed"
    assert msg.delivery_error is not None and "5.1.1 No such user" in msg.delivery_error
    runtime.clock.advance(hours=2)
    assert await delivery.deliver_due() == 0  # failed stays failed


def delivery_report(to: str, ours: Any, *, action: str, status: str) -> bytes:
    """An RFC 3464 delivery status notification about our mail `ours`."""
    return (
        "From: MAILER-DAEMON@customer.test\r\n"
        f"To: {to}\r\n"
        "Subject: Delivery Status Notification\r\n"
        f"Message-ID: <dsn-{action}-{status}@customer.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery report.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        "Final-Recipient: rfc822; pat@customer.test\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {status} mailbox trouble\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {ours['Message-ID']}\r\nSubject: {ours['Subject']}\r\n"
        "--b--\r\n"
    ).encode()


async def test_a_bounce_marks_the_reply_failed_and_suppresses_the_address(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, sink: SmtpSink
) -> None:
    await use_sink(runtime, ws, sink)
    first = await post(admin_client, ws.other_inbox_id, mail(to="billing@acme.test"))
    url = f"/api/v1/conversations/{first['conversation_id']}/messages"
    reply = (await admin_client.post(url, json={"text": "Here you go."})).json()
    await EmailDelivery(runtime).deliver_due()
    [sent] = await received(sink, 1)
    ours = email.message_from_bytes(sent.data, policy=email.policy.default)
    report = delivery_report(sent.mail_from, ours, action="failed", status="5.1.1")
    before = await last_event_id(runtime)
    out = await post(admin_client, ws.other_inbox_id, report)
    assert out["status"] == "bounce" and out["message_id"] is None
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == reply["id"]))
    assert msg.delivery_status == "failed"
    assert msg.delivery_error is not None and "5.1.1" in msg.delivery_error
    assert [k for k, _ in await events_since(runtime, before)] == [
        "message.delivery_changed",
        "email.suppressed",
    ]
    res = await admin_client.post(url, json={"text": "Are you there?"})
    assert res.status_code == 422
    assert res.json()["error"]["field"] == "to[0]"
    assert "pat@customer.test" in res.json()["error"]["message"]
    # Another address still works.
    res = await admin_client.post(url, json={"text": "Hi", "to": ["pat@other.test"]})
    assert res.status_code == 201, res.text


async def test_recipients_are_checked_by_field_and_notes_send_nothing(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    first = await post(admin_client, ws.other_inbox_id, mail())
    url = f"/api/v1/conversations/{first['conversation_id']}/messages"
    res = await admin_client.post(url, json={"text": "x", "cc": ["ok@a.test", "not an address"]})
    assert res.status_code == 422 and res.json()["error"]["field"] == "cc[1]"
    res = await admin_client.post(url, json={"text": "internal", "private": True})
    assert res.status_code == 201
    res = await admin_client.post(url, json={"text": "x", "private": True, "to": ["a@b.test"]})
    assert res.status_code == 422 and res.json()["error"]["field"] == "to"
    # A chat conversation takes no recipients.
    res = await admin_client.post(
        f"/api/v1/conversations/{ws.conversation_id}/messages",
        json={"text": "x", "cc": ["a@b.test"]},
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "cc"
    assert await fetch_all(runtime, sa.select(t.outbox)) == []


async def test_per_inbox_credentials_are_encrypted_and_used_over_starttls(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = TestCA.create(tmp_path / "ca")
    # The sender trusts the system's CAs: point them at the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_cert))
    with SmtpSink.start(tls="starttls", ca=ca, auth=("billing", "s3cret pass")) as tls_sink:
        res = await admin_client.patch(
            f"/api/v1/inboxes/{ws.other_inbox_id}",
            json={
                "settings": {
                    "address": "billing@acme.test",
                    "smtp": {
                        "host": "localhost",
                        "port": tls_sink.port,
                        "security": "starttls",
                        "username": "billing",
                        "password": "s3cret pass",
                    },
                }
            },
        )
        assert res.status_code == 200, res.text
        # Only whether a password is set is shown, never the password.
        assert "s3cret" not in res.text
        assert res.json()["settings"]["smtp"]["password_set"] is True
        row = await fetch_one(
            runtime, sa.select(t.inboxes).where(t.inboxes.c.id == ws.other_inbox_id)
        )
        assert "s3cret" not in str(row.settings) and "s3cret" not in (row.secret_encrypted or "")
        first = await post(admin_client, ws.other_inbox_id, mail())
        url = f"/api/v1/conversations/{first['conversation_id']}/messages"
        await admin_client.post(url, json={"text": "Secure hello"})
        assert await EmailDelivery(runtime).deliver_due() == 1
        [got] = await received(tls_sink, 1)
        assert got.tls is True and got.login == "billing"


async def test_a_reply_carries_its_attachments(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, sink: SmtpSink
) -> None:
    await use_sink(runtime, ws, sink)
    first = await post(admin_client, ws.other_inbox_id, mail(to="billing@acme.test"))
    pdf = b"%PDF-1.4\n% an invoice\n"
    upload = await admin_client.post(
        f"/api/v1/inboxes/{ws.other_inbox_id}/attachments",
        params={"filename": "Rechnung März.pdf"},
        content=pdf,
        headers={"content-type": "application/pdf"},
    )
    assert upload.status_code == 201, upload.text
    res = await admin_client.post(
        f"/api/v1/conversations/{first['conversation_id']}/messages",
        json={
            "text": "Your invoice is attached.",
            "attachment_ids": [upload.json()["attachment"]["id"]],
        },
    )
    assert res.status_code == 201, res.text
    assert await EmailDelivery(runtime).deliver_due() == 1
    [got] = await received(sink, 1)
    parsed = email.message_from_bytes(got.data, policy=email.policy.default)
    [part] = list(parsed.iter_attachments())
    assert part.get_filename() == "Rechnung März.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == pdf


async def test_a_reply_some_recipients_refused_is_sent_and_says_who_missed_it(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, sink: SmtpSink
) -> None:
    await use_sink(runtime, ws, sink)
    first = await post(
        admin_client, ws.other_inbox_id, mail(to="billing@acme.test", cc="gone@customer.test")
    )
    res = await admin_client.post(
        f"/api/v1/conversations/{first['conversation_id']}/messages", json={"text": "Noted."}
    )
    sink.fail_next("rcpt", 550, "5.1.1 No such user", address="gone@customer.test")
    assert await EmailDelivery(runtime).deliver_due() == 1
    [got] = await received(sink, 1)
    assert got.rcpt_tos == ("pat@customer.test",)
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == res.json()["id"]))
    assert msg.delivery_status == "sent"
    assert msg.delivery_error is not None and "gone@customer.test" in msg.delivery_error


async def test_an_idle_delivery_round_opens_no_write_transaction(
    runtime: Runtime, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = 0
    real_write = runtime.db.write

    def counting_write() -> Any:
        nonlocal writes
        writes += 1
        return real_write()

    monkeypatch.setattr(runtime.db, "write", counting_write)
    assert await EmailDelivery(runtime).deliver_due() == 0
    assert writes == 0  # the worker polls every second: on SQLite a write would lock


async def test_a_delay_report_changes_nothing_the_sender_still_retries(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, sink: SmtpSink
) -> None:
    await use_sink(runtime, ws, sink)
    first = await post(admin_client, ws.other_inbox_id, mail(to="billing@acme.test"))
    url = f"/api/v1/conversations/{first['conversation_id']}/messages"
    reply = (await admin_client.post(url, json={"text": "Here you go."})).json()
    await EmailDelivery(runtime).deliver_due()
    [sent] = await received(sink, 1)
    ours = email.message_from_bytes(sent.data, policy=email.policy.default)
    before = await last_event_id(runtime)
    report = delivery_report(sent.mail_from, ours, action="delayed", status="4.4.1")
    out = await post(admin_client, ws.other_inbox_id, report)
    assert out["status"] == "bounce" and "delayed" in out["reason"]
    msg = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == reply["id"]))
    assert (msg.delivery_status, msg.delivery_error) == ("sent", None)
    assert await fetch_all(runtime, sa.select(t.email_suppressions)) == []
    assert await events_since(runtime, before) == []
