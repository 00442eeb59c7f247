"""Messages: agent replies and notes, and inbound messages from contacts.

Each message gets the next `seq` of its conversation, handed out by an
`UPDATE ... RETURNING` on the conversation row. On PostgreSQL the row is
already locked (FOR UPDATE) by the access check, on SQLite the whole write
is serialised by BEGIN IMMEDIATE, so seq is contiguous and unique
(PROTOCOLS.md P1) and delivery order equals seq order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from server.actions.attachments import Uploader, attach, claim_attachments
from server.actions.contacts import IdentityInput, find_or_create_contact
from server.actions.context import ActionContext
from server.actions.conversations import open_conversation, state_of, status_changed
from server.actions.outbound_email import enqueue_email, prepare_reply_email
from server.actions.snooze_jobs import set_snooze_wake
from server.domain.conversations import after_message
from server.domain.errors import Conflict, InvalidInput
from server.domain.events import MessageCreated
from server.domain.values import (
    ConversationStatus,
    DeliveryStatus,
    Direction,
    InboxKind,
    SenderKind,
    UploaderKind,
)
from server.queries.access import access_conversation, access_inbox
from server.queries.api_shapes import attachment_view
from server.queries.inboxes import get_inbox
from server.queries.message_records import MessageRecord, message_record
from server.queries.records import Attachment, Conversation, Message, load, load_or_none
from server.sanitize import sanitize_html
from server.storage import tables as t


@dataclasses.dataclass(frozen=True)
class MessageResult:
    message_id: int
    conversation_id: int
    contact_id: int
    seq: int
    # True when an idempotency key or external id matched an earlier message
    # and nothing new was written.
    replayed: bool = False
    created_conversation: bool = False
    created_contact: bool = False
    # The message as written (or as found, when replayed): the transport
    # shapes its answer from it without reading it back.
    message: MessageRecord = dataclasses.field(kw_only=True, compare=False)


async def do_send_message(
    ctx: ActionContext,
    *,
    conversation_id: int,
    text: str,
    private: bool = False,
    idempotency_key: str | None = None,
    attachment_ids: Sequence[int] = (),
    carried: Sequence[Attachment] = (),
    email_to: Sequence[str] | None = None,
    email_cc: Sequence[str] | None = None,
) -> MessageResult:
    """An agent's reply (or private note) in a conversation, carrying the
    acting agent's own not-yet-sent uploads `attachment_ids` (text may
    then be empty). The same idempotency key with the same content returns
    the first message; with different content it is a conflict.

    `carried` are attachment rows the calling action wrote for this very
    message in this transaction (a canned response's file copies, server.
    actions.canned_replies); they go after `attachment_ids`.

    In an email conversation a reply (not a note) is also queued for
    sending (server.actions.outbound_email): to `email_to` / `email_cc`,
    or by default to those that continue the customer's thread."""
    if not text.strip() and not attachment_ids and not carried:
        raise InvalidInput("a message needs text or an attachment", field="text")
    conv = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    if idempotency_key is not None:
        earlier = (
            await ctx.conn.execute(
                sa.select(t.messages).where(
                    t.messages.c.conversation_id == conversation_id,
                    t.messages.c.idempotency_key == idempotency_key,
                )
            )
        ).first()
        if earlier is not None:
            sent_with = [a["id"] for a in earlier.attachments]
            if earlier.text != text or earlier.private != private or sent_with != [*attachment_ids]:
                raise Conflict(
                    "this idempotency key was used for a different message",
                    field="Idempotency-Key",
                )
            return MessageResult(
                earlier.id,
                conversation_id,
                conv.contact_id,
                earlier.seq,
                True,
                message=message_record(load(Message, earlier)),
            )
    sender_kind = SenderKind.AGENT if ctx.actor.agent_id is not None else SenderKind.SYSTEM
    agent_id = ctx.actor.agent_id
    files = await claim_attachments(
        ctx,
        attachment_ids,
        uploader=Uploader(UploaderKind.AGENT, agent_id) if agent_id is not None else None,
        inbox_id=conv.inbox_id,
    )
    files = [*files, *carried]
    inbox = await get_inbox(ctx.conn, conv.inbox_id)
    by_email = inbox.kind == InboxKind.EMAIL.value and not private
    if not by_email and (email_to is not None or email_cc is not None):
        field = "to" if email_to is not None else "cc"
        raise InvalidInput(f"{field}: only an email reply has recipients", field=field)
    headers = (
        await prepare_reply_email(ctx, conv, inbox, to=email_to, cc=email_cc) if by_email else None
    )
    result = await append_message(
        ctx,
        conv,
        direction=Direction.OUTBOUND,
        sender_kind=sender_kind,
        sender_id=ctx.actor.agent_id,
        private=private,
        text=text,
        html=None,
        idempotency_key=idempotency_key,
        delivery_status=DeliveryStatus.RECEIVED if private else DeliveryStatus.PENDING,
        attachments=files,
        email=headers.stored() if headers is not None else None,
    )
    if by_email:
        await enqueue_email(
            ctx,
            message_id=result.message_id,
            workspace_id=conv.workspace_id,
            inbox_id=conv.inbox_id,
        )
    return result


