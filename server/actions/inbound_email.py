"""Inbound email (F2, PROTOCOLS.md P4): one action for every way mail
arrives (the SMTP listener, IMAP polling, the inbound-parse endpoint).

The transport does the I/O first — raw bytes into the blob store, parsing
off the event loop, attachments into the blob store — and then calls
`do_receive_email` with what it found. The action records the mail in
`inbound_mails` whatever becomes of it, so nothing that arrived is ever
lost silently:

- the same bytes again: the first record answers (`replayed`);
- a mail that could not be parsed: quarantined, with the reason, for
  admins to look at; the raw bytes stay in the blob store;
- a delivery report about one of our mails: the message it reports on is
  marked failed, and a permanent (5.x.x) failure suppresses the address;
- a Message-ID already stored in this inbox: recorded as a duplicate;
- anything else becomes a message, in the conversation that threading
  (server.domain.email_threading) chose, with the decision recorded on
  the message and on the mail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from connectors.email import AutoKind, ParsedEmail
from connectors.email.model import Address
from server.actions.attachments import StoredFile, store_file
from server.actions.contact_suggestions import suggest_claimed_duplicates
from server.actions.contacts import IdentityInput, find_or_create_contact
from server.actions.context import ActionContext
from server.actions.conversations import do_change_conversation_status, open_conversation
from server.actions.email_bounces import record_bounce
from server.actions.messages import append_message
from server.domain.email_settings import mail_settings_of
from server.domain.email_threading import (
    MAX_MESSAGE_ID_LENGTH,
    InboundMail,
    conversations_to_fetch,
    decide_thread,
    normalize_address,
    normalize_message_id,
    referenced_ids,
)
from server.domain.email_tokens import looks_like_reply_address
from server.domain.events import EmailQuarantined
from server.domain.json_types import JsonValue
from server.domain.values import (
    ConversationStatus,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InboxKind,
    SenderKind,
    UploaderKind,
)
from server.queries.access import access_conversation, access_inbox
from server.queries.email_threads import conversation_facts, known_messages
from server.queries.records import Attachment, Inbox, Message, load, load_or_none
from server.storage import tables as t
from server.storage.blobs import BlobStore, new_key

MAX_SUBJECT = 500
MAX_REASON = 1000


class MailStatus:
    STORED = "stored"
    DUPLICATE = "duplicate"
    BOUNCE = "bounce"
    QUARANTINED = "quarantined"


@dataclasses.dataclass(frozen=True)
class RawMail:
    """Where a mail came from and where its bytes are. `envelope_to` are
    the SMTP recipients (or the IMAP mailbox's address); `envelope_from`
    the SMTP reverse path ("" for a bounce), None when not known."""

    inbox_id: int
    source: str  # "smtp", "imap" or "http"
    storage_key: str
    sha256: str
    size: int
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class MailFile:
    """An attachment of the mail, already in the blob store."""

    file: StoredFile
    content_id: str | None
    inline: bool


@dataclasses.dataclass(frozen=True)
class ImapPosition:
    """Advance the inbox's IMAP checkpoint in the same transaction."""

    uidvalidity: int
    uid: int


@dataclasses.dataclass(frozen=True)
class MailOutcome:
    inbound_mail_id: int
    status: str
    reason: str | None = None
    message_id: int | None = None
    conversation_id: int | None = None
    replayed: bool = False


async def store_raw_mail(blobs: BlobStore, raw: bytes) -> str:
    """Put a mail's raw bytes in the blob store (before anything else is
    done with them); returns the key for `RawMail.storage_key`."""
    key = new_key()
    await blobs.put(key, raw)
    return key


async def store_mail_files(blobs: BlobStore, parsed: ParsedEmail) -> list[MailFile]:
    """Put the mail's (non-empty) attachments in the blob store, for
    `do_receive_email`'s `files`."""
    out = []
    for attachment in parsed.attachments:
        if not attachment.data:
            continue
        stored = await store_file(
            blobs,
            attachment.data,
            filename=attachment.filename,
            declared_type=attachment.content_type,
        )
        out.append(MailFile(stored, attachment.content_id, attachment.inline))
    return out


async def do_receive_email(
    ctx: ActionContext,
    *,
    raw: RawMail,
    parsed: ParsedEmail | None,
    failure: str | None = None,
    files: Sequence[MailFile] = (),
    keys: Sequence[bytes],
    reply_domains: Collection[str] | None = None,
    imap: ImapPosition | None = None,
) -> MailOutcome:
    """Record one inbound mail for `raw.inbox_id` and act on it (see the
    module docstring). `parsed` is None when parsing failed, `failure`
    then says why. `keys` verify our signed tokens (current key first)."""
    inbox = await access_inbox(ctx.conn, ctx.actor, raw.inbox_id)
    if imap is not None:
        await _advance_checkpoint(ctx, inbox, imap)
    earlier = (
        await ctx.conn.execute(
            sa.select(t.inbound_mails).where(
                t.inbound_mails.c.inbox_id == raw.inbox_id,
                t.inbound_mails.c.sha256 == raw.sha256,
            )
        )
    ).first()
    if earlier is not None:
        return MailOutcome(
            earlier.id,
            earlier.status,
            earlier.reason,
            earlier.message_id,
            earlier.conversation_id,
            replayed=True,
        )
    if parsed is None:
        return await _quarantine(ctx, inbox, raw, failure or "the mail could not be parsed")
    if inbox.kind not in (InboxKind.EMAIL.value, InboxKind.WIDGET.value):
        return await _quarantine(ctx, inbox, raw, "this inbox does not take email", parsed)
    if parsed.auto.kind is AutoKind.BOUNCE:
        mail_id = await _record(ctx, inbox, raw, parsed, status=MailStatus.BOUNCE)
        reason = await record_bounce(
            ctx, inbox=inbox, inbound_mail_id=mail_id, bounce=parsed.bounce
        )
        await _update_record(ctx, mail_id, reason=reason)
        return MailOutcome(mail_id, MailStatus.BOUNCE, reason)
    sender = normalize_address(parsed.from_address or "")
    if not sender:
        # No contact for a sender nobody can write to: every `From: Evil`
        # would land on one contact, and each reply would fail.
        reason = parsed.from_problem or "From: no sender address"
        return await _quarantine(ctx, inbox, raw, reason, parsed)
    if sender == (
        mail_settings_of(inbox.settings).address or ""
    ).lower() or looks_like_reply_address(sender, domains=reply_domains):
        # Our own mail coming back (a forwarding loop, a copy to ourselves):
        # taking it in would answer ourselves.
        return await _quarantine(ctx, inbox, raw, f"From: {sender} is this inbox itself", parsed)
    external_id = _external_id(parsed, raw)
    stored = await _stored_with(ctx, raw.inbox_id, external_id)
    if stored is not None:
        mail_id = await _record(ctx, inbox, raw, parsed, status=MailStatus.DUPLICATE)
        await _update_record(
            ctx,
            mail_id,
            reason="this Message-ID is already stored in this inbox",
            message_id=stored.id,
            conversation_id=stored.conversation_id,
        )
        return MailOutcome(mail_id, MailStatus.DUPLICATE, None, stored.id, stored.conversation_id)
    return await _store(
        ctx,
        inbox,
        raw,
        parsed,
        files=files,
        sender=sender,
        external_id=external_id,
        keys=keys,
        reply_domains=reply_domains,
    )


async def _store(
    ctx: ActionContext,
    inbox: Inbox,
    raw: RawMail,
    parsed: ParsedEmail,
    *,
    files: Sequence[MailFile],
    sender: str,
    external_id: str,
    keys: Sequence[bytes],
    reply_domains: Collection[str] | None,
) -> MailOutcome:
    mail = InboundMail(
        sender=sender,
        recipients=tuple(a.address for a in (*parsed.to, *parsed.cc) if a.address)
        + raw.envelope_to,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        subject=parsed.subject,
        automatic=parsed.auto.kind is not AutoKind.NONE,
    )
    known = await known_messages(
        ctx.conn, inbox.workspace_id, referenced_ids(mail.in_reply_to, mail.references)
    )
    wanted = conversations_to_fetch(
        mail,
        workspace_id=inbox.workspace_id,
        inbox_id=inbox.id,
        keys=keys,
        known=known,
        reply_domains=reply_domains,
    )
    decision = decide_thread(
        mail,
        workspace_id=inbox.workspace_id,
        inbox_id=inbox.id,
        keys=keys,
        known=known,
        conversations=await conversation_facts(ctx.conn, inbox.workspace_id, wanted),
        reply_domains=reply_domains,
    )
    thread: dict[str, JsonValue] = {
        "reason": decision.reason,
        "detail": decision.detail,
        "flags": list(decision.flags),
        "rejected": list(decision.rejected),
        "evidence": decision.evidence,
        "linked_conversation_id": decision.linked_conversation_id,
    }
    mail_id = await _record(ctx, inbox, raw, parsed, status=MailStatus.STORED, thread=thread)
    if decision.conversation_id is not None:
        if decision.reopen:
            await do_change_conversation_status(
                ctx, conversation_id=decision.conversation_id, status=ConversationStatus.OPEN
            )
        conv = await access_conversation(
            ctx.conn, ctx.actor, decision.conversation_id, for_update=True
        )
    else:
        identity = IdentityInput(IdentityKind.EMAIL, sender, verified=False)
        contact_id, created = await find_or_create_contact(
            ctx, identity=identity, name=parsed.from_name or sender
        )
        if created:
            await suggest_claimed_duplicates(ctx, contact_id=contact_id, address=sender)
        conversation_id = await open_conversation(
            ctx,
            workspace_id=inbox.workspace_id,
            inbox_id=inbox.id,
            contact_id=contact_id,
            subject=parsed.subject[:MAX_SUBJECT] or None,
        )
        conv = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    rows = await _file_rows(ctx, inbox, mail_id, files)
    result = await append_message(
        ctx,
        conv,
        direction=Direction.INBOUND,
        sender_kind=SenderKind.CONTACT,
        sender_id=conv.contact_id,
        private=False,
        text=parsed.reply_text,
        html=parsed.html,
        external_id=external_id,
        delivery_status=DeliveryStatus.RECEIVED,
        attachments=rows,
        email_message_id=None if external_id.startswith("sha256:") else external_id,
        email=_email_meta(parsed, mail_id, thread, files, rows),
    )
    await _update_record(
        ctx, mail_id, message_id=result.message_id, conversation_id=result.conversation_id
    )
    return MailOutcome(mail_id, MailStatus.STORED, None, result.message_id, result.conversation_id)


def _external_id(parsed: ParsedEmail, raw: RawMail) -> str:
    """What dedupes the mail in its inbox: its Message-ID (normalized, as
    threading looks it up), else (a mail without one) its bytes."""
    message_id = normalize_message_id(parsed.message_id or "") if parsed.message_id else None
    if message_id and len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        return message_id
    return f"sha256:{raw.sha256}"


async def _stored_with(ctx: ActionContext, inbox_id: int, external_id: str) -> Message | None:
    m = t.messages.c
    found = (
        await ctx.conn.execute(
            sa.select(t.messages).where(m.inbox_id == inbox_id, m.external_id == external_id)
        )
    ).first()
    return load_or_none(Message, found)


def _addresses(items: Sequence[Address]) -> list[dict[str, str]]:
    return [{"name": a.name, "address": a.address} for a in items]


def _email_meta(
    parsed: ParsedEmail,
    mail_id: int,
    thread: dict[str, JsonValue],
    files: Sequence[MailFile],
    rows: Sequence[Attachment],
) -> dict[str, JsonValue]:
    """What the UI shows of the mail beyond its text: its headers, how it
    was threaded, which attachments the HTML shows inline (`cid:` ids),
    and where the original is (`inbound_mail_id`)."""
    return {
        "subject": parsed.subject[:MAX_SUBJECT],
        "from": {"name": parsed.from_name, "address": parsed.from_address or ""},
        "to": _addresses(parsed.to),
        "cc": _addresses(parsed.cc),
        "reply_to": _addresses(parsed.reply_to),
        "message_id": parsed.message_id,
        "in_reply_to": list(parsed.in_reply_to),
        "references": list(parsed.references)[-20:],
        "auto": parsed.auto.kind.value,
        "thread": thread,
        "inline": {
            f.content_id: row.id
            for f, row in zip(files, rows, strict=True)
            if f.content_id is not None
        },
        "full_text": parsed.text if parsed.text != parsed.reply_text else None,
        "warnings": list(parsed.warnings)[:20],
        "inbound_mail_id": mail_id,
    }


async def _file_rows(
    ctx: ActionContext, inbox: Inbox, mail_id: int, files: Sequence[MailFile]
) -> list[Attachment]:
    """Attachment rows for the mail's files, held by the inbound mail
    until the message takes them (in this same transaction)."""
    rows = []
    for f in files:
        row = (
            await ctx.conn.execute(
                t.attachments.insert()
                .values(
                    workspace_id=inbox.workspace_id,
                    inbox_id=inbox.id,
                    uploader_kind=UploaderKind.EMAIL.value,
                    uploader_id=mail_id,
                    storage_key=f.file.storage_key,
                    filename=f.file.filename,
                    content_type=f.file.content_type,
                    size=f.file.size,
                    sha256=f.file.sha256,
                    created_at=ctx.now,
                )
                .returning(t.attachments)
            )
        ).one()
        rows.append(load(Attachment, row))
    return rows


async def _record(
    ctx: ActionContext,
    inbox: Inbox,
    raw: RawMail,
    parsed: ParsedEmail | None,
    *,
    status: str,
    thread: dict[str, JsonValue] | None = None,
    reason: str | None = None,
) -> int:
    mail_id: int = (
        await ctx.conn.execute(
            t.inbound_mails.insert()
            .values(
                workspace_id=inbox.workspace_id,
                inbox_id=inbox.id,
                source=raw.source,
                status=status,
                reason=reason[:MAX_REASON] if reason else None,
                storage_key=raw.storage_key,
                sha256=raw.sha256,
                size=raw.size,
                envelope_from=None if raw.envelope_from is None else raw.envelope_from[:320],
                envelope_to=[a[:320] for a in raw.envelope_to[:50]],
                header_message_id=(parsed.message_id or "")[:MAX_MESSAGE_ID_LENGTH] or None
                if parsed
                else None,
                from_address=(parsed.from_address or "")[:320] or None if parsed else None,
                subject=parsed.subject[:MAX_SUBJECT] if parsed else None,
                thread=thread,
                created_at=ctx.now,
            )
            .returning(t.inbound_mails.c.id)
        )
    ).scalar_one()
    return mail_id


async def _update_record(ctx: ActionContext, mail_id: int, **values: Any) -> None:
    if values.get("reason"):
        values["reason"] = values["reason"][:MAX_REASON]
    await ctx.conn.execute(
        t.inbound_mails.update().where(t.inbound_mails.c.id == mail_id).values(**values)
    )


async def _quarantine(
    ctx: ActionContext,
    inbox: Inbox,
    raw: RawMail,
    reason: str,
    parsed: ParsedEmail | None = None,
) -> MailOutcome:
    mail_id = await _record(ctx, inbox, raw, parsed, status=MailStatus.QUARANTINED, reason=reason)
    await ctx.emit(
        EmailQuarantined(
            workspace_id=inbox.workspace_id,
            inbox_id=inbox.id,
            inbound_mail_id=mail_id,
            reason=reason[:MAX_REASON],
            source=raw.source,
            size=raw.size,
        )
    )
    return MailOutcome(mail_id, MailStatus.QUARANTINED, reason[:MAX_REASON])


async def _advance_checkpoint(ctx: ActionContext, inbox: Inbox, imap: ImapPosition) -> None:
    """Move the inbox's IMAP checkpoint to `imap` (never backwards within
    one UIDVALIDITY), in the transaction that stores the mail."""
    c = t.imap_checkpoints.c
    row = (
        await ctx.conn.execute(
            sa.select(t.imap_checkpoints).where(c.inbox_id == inbox.id).with_for_update()
        )
    ).first()
    if row is None:
        await ctx.conn.execute(
            t.imap_checkpoints.insert().values(
                inbox_id=inbox.id,
                workspace_id=inbox.workspace_id,
                uidvalidity=imap.uidvalidity,
                last_uid=imap.uid,
                updated_at=ctx.now,
            )
        )
        return
    if row.uidvalidity == imap.uidvalidity and row.last_uid >= imap.uid:
        return
    await ctx.conn.execute(
        t.imap_checkpoints.update()
        .where(c.inbox_id == inbox.id)
        .values(uidvalidity=imap.uidvalidity, last_uid=imap.uid, updated_at=ctx.now)
    )
