"""The email workers, hosted as `threadline serve` hosts them: IMAP
polling picks up an inbox configured while it runs and ingests new mail as
it arrives (IDLE), and the delivery worker sends a reply to a real SMTP
server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import sqlalchemy as sa

import server.workers.imap_polling as imap_polling
from server.actions.context import perform
from server.actions.inboxes import do_update_inbox
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.background import background_workers
from server.workers.runner import WorkerHost
from tests.email.mails import mail
from tests.services.imap import ImapServer
from tests.services.smtp import SmtpSink
from tests.support import Workspace, fetch_all

DEADLINE = 30.0


async def eventually(check: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.05)  # polling interval of a condition wait
    raise AssertionError("condition not met in time")


async def test_the_workers_poll_new_imap_inboxes_and_deliver_replies(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, monkeypatch: Any
) -> None:
    monkeypatch.setattr(imap_polling, "RESCAN_SECONDS", 0.2)
    host = WorkerHost(background_workers(runtime, smtp_listener=True), grace=10.0)
    with ImapServer.start() as imap, SmtpSink.start() as sink:
        host.start()
        try:
            # Configured while the service runs: picked up by the rescan.
            await perform(
                runtime,
                ws.admin,
                do_update_inbox,
                inbox_id=ws.other_inbox_id,
                settings={
                    "address": "billing@acme.test",
                    "imap": {
                        "host": imap.host,
                        "port": imap.port,
                        "security": "none",
                        "username": imap.user,
                        "password": imap.password,
                    },
                    "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
                },
                box=runtime.secrets,
            )
            await imap.append(mail(to="billing@acme.test", message_id="<svc1@customer.test>"))

            async def stored() -> list[Any]:
                return await fetch_all(
                    runtime,
                    sa.select(t.messages).where(t.messages.c.inbox_id == ws.other_inbox_id),
                )

            [first] = await eventually(stored)
            res = await admin_client.post(
                f"/api/v1/conversations/{first.conversation_id}/messages",
                json={"text": "Thanks, looking into it."},
            )
            assert res.status_code == 201
            [sent] = await asyncio.to_thread(sink.wait_for, 1)
            assert b"In-Reply-To: <svc1@customer.test>" in sent.data
            # Mail arriving later is announced by IDLE and taken in.
            await imap.append(mail(to="billing@acme.test", message_id="<svc2@customer.test>"))
            await eventually(lambda: _count_at_least(stored, 3))
        finally:
            await host.stop()


async def _count_at_least(rows: Callable[[], Awaitable[list[Any]]], n: int) -> bool:
    return len(await rows()) >= n
