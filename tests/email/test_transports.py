"""Inbound mail through the server's real transports: the built-in SMTP
listener (a real SMTP client sends to it) and IMAP polling of a real IMAP
server (pymap), including a crash between fetching and committing. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import server.actions.inbound_email as inbound_email
from connectors.email.imap_poller import ImapIngestError, poll_once
from connectors.email.smtp_listener import ListenerConfig, SmtpListener
from server.actions.context import perform
from server.actions.inboxes import do_update_inbox
from server.domain.email_settings import mail_settings_of
from server.domain.email_tokens import TokenClaims, make_reply_address
from server.email.accounts import imap_account
from server.email.config import mail_identity
from server.email.imap import InboxMailbox
from server.email.intake import MailIntake
from server.email.listener import listener_config, make_listener
from server.queries.inbox_secrets import inbox_secrets_of
from server.runtime import Runtime
from server.storage import tables as t
from tests.connectors.email.expectations import EXPECTATIONS
from tests.email.mails import mail
from tests.email.test_inbound_email import set_inbox_address
from tests.email.test_sender_addresses import CORPUS, counts
from tests.services.imap import ImapServer
from tests.support import Workspace, fetch_all, fetch_one, make_runtime


@pytest.fixture
async def listener(runtime: Runtime, ws: Workspace) -> AsyncIterator[SmtpListener]:
    await set_inbox_address(runtime, ws, "support@acme.test")
    smtp = make_listener(
        MailIntake.of(runtime), ListenerConfig(port=0, max_message_bytes=1024 * 1024)
    )
    await smtp.start()
    yield smtp
    await smtp.stop()


def send(port: int, raw: bytes, to: list[str], sender: str = "pat@customer.test") -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(sender, to, raw)


async def stored(runtime: Runtime) -> list[sa.Row[Any]]:
    return await fetch_all(runtime, sa.select(t.inbound_mails).order_by(t.inbound_mails.c.id))


async def test_the_listener_takes_mail_for_inbox_and_reply_addresses_only(
    runtime: Runtime, ws: Workspace, listener: SmtpListener
) -> None:
    raw = mail(to="support@acme.test", message_id="<l1@customer.test>")
    refused = await asyncio.to_thread(send, listener.port, raw, ["support@acme.test"])
    assert refused == {}
    [first] = await stored(runtime)
    assert (first.status, first.source, first.envelope_from) == (
        "stored",
        "smtp",
        "pat@customer.test",
    )
    assert first.envelope_to == ["support@acme.test"]
    assert await runtime.blobs.get(first.storage_key) == raw

    # A reply to our signed reply address (no references at all) joins.
    ident = mail_identity(runtime.settings)
    address = make_reply_address(
        TokenClaims(ws.id, ws.other_inbox_id, first.conversation_id),
        key=ident.key,
        domain=ident.domain,
    )
    answer = mail(to=address, subject="hello?", message_id="<l2@customer.test>")
    await asyncio.to_thread(send, listener.port, answer, [address])
    second = (await stored(runtime))[-1]
    assert second.conversation_id == first.conversation_id
    assert second.thread["reason"] == "reply_address"

    # Not a relay: any other recipient is refused before DATA.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused_info:
        await asyncio.to_thread(send, listener.port, raw, ["someone@elsewhere.test"])
    [(code, _)] = refused_info.value.recipients.values()
    assert code == 550
    # A forged token is just an unknown recipient.
    forged = address.replace("reply+", "reply+a", 1)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(send, listener.port, raw, [forged])
    assert len(await stored(runtime)) == 2


async def test_junk_is_accepted_into_quarantine_and_the_next_mail_still_goes_through(
    runtime: Runtime, listener: SmtpListener
) -> None:
    junk = b"".join(b"X-Junk-%d: x\r\n" % i for i in range(1200)) + b"Subject: x\r\n\r\nbody\r\n"
    await asyncio.to_thread(send, listener.port, junk, ["support@acme.test"])
    await asyncio.to_thread(send, listener.port, mail(), ["support@acme.test"])
    assert [r.status for r in await stored(runtime)] == ["quarantined", "stored"]
    # Over the listener's size limit: refused with 552, nothing recorded.
    big = mail(text="x" * (1024 * 1024 + 10))
    with pytest.raises(smtplib.SMTPException) as too_big:
        await asyncio.to_thread(send, listener.port, big, ["support@acme.test"])
    assert "552" in str(too_big.value)
    assert len(await stored(runtime)) == 2


async def test_over_smtp_the_envelope_sender_never_stands_in_for_the_from_address(
    runtime: Runtime, listener: SmtpListener
) -> None:
    before = await counts(runtime)
    raw = (CORPUS / "from_bare_word.eml").read_bytes()
    # MAIL FROM names a real address; the mail itself names none. Accepted
    # (the sender has nothing to retry), quarantined, no contact made.
    refused = await asyncio.to_thread(send, listener.port, raw, ["support@acme.test"])
    assert refused == {}
    [row] = await stored(runtime)
    assert (row.status, row.source, row.envelope_from) == (
        "quarantined",
        "smtp",
        "pat@customer.test",
    )
    assert row.reason == EXPECTATIONS["from_bare_word.eml"]["from_problem"]
    assert row.from_address is None and row.conversation_id is None
    assert await counts(runtime) == before


def test_listener_settings(tmp_path: Path) -> None:
    runtime = make_runtime(
        "sqlite+aiosqlite:///unused.db",
        tmp_path / "data",
        THREADLINE_SMTP_LISTEN="0.0.0.0:2525",
        THREADLINE_MAIL_DOMAIN="Reply.Acme.test",
    )
    config = listener_config(runtime.settings)
    assert config is not None
    assert (config.host, config.port, config.hostname) == ("0.0.0.0", 2525, "reply.acme.test")
    assert config.tls_context is None
    off = make_runtime("sqlite+aiosqlite:///unused.db", tmp_path / "data2")
    assert listener_config(off.settings) is None


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    with ImapServer.start() as server:
        yield server


async def mailbox(runtime: Runtime, ws: Workspace, server: ImapServer) -> InboxMailbox:
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.other_inbox_id,
        settings={
            "imap": {
                "host": server.host,
                "port": server.port,
                "security": "none",
                "username": server.user,
                "password": server.password,
            }
        },
        box=runtime.secrets,
    )
    return InboxMailbox(MailIntake.of(runtime), workspace_id=ws.id, inbox_id=ws.other_inbox_id)


async def account_of(runtime: Runtime, ws: Workspace) -> Any:
    inbox = await fetch_one(
        runtime, sa.select(t.inboxes).where(t.inboxes.c.id == ws.other_inbox_id)
    )
    secrets = inbox_secrets_of(runtime.secrets, inbox.secret_encrypted)
    account = imap_account(mail_settings_of(inbox.settings), secrets)
    assert account is not None
    return account


async def test_imap_polling_ingests_each_mail_once_across_a_crash_before_commit(
    runtime: Runtime, ws: Workspace, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await mailbox(runtime, ws, imap_server)
    account = await account_of(runtime, ws)
    uids = [
        await imap_server.append(mail(message_id=f"<i{n}@customer.test>", subject=f"n{n}"))
        for n in range(3)
    ]
    # The process dies inside the transaction that stores the second mail,
    # after the fetch and before the commit: that transaction rolls back,
    # message and checkpoint together.
    real = inbound_email._update_record
    calls = 0

    async def dies_on_the_second_mail(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        await real(*args, **kwargs)

    monkeypatch.setattr(inbound_email, "_update_record", dies_on_the_second_mail)
    with pytest.raises(ImapIngestError):
        await poll_once(account, store)
    checkpoint = await store.checkpoint()
    assert checkpoint is not None and checkpoint.last_uid == uids[0]
    assert [r.subject for r in await stored(runtime)] == ["n0"]

    monkeypatch.setattr(inbound_email, "_update_record", real)
    result = await poll_once(account, store)
    assert result.ingested == 2
    assert [r.subject for r in await stored(runtime)] == ["n0", "n1", "n2"]
    messages = await fetch_all(
        runtime, sa.select(t.messages.c.id).where(t.messages.c.inbox_id == ws.other_inbox_id)
    )
    assert len(messages) == 3
    checkpoint = await store.checkpoint()
    assert checkpoint is not None and checkpoint.last_uid == uids[2]
    # Nothing new: nothing fetched.
    assert (await poll_once(account, store)).ingested == 0


async def test_imap_a_crash_after_commit_does_not_fetch_again(
    runtime: Runtime, ws: Workspace, imap_server: ImapServer
) -> None:
    store = await mailbox(runtime, ws, imap_server)
    account = await account_of(runtime, ws)
    uid = await imap_server.append(mail(message_id="<c1@customer.test>"))

    class DiesAfterCommit(InboxMailbox):
        async def ingest(self, raw: bytes, *, uidvalidity: int, uid: int) -> None:
            await super().ingest(raw, uidvalidity=uidvalidity, uid=uid)
            raise RuntimeError("killed right after the commit")

    dying = DiesAfterCommit(MailIntake.of(runtime), workspace_id=ws.id, inbox_id=ws.other_inbox_id)
    with pytest.raises(ImapIngestError):
        await poll_once(account, dying)
    assert (await poll_once(account, store)).ingested == 0
    checkpoint = await store.checkpoint()
    assert checkpoint is not None and checkpoint.last_uid == uid
    assert len(await stored(runtime)) == 1
