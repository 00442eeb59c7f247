"""The IMAP polling worker: one poller per email inbox that has IMAP
settings, rescanned every `RESCAN_SECONDS` (so an inbox configured or
changed while the server runs is picked up). Each poller ingests into its
inbox through server.email.imap.InboxMailbox."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable

from connectors.email.imap_client import ImapAccount
from connectors.email.imap_poller import ImapPoller
from server.domain.email_settings import mail_settings_of
from server.email.accounts import imap_account
from server.email.imap import InboxMailbox
from server.email.intake import MailIntake
from server.queries.email_inboxes import get_email_inboxes
from server.queries.inbox_secrets import inbox_secrets_of
from server.queries.reading import read
from server.runtime import Runtime

log = logging.getLogger(__name__)

RESCAN_SECONDS = 60.0


@dataclasses.dataclass
class _Polling:
    account: ImapAccount
    stop: asyncio.Event
    task: asyncio.Task[None]


class ImapPolling:
    name = "IMAP polling"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.intake = MailIntake.of(runtime)

    async def run(self, stop: asyncio.Event) -> None:
        polling: dict[int, _Polling] = {}
        try:
            while not stop.is_set():
                try:
                    await _sync_pollers(self.runtime, self.intake, polling)
                except Exception:
                    log.exception("IMAP pollers: rescanning the inboxes failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESCAN_SECONDS)
        finally:
            for running in polling.values():
                running.stop.set()
            await asyncio.gather(*(p.task for p in polling.values()), return_exceptions=True)


async def _sync_pollers(runtime: Runtime, intake: MailIntake, polling: dict[int, _Polling]) -> None:
    """Start a poller for each inbox with IMAP settings; restart one whose
    settings changed; stop those whose settings are gone."""
    wanted: dict[int, tuple[int, ImapAccount]] = {}
    for inbox in await read(runtime, get_email_inboxes):
        secrets = inbox_secrets_of(runtime.secrets, inbox.secret_encrypted)
        account = imap_account(mail_settings_of(inbox.settings), secrets)
        if account is not None:
            wanted[inbox.id] = (inbox.workspace_id, account)
    for inbox_id, running in list(polling.items()):
        if inbox_id not in wanted or wanted[inbox_id][1] != running.account:
            running.stop.set()
            del polling[inbox_id]
    for inbox_id, (workspace_id, account) in wanted.items():
        if inbox_id in polling:
            continue
        store = InboxMailbox(intake, workspace_id=workspace_id, inbox_id=inbox_id)
        poller = ImapPoller(account, store, on_error=_reporter(inbox_id))
        halt = asyncio.Event()
        task = asyncio.create_task(poller.run(halt), name=f"imap inbox {inbox_id}")
        polling[inbox_id] = _Polling(account, halt, task)


def _reporter(inbox_id: int) -> Callable[[Exception], None]:
    def report(exc: Exception) -> None:
        log.warning("IMAP polling of inbox %s: %s", inbox_id, exc)

    return report