async def do_receive_message(
    ctx: ActionContext,
    *,
    inbox_id: int,
    identity: IdentityInput,
    name: str,
    text: str,
    html: str | None = None,
    external_id: str | None = None,
    subject: str | None = None,
    attachment_ids: Sequence[int] = (),
    uploader: Uploader | None = None,
    origin_contact_id: int | None = None,
) -> MessageResult:
    """A message from a contact arriving in an inbox.

    Finds the contact through `identity` (creating one if none holds it),
    then that contact's unresolved conversation in this inbox (opening a new
    one if there is none), and appends the message. A widget session passes
    the contact it proved as `origin_contact_id`: only a conversation opened
    for that contact continues, and a new one is opened for it, so that a
    session a contact merge moved never writes into the other contact's
    conversations (server.queries.visitors.visitor_conversation_scope). The same `external_id`
    in the same inbox is stored once (idempotent ingest, PROTOCOLS.md P1).
    `attachment_ids` must be `uploader`'s own unsent uploads to this inbox.
    """
    inbox = await access_inbox(ctx.conn, ctx.actor, inbox_id)
    if external_id is not None:
        earlier = (
            await ctx.conn.execute(
                sa.select(t.messages).where(
                    t.messages.c.inbox_id == inbox_id, t.messages.c.external_id == external_id
                )
            )
        ).first()
        if earlier is not None:
            return MessageResult(
                earlier.id,
                earlier.conversation_id,
                earlier.contact_id,
                earlier.seq,
                True,
                message=message_record(load(Message, earlier)),
            )
    files = await claim_attachments(ctx, attachment_ids, uploader=uploader, inbox_id=inbox_id)
    contact_id, created_contact = await find_or_create_contact(ctx, identity=identity, name=name)
    conv = await _open_conversation_of(ctx, inbox_id, contact_id, origin_contact_id)
    created_conversation = conv is None
    if conv is None:
        conversation_id = await open_conversation(
            ctx,
            workspace_id=inbox.workspace_id,
            inbox_id=inbox_id,
            contact_id=contact_id,
            subject=subject,
            origin_contact_id=origin_contact_id,
        )
        conv = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    result = await append_message(
        ctx,
        conv,
        direction=Direction.INBOUND,
        sender_kind=SenderKind.CONTACT,
        sender_id=contact_id,
        private=False,
        text=text,
        html=sanitize_html(html) if html is not None else None,
        external_id=external_id,
        delivery_status=DeliveryStatus.RECEIVED,
        attachments=files,
    )
    return dataclasses.replace(
        result, created_contact=created_contact, created_conversation=created_conversation
    )


async def _open_conversation_of(
    ctx: ActionContext, inbox_id: int, contact_id: int, origin_contact_id: int | None
) -> Conversation | None:
    """The contact's unresolved conversation in the inbox, locked. The
    contact row is locked first, so two first messages from one contact
    can't both decide to open a conversation (PostgreSQL; SQLite writers
    are serialised already)."""
    await ctx.conn.execute(
        sa.select(t.contacts.c.id)
        .where(t.contacts.c.id == contact_id)
        .with_for_update(key_share=True)
    )
    origin = (
        sa.true()
        if origin_contact_id is None
        else t.conversations.c.origin_contact_id == origin_contact_id
    )
    stmt = (
        sa.select(t.conversations)
        .where(
            t.conversations.c.inbox_id == inbox_id,
            t.conversations.c.contact_id == contact_id,
            t.conversations.c.status != ConversationStatus.RESOLVED.value,
            origin,
        )
        .order_by(t.conversations.c.last_activity_at.desc(), t.conversations.c.id.desc())
        .limit(1)
        .with_for_update(key_share=True)
    )
    return load_or_none(Conversation, (await ctx.conn.execute(stmt)).first())


