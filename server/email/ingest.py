"""One inbound mail, from raw bytes to the action (F2, PROTOCOLS.md P4).

The order matters for "a crash loses nothing" (P1): the raw bytes are
made durable in the blob store first, then parsed (in a thread: a
25 MiB message with many parts costs seconds of CPU, and the event loop
must keep serving everyone else), then the attachments are stored, and
only then does one action record everything. A crash before the action
commits leaves at most unreferenced blobs; the transport then did not
acknowledge the mail, so the sender (or the IMAP checkpoint) brings it
again. Any failure to parse, expected or not, quarantines the mail and
the next one still goes through.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Sequence

from connectors.email import MailError, ParsedEmail, parse_email
from server.actions.context import perform
from server.actions.inbound_email import (
    ImapPosition,
    MailOutcome,
    RawMail,
    do_receive_email,
    store_mail_files,
    store_raw_mail,
)
from server.domain.actors import system_actor
from server.domain.errors import NotFound
from server.email.intake import MailIntake
from server.queries.email_inboxes import get_inbound_mail_by_hash
from server.queries.inboxes import find_inbox
from server.queries.reading import read

log = logging.getLogger(__name__)


async def ingest_mail(
    intake: MailIntake,
    *,
    inbox_id: int,
    raw: bytes,
    source: str,
    envelope_from: str | None = None,
    envelope_to: Sequence[str] = (),
    imap: ImapPosition | None = None,
) -> MailOutcome:
    """Take `raw` into inbox `inbox_id`; returns what became of it."""
    writer, identity = intake.writer, intake.identity
    inbox = await read(writer, find_inbox, inbox_id)
    if inbox is None:
        raise NotFound("inbox not found", field="inbox_id")
    sha256 = await asyncio.to_thread(lambda: hashlib.sha256(raw).hexdigest())
    actor = system_actor(inbox.workspace_id)
    record = RawMail(
        inbox_id=inbox_id,
        source=source,
        storage_key="",
        sha256=sha256,
        size=len(raw),
        envelope_from=envelope_from,
        envelope_to=tuple(envelope_to),
    )
    earlier = await read(writer, get_inbound_mail_by_hash, inbox_id, sha256)
    if earlier is not None:
        # Known bytes: let the action answer with the first record (and
        # move an IMAP checkpoint past them) without storing them again.
        record = dataclasses.replace(record, storage_key=earlier.storage_key)
        return await perform(
            writer, actor, do_receive_email, raw=record, parsed=None, keys=identity.keys, imap=imap
        )
    record = dataclasses.replace(record, storage_key=await store_raw_mail(writer.blobs, raw))
    parsed, failure = await _parse(raw)
    files = await store_mail_files(writer.blobs, parsed) if parsed is not None else []
    return await perform(
        writer,
        actor,
        do_receive_email,
        raw=record,
        parsed=parsed,
        failure=failure,
        files=files,
        keys=identity.keys,
        reply_domains=(identity.domain,),
        imap=imap,
    )


async def _parse(raw: bytes) -> tuple[ParsedEmail | None, str | None]:
    try:
        return await asyncio.to_thread(parse_email, raw), None
    except MailError as exc:
        return None, str(exc)
    except Exception as exc:  # a parser bug must not stop the next mail
        log.exception("inbound mail: the parser failed unexpectedly")
        return None, f"the parser failed: {type(exc).__name__}"
