"""IMAP polling of an inbox's existing mailbox, wired to the server: the
poller's store (connectors.email.imap_poller.ImapStore) ingests each mail
and moves the inbox's checkpoint in the same transaction, so a crash
between fetching and committing fetches the same mail again, and one
after committing doesn't (PROTOCOLS.md P1)."""

from __future__ import annotations

from connectors.email.imap_poller import Checkpoint
from server.actions.context import perform
from server.actions.inbound_email import ImapPosition, RawMail, do_receive_email
from server.domain.actors import system_actor
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.queries.email_inboxes import get_imap_checkpoint
from server.queries.reading import read


class InboxMailbox:
    """The ImapStore of one inbox."""

    def __init__(self, intake: MailIntake, *, workspace_id: int, inbox_id: int) -> None:
        self.intake = intake
        self.workspace_id = workspace_id
        self.inbox_id = inbox_id

    async def checkpoint(self) -> Checkpoint | None:
        found = await read(self.intake.writer, get_imap_checkpoint, self.inbox_id)
        return None if found is None else Checkpoint(*found)

    async def ingest(self, raw: bytes, *, uidvalidity: int, uid: int) -> None:
        await ingest_mail(
            self.intake,
            inbox_id=self.inbox_id,
            raw=raw,
            source="imap",
            imap=ImapPosition(uidvalidity, uid),
        )

    async def oversized(self, *, uidvalidity: int, uid: int, size: int) -> None:
        """Quarantine a record of the mail (its bytes stay on the server:
        nothing is stored) and move past it."""
        record = RawMail(
            inbox_id=self.inbox_id,
            source="imap",
            storage_key="",
            sha256=f"imap-oversized:{uidvalidity}:{uid}",
            size=size,
        )
        await perform(
            self.intake.writer,
            system_actor(self.workspace_id),
            do_receive_email,
            raw=record,
            parsed=None,
            failure=f"over the size limit ({size} bytes): left in the mailbox as UID {uid}",
            keys=self.intake.identity.keys,
            imap=ImapPosition(uidvalidity, uid),
        )