async def append_message(
    ctx: ActionContext,
    conv: Conversation,
    *,
    direction: Direction,
    sender_kind: SenderKind,
    sender_id: int | None,
    private: bool,
    text: str,
    html: str | None,
    delivery_status: DeliveryStatus,
    idempotency_key: str | None = None,
    external_id: str | None = None,
    attachments: Sequence[Attachment] = (),
    email_message_id: str | None = None,
    email: dict[str, Any] | None = None,
) -> MessageResult:
    """Append a message to `conv` (locked by the caller) under the next seq."""
    carried = [attachment_view(a) for a in attachments]
    effect = after_message(
        state_of(conv),
        direction=direction,
        private=private,
        from_agent=sender_kind in (SenderKind.AGENT, SenderKind.BOT),
        now=ctx.now,
    )
    seq: int = (
        await ctx.conn.execute(
            t.conversations.update()
            .where(t.conversations.c.id == conv.id)
            .values(last_seq=t.conversations.c.last_seq + 1, **effect.columns())
            .returning(t.conversations.c.last_seq)
        )
    ).scalar_one()
    values = message_row(
        conv,
        seq=seq,
        direction=direction,
        sender_kind=sender_kind,
        sender_id=sender_id,
        private=private,
        text=text,
        html=html,
        delivery_status=delivery_status,
        now=ctx.now,
        idempotency_key=idempotency_key,
        external_id=external_id,
        attachments=carried,
        email_message_id=email_message_id,
        email=email,
    )
    row = (await ctx.conn.execute(t.messages.insert().values(**values).returning(t.messages))).one()
    message_id: int = row.id
    await attach(ctx, attachments, message_id)
    if effect.wakes:
        if conv.status == ConversationStatus.SNOOZED.value:
            # The customer's message woke it: its wake-up is moot.
            await set_snooze_wake(
                ctx, workspace_id=conv.workspace_id, conversation_id=conv.id, until=None
            )
        await ctx.emit(status_changed(conv, ConversationStatus.OPEN, None))
    await ctx.emit(message_created(values, message_id))
    return MessageResult(message_id, conv.id, conv.contact_id, seq, message=message_record(row))


class ConversationIds(Protocol):
    """What a message row copies from its conversation."""

    @property
    def id(self) -> int: ...
    @property
    def workspace_id(self) -> int: ...
    @property
    def contact_id(self) -> int: ...
    @property
    def inbox_id(self) -> int: ...


def message_row(
    conv: ConversationIds,
    *,
    seq: int,
    direction: Direction,
    sender_kind: SenderKind,
    sender_id: int | None,
    private: bool,
    text: str,
    html: str | None,
    delivery_status: DeliveryStatus,
    now: datetime,
    idempotency_key: str | None = None,
    external_id: str | None = None,
    attachments: Sequence[Mapping[str, Any]] = (),
    email_message_id: str | None = None,
    email: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row of message `seq` in `conv` (`attachments` as carried on it)."""
    return {
        "workspace_id": conv.workspace_id,
        "conversation_id": conv.id,
        "contact_id": conv.contact_id,
        "inbox_id": conv.inbox_id,
        "seq": seq,
        "direction": direction.value,
        "sender_kind": sender_kind.value,
        "sender_id": sender_id,
        "private": private,
        "text": text,
        "html": html,
        "external_id": external_id,
        "idempotency_key": idempotency_key,
        "delivery_status": delivery_status.value,
        "attachments": list(attachments),
        "email_message_id": email_message_id,
        "email": email,
        "created_at": now,
    }


def message_created(values: Mapping[str, Any], message_id: int) -> MessageCreated:
    """The event of the message inserted from `values` (a `message_row`)."""
    return MessageCreated(
        workspace_id=values["workspace_id"],
        message_id=message_id,
        conversation_id=values["conversation_id"],
        inbox_id=values["inbox_id"],
        contact_id=values["contact_id"],
        seq=values["seq"],
        direction=values["direction"],
        sender_kind=values["sender_kind"],
        sender_id=values["sender_id"],
        private=values["private"],
        text=values["text"],
        html=values["html"],
        created_at=values["created_at"],
        attachments=values["attachments"],
        external_id=values["external_id"],
        email=values["email"],
    )
