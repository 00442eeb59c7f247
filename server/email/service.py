"""Everything email that runs beside `threadline serve`: outbound
delivery, the SMTP listener when configured, IMAP polling of each email
inbox that has IMAP settings, and chat continuity emails. One task each;
`stop` ends them all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from connectors.email.imap_poller import ImapPoller
from server.email.accounts import imap_account
from server.email.delivery import EmailDelivery
from server.email.imap import InboxMailbox
from server.email.listener import listener_config, make_listener
from server.queries.email_inboxes import get_email_inboxes
from server.queries.reading import read
from server.runtime import Runtime

log = logging.getLogger(__name__)


async def run_email(runtime: Runtime, stop: asyncio.Event) -> None:
    tasks = [asyncio.create_task(EmailDelivery(runtime).run(stop), name="email delivery")]
    listener = None
    config = listener_config(runtime)
    if config is not None:
        listener = make_listener(runtime, config)
        try:
            await listener.start()
        except OSError as exc:  # the port is taken: the rest still runs
            log.error("SMTP listener not started on %s:%s: %s", config.host, config.port, exc)
            listener = None
        else:
            log.info("SMTP listener on %s:%s", config.host, listener.port)
    for inbox in await read(runtime, get_email_inboxes):
        account = imap_account(runtime, inbox.settings, inbox.secret_encrypted)
        if account is None:
            continue
        store = InboxMailbox(runtime, workspace_id=inbox.workspace_id, inbox_id=inbox.id)
        poller = ImapPoller(account, store, on_error=_reporter(inbox.id))
        tasks.append(asyncio.create_task(poller.run(stop), name=f"imap inbox {inbox.id}"))
    try:
        await stop.wait()
    finally:
        if listener is not None:
            await listener.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


def _reporter(inbox_id: int) -> Callable[[Exception], None]:
    def report(exc: Exception) -> None:
        log.warning("IMAP polling of inbox %s: %s", inbox_id, exc)

    return report
