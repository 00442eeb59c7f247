"""What taking in mail uses, gathered once by the transport that receives
it (the SMTP listener's and IMAP polling's workers, the inbound-parse
endpoint): a writer with the blob store, and the server's mail identity.
From there the mail goes down, never back up: server.email.ingest reads,
stores and parses, then one action records it."""

from __future__ import annotations

import dataclasses

from server.actions.attachments import FileWriter
from server.email.config import MailIdentity, mail_identity
from server.runtime import Runtime


@dataclasses.dataclass(frozen=True)
class MailIntake:
    writer: FileWriter  # reads, writes, and keeps the raw mail and its files
    identity: MailIdentity  # our reply addresses' domain and token keys

    @classmethod
    def of(cls, runtime: Runtime) -> MailIntake:
        return cls(runtime, mail_identity(runtime.settings))
