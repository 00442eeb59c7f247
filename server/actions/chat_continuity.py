"""Offline chat continuity (FEATURES.md F2): a widget reply the visitor has
not seen within the inbox's `continuity_email_after_minutes` is emailed to
them, and their answer by mail lands back in the same conversation.

What is sent, when and to whom is decided by server.domain.continuity
(see its docstring for the rules and for why a typed, unverified address
is used). This module gathers the facts and writes the decision:

- `due_conversations` (a read) lists the conversations of an inbox that
  have a mail to send now. It is only a hint for the worker
  (server.workers.chat_continuity): anything may change before the write.
- `do_queue_continuity_email` decides again under the conversation's row
  lock and, when a mail is due, writes one outbox row (server.actions.
  outbound_email) that the delivery worker sends like any mail: Reply-To
  the conversation's signed reply address, From the inbox,
  `Auto-Submitted: auto-generated`.

Exactly once: the replies a mail carries are recorded in its outbox row
(`payload.message_ids`) in the transaction that decides it, and every
later decision skips replies already in a row. The decision runs under
the conversation's lock (FOR UPDATE on PostgreSQL; on SQLite every write
is serialized by BEGIN IMMEDIATE), so two workers deciding at once queue
one mail, the second seeing the first's row. The row's `stable_id`
(`continuity:<id of the last reply it carries>`) is UNIQUE as well, so
even a decision that somehow raced would fail to insert rather than mail
twice. A crash before the commit leaves nothing; after it, the row is
there and the replies are never picked again. The row's `message_id` is
that last reply: the rows of a conversation are found through their
messages, and follow them through a conversation merge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.actions.context import ActionContext
from server.actions.outbound_email import CHANNEL, CONTINUITY, OutboxStatus, seen_in_chat
from server.domain.continuity import (
    REPLY_SENDER_KINDS,
    AddressOption,
    AddressSource,
    Reply,
    ReplyText,
    choose_recipient,
    continuity_delay,
    continuity_subject,
    continuity_text,
    due_batch,
    oldest_due,
    single_sender,
)
from server.domain.email_address import envelope_address
from server.domain.email_headers import (
    ContinuityMail,
    EmailHeaders,
    addressed_to,
    continuity_mail,
)
from server.domain.email_settings import mail_settings_of
from server.domain.email_threading import normalize_address
from server.domain.values import Direction, InboxKind, SenderKind
from server.queries.access import access_conversation
from server.queries.contacts import email_identities, identities_of
from server.queries.email_replies import suppressed
from server.queries.inboxes import find_inbox, get_inbox
from server.queries.records import Conversation, Inbox, Message, load
from server.storage import tables as t

# Replies read per conversation per decision, the newest (more than any
# mail carries, so older ones left out were mailed or seen long ago).
MAX_REPLIES_READ = 200
PAGE = 200
MAX_THREAD_REFERENCES = 10


@dataclasses.dataclass(frozen=True)
class ContinuityPlan:
    """One mail to queue: the replies it carries and what it says."""

    conversation_id: int
    message_ids: tuple[int, ...]
    seqs: tuple[int, ...]
    recipient: AddressOption
    subject: str
    text: str
    sender_name: str | None
    in_reply_to: str | None
    references: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class QueuedContinuity:
    outbox_id: int
    conversation_id: int
    message_ids: tuple[int, ...]
    address: str


@dataclasses.dataclass(frozen=True)
class DuePage:
    """Conversations (workspace_id, conversation_id) with a mail due, and
    where the next page starts (None: this was the last)."""

    due: list[tuple[int, int]]
    next_after: int | None


async def continuity_inbox_ids(conn: AsyncConnection) -> list[int]:
    """The widget inboxes that have chat continuity turned on."""
    i = t.inboxes.c
    rows = await conn.execute(
        sa.select(i.id, i.settings).where(i.kind == InboxKind.WIDGET.value).order_by(i.id)
    )
    return [r.id for r in rows if continuity_delay(r.settings) is not None]


async def due_conversations(
    conn: AsyncConnection, *, inbox_id: int, now: datetime, after_id: int = 0, limit: int = PAGE
) -> DuePage:
    """The conversations of inbox `inbox_id` (id above `after_id`, at most
    `limit` looked at) that have a continuity mail to send at `now`.

    A cheap filter first (a reply the read receipt has not reached, old
    enough and not too old), then the full decision for each: a
    conversation whose visitor gave no address stays out, so it costs
    the worker no write transaction."""
    inbox = await find_inbox(conn, inbox_id)
    delay = continuity_delay(inbox.settings) if inbox is not None else None
    if inbox is None or inbox.kind != InboxKind.WIDGET.value or delay is None:
        return DuePage([], None)
    c, m = t.conversations.c, t.messages.c
    oldest = oldest_due(now, delay)
    found = await conn.execute(
        sa.select(t.conversations)
        .where(
            c.inbox_id == inbox_id,
            c.id > after_id,
            c.last_activity_at >= oldest,
            c.last_seq > c.contact_last_read_seq,
            sa.exists().where(
                m.conversation_id == c.id,
                m.seq > c.contact_last_read_seq,
                *_reply_conditions(),
                m.created_at <= now - delay,
                m.created_at >= oldest,
            ),
        )
        .order_by(c.id)
        .limit(limit)
    )
    rows = [load(Conversation, r) for r in found]
    due = [
        (conv.workspace_id, conv.id)
        for conv in rows
        if await plan_continuity(conn, conv, inbox, now) is not None
    ]
    return DuePage(due, rows[-1].id if len(rows) == limit else None)


def _reply_conditions() -> tuple[sa.ColumnElement[bool], ...]:
    m = t.messages.c
    return (
        m.direction == Direction.OUTBOUND.value,
        m.private.is_(False),
        m.sender_kind.in_([k.value for k in REPLY_SENDER_KINDS]),
    )


async def plan_continuity(
    conn: AsyncConnection, conv: Conversation, inbox: Inbox, now: datetime
) -> ContinuityPlan | None:
    """The mail conversation `conv` of `inbox` should send at `now`, or
    None: the feature is off, no reply is due, or nobody to mail."""
    delay = continuity_delay(inbox.settings)
    if delay is None or inbox.kind != InboxKind.WIDGET.value:
        return None
    m = t.messages.c
    newest_first = (
        await conn.execute(
            sa.select(t.messages)
            .where(
                m.conversation_id == conv.id,
                m.seq > conv.contact_last_read_seq,
                *_reply_conditions(),
                m.created_at >= oldest_due(now, delay),
            )
            .order_by(m.seq.desc())
            .limit(MAX_REPLIES_READ)
        )
    ).all()
    rows = [load(Message, r) for r in reversed(newest_first)]
    if not rows:
        return None
    earlier = await _continuity_mails(conn, conv.id)
    batch = due_batch(
        [Reply(r.id, r.seq, r.created_at) for r in rows],
        seen_seq=await seen_in_chat(conn, conv.id, conv.contact_last_read_seq),
        emailed={i for mail in earlier for i in mail.message_ids},
        now=now,
        delay=delay,
    )
    if not batch:
        return None
    options = await _address_options(conn, conv.contact_id)
    recipient = choose_recipient(
        options,
        suppressed=await suppressed(
            conn, conv.workspace_id, [o.address for o in options], automated=True
        ),
        verified_only=inbox.settings.get("require_verification") is True,
    )
    if recipient is None:
        return None
    chosen = {r.message_id for r in batch}
    replies = [r for r in rows if r.id in chosen]
    names = await _agent_names(conn, replies)
    texts = [
        ReplyText(
            names.get(r.sender_id)
            if r.sender_kind == SenderKind.AGENT.value and r.sender_id is not None
            else None,
            r.text,
            tuple(str(a.get("filename", "")) for a in r.attachments or []),
        )
        for r in replies
    ]
    team = mail_settings_of(inbox.settings).from_name or inbox.name
    sent = [mail.sent_message_id for mail in earlier if mail.sent_message_id]
    return ContinuityPlan(
        conversation_id=conv.id,
        message_ids=tuple(r.id for r in replies),
        seqs=tuple(r.seq for r in replies),
        recipient=recipient,
        subject=continuity_subject(texts, team),
        text=continuity_text(texts, team),
        sender_name=single_sender(texts),
        in_reply_to=sent[-1] if sent else None,
        references=tuple(sent[-MAX_THREAD_REFERENCES:]),
    )


async def _continuity_mails(conn: AsyncConnection, conversation_id: int) -> list[ContinuityMail]:
    """The conversation's continuity mails (their outbox rows' payloads),
    oldest first, found through the last reply each carries."""
    o, m = t.outbox.c, t.messages.c
    stmt = (
        sa.select(o.payload)
        .select_from(t.outbox.join(t.messages, m.id == o.message_id))
        .where(
            m.conversation_id == conversation_id,
            o.channel == CHANNEL,
            o.stable_id.startswith(f"{CONTINUITY}:"),
        )
        .order_by(o.id)
    )
    return [continuity_mail(payload) for payload in await conn.scalars(stmt)]


async def _address_options(conn: AsyncConnection, contact_id: int) -> list[AddressOption]:
    """Every address the contact might be mailed at that mail can be sent
    to: its email identities (oldest first), then its `email` attribute."""
    identities = email_identities((await identities_of(conn, [contact_id]))[contact_id])
    options = [
        AddressOption(address, bool(i.verified), AddressSource.IDENTITY)
        for i in identities
        if (address := _mailable(i.value)) is not None
    ]
    attributes: Mapping[str, object] | None = await conn.scalar(
        sa.select(t.contacts.c.attributes).where(t.contacts.c.id == contact_id)
    )
    typed = (attributes or {}).get("email")
    address = _mailable(typed) if isinstance(typed, str) else None
    if address is not None and all(o.address != address for o in options):
        options.append(AddressOption(address, False, AddressSource.ATTRIBUTE))
    return options


def _mailable(value: str) -> str | None:
    """`value` normalized, if it is an address the renderer can send to
    (a typed attribute can be anything); None otherwise."""
    address = normalize_address(value)
    try:
        envelope_address(address)
    except ValueError:
        return None
    return address


async def _agent_names(conn: AsyncConnection, replies: Sequence[Message]) -> dict[int, str]:
    ids = {r.sender_id for r in replies if r.sender_kind == SenderKind.AGENT.value}
    if not ids:
        return {}
    a = t.agents.c
    rows = await conn.execute(sa.select(a.id, a.name).where(a.id.in_(ids)))
    return {r.id: r.name for r in rows}


async def do_queue_continuity_email(
    ctx: ActionContext, *, conversation_id: int
) -> QueuedContinuity | None:
    """Queue the continuity mail conversation `conversation_id` has due
    now, if any (see the module docstring); None when there is nothing to
    send. Emits nothing: the mail's outcome is announced by the delivery
    (`message.emailed`)."""
    conv = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    inbox = await get_inbox(ctx.conn, conv.inbox_id)
    plan = await plan_continuity(ctx.conn, conv, inbox, ctx.now)
    if plan is None:
        return None
    payload = {
        "kind": CONTINUITY,
        "conversation_id": conv.id,
        "message_ids": list(plan.message_ids),
        "seqs": list(plan.seqs),
        "address_verified": plan.recipient.verified,
        "address_source": plan.recipient.source.value,
        "sender_name": plan.sender_name,
        "text": plan.text,
        "email": EmailHeaders(
            subject=plan.subject,
            to=addressed_to((plan.recipient.address,)),
            in_reply_to=plan.in_reply_to,
            references=plan.references,
        ).stored(),
    }
    outbox_id: int = (
        await ctx.conn.execute(
            t.outbox.insert()
            .values(
                workspace_id=conv.workspace_id,
                inbox_id=conv.inbox_id,
                message_id=plan.message_ids[-1],
                channel=CHANNEL,
                stable_id=f"{CONTINUITY}:{plan.message_ids[-1]}",
                payload=payload,
                status=OutboxStatus.PENDING,
                attempts=0,
                due_at=ctx.now,
                created_at=ctx.now,
            )
            .returning(t.outbox.c.id)
        )
    ).scalar_one()
    return QueuedContinuity(outbox_id, conv.id, plan.message_ids, plan.recipient.address)
