"""Outbound email through the transactional outbox (PROTOCOLS.md P1, P4).

An agent's reply in an email conversation is written with an outbox row
in the same transaction (`prepare_reply_email` + `enqueue_email`, called
by do_send_message). The delivery worker (server.workers.email_delivery) claims
due rows (`do_claim_outbox`: a lease, so a worker that died loses the row
to the next one: at least once), renders and sends, and records how it
went (`do_record_delivery`): sent; a temporary failure retried with
backoff; a permanent one (5xx), or too many temporary ones, failed with
the reason shown on the message. Every attempt of one message carries
the same Message-ID, so the receiving side sees one mail.

The outbox also carries chat continuity mail (server.actions.
chat_continuity): a row whose payload has `kind: "continuity"` is one
mail of unseen widget replies. Its recipients, subject and text come from
the payload, not from a message's `email`; `message_id` is the last reply
it carries (so it follows that reply through a conversation merge). Its
outcome is recorded on the outbox row and announced as `message.emailed`:
the replies' own `delivery_status` is their delivery in the chat and is
never turned into an email status. A continuity row whose replies the
visitor has read in the chat by the time it is claimed is `cancelled`
rather than sent late.

And it carries touchpoint mail (server.actions.touch_claims): a row
whose payload has `kind: "touch"` sends the message the claim wrote,
like a reply (its recipients and subject are the message's `email`), but
as automatic mail: `Auto-Submitted: auto-generated` and a one-click
unsubscribe, sent at most once (an attempt whose outcome is uncertain
becomes `unknown`, never resent), and its outcome also moves the
decision on (server.actions.touch_outcomes), in the same transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.actions.context import ActionContext
from server.actions.touch_outcomes import TOUCH, touch_decision_id, touch_delivery_recorded
from server.domain.continuity import VISITOR_CHAT_PREFIX, seen_through
from server.domain.email_address import envelope_address
from server.domain.email_headers import EmailHeaders, addressed_to, continuity_mail
from server.domain.email_settings import MailSettings, mail_settings_of
from server.domain.errors import InvalidInput
from server.domain.events import MessageDeliveryChanged, MessagesEmailed
from server.domain.values import (
    DeliveryStatus,
    Direction,
    IdentityKind,
    SenderKind,
    normalize_identity,
)
from server.queries.email_replies import reply_defaults, suppressed
from server.queries.outbox import EMAIL_CHANNEL, due_rows
from server.queries.outbox import PENDING as PENDING_STATUS
from server.queries.records import (
    Conversation,
    Decision,
    Inbox,
    Message,
    OutboxItem,
    StoredJson,
    load,
)
from server.storage import tables as t
from server.storage.updates import RowWrites

CHANNEL = EMAIL_CHANNEL
MAX_RECIPIENTS = 20
MAX_ATTEMPTS = 12
LEASE = timedelta(minutes=5)
MAX_ERROR = 1000


# `payload.kind` of a chat continuity mail (and its stable_id's prefix).
CONTINUITY = "continuity"


class OutboxStatus:
    PENDING = PENDING_STATUS
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # nothing left to send (continuity: read meanwhile)
    # Automatic mail that may or may not have gone out (a worker died while
    # sending, or the connection broke during DATA): never resent (P1).
    UNKNOWN = "unknown"


def retry_delay(attempts: int) -> timedelta:
    """30 s, doubling, at most an hour: 12 attempts span about 7 hours."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


async def prepare_reply_email(
    ctx: ActionContext,
    conv: Conversation,
    inbox: Inbox,
    *,
    to: Sequence[str] | None,
    cc: Sequence[str] | None,
) -> EmailHeaders:
    """The `email` details of a reply about to be written in `conv`:
    recipients (the agent's, else those continuing the thread), subject
    and the ids it answers. Refuses, by field, bad or suppressed
    addresses and a reply with nobody to send it to."""
    own = [mail_settings_of(inbox.settings).address or ""]
    defaults = await reply_defaults(ctx.conn, conv, own_addresses=own)
    chosen_to = _checked(to if to is not None else defaults.to, "to")
    chosen_cc = _checked(cc if cc is not None else defaults.cc, "cc")
    chosen_cc = [a for a in chosen_cc if a not in chosen_to]
    if not chosen_to:
        raise InvalidInput(
            "to: this conversation has no email address to reply to; add one", field="to"
        )
    if len(chosen_to) + len(chosen_cc) > MAX_RECIPIENTS:
        raise InvalidInput(f"to: at most {MAX_RECIPIENTS} recipients in all", field="to")
    blocked = await suppressed(ctx.conn, conv.workspace_id, [*chosen_to, *chosen_cc])
    for name, addresses in (("to", chosen_to), ("cc", chosen_cc)):
        for i, address in enumerate(addresses):
            if address in blocked:
                raise InvalidInput(
                    f"{name}[{i}]: {address} no longer receives mail from us ({blocked[address]})",
                    field=f"{name}[{i}]",
                )
    return EmailHeaders(
        subject=defaults.subject,
        to=addressed_to(chosen_to),
        cc=addressed_to(chosen_cc),
        in_reply_to=defaults.in_reply_to,
        references=defaults.references[-20:],
    )


def _checked(addresses: Sequence[str], field: str) -> list[str]:
    """The addresses normalized, each once, held to the rule the renderer
    writes them by (`server.domain.email_address`, the one inbound From
    addresses are held to as well): a reply nobody could receive is
    refused here, by field, not failed later by the delivery worker."""
    out: list[str] = []
    for i, address in enumerate(addresses):
        value = normalize_identity(IdentityKind.EMAIL, address)
        try:
            envelope_address(value, field=f"{field}[{i}]")
        except ValueError as exc:
            raise InvalidInput(str(exc), field=f"{field}[{i}]") from None
        if value not in out:
            out.append(value)
    return out


async def enqueue_email(
    ctx: ActionContext, *, message_id: int, workspace_id: int, inbox_id: int
) -> None:
    """The outbox row that will send message `message_id` (written with it)."""
    await ctx.conn.execute(
        t.outbox.insert().values(
            workspace_id=workspace_id,
            inbox_id=inbox_id,
            message_id=message_id,
            channel=CHANNEL,
            stable_id=f"message:{message_id}",
            payload={},
            status=OutboxStatus.PENDING,
            attempts=0,
            due_at=ctx.now,
            created_at=ctx.now,
        )
    )


async def enqueue_touch_email(
    ctx: ActionContext,
    *,
    message_id: int,
    workspace_id: int,
    inbox_id: int,
    decision_id: int,
    resend: int = 0,
) -> int:
    """The outbox row that sends touch `decision_id`'s message (written
    with it). `resend` > 0 is an admin's deliberate resend of an
    `unknown` one: a row of its own, under a new stable id."""
    values = touch_outbox_row(
        message_id=message_id,
        workspace_id=workspace_id,
        inbox_id=inbox_id,
        decision_id=decision_id,
        now=ctx.now,
        resend=resend,
    )
    outbox_id: int = (
        await ctx.conn.execute(t.outbox.insert().values(**values).returning(t.outbox.c.id))
    ).scalar_one()
    return outbox_id


def touch_outbox_row(
    *,
    message_id: int,
    workspace_id: int,
    inbox_id: int,
    decision_id: int,
    now: datetime,
    resend: int = 0,
) -> dict[str, Any]:
    """The outbox row of touch `decision_id`'s message (see
    `enqueue_touch_email`)."""
    stable_id = f"{TOUCH}:{decision_id}" + (f":resend:{resend}" if resend else "")
    return {
        "workspace_id": workspace_id,
        "inbox_id": inbox_id,
        "message_id": message_id,
        "channel": CHANNEL,
        "stable_id": stable_id,
        "payload": {"kind": TOUCH, "decision_id": decision_id},
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "due_at": now,
        "created_at": now,
    }


@dataclasses.dataclass(frozen=True)
class JobFile:
    """An attachment of a claimed send, in the blob store."""

    filename: str
    content_type: str
    storage_key: str


@dataclasses.dataclass(frozen=True)
class OutboxJob:
    """One claimed send, with everything the worker needs to render it."""

    outbox_id: int
    attempts: int
    workspace_id: int
    inbox_id: int
    conversation_id: int
    message_id: int
    text: str
    # The stored headers (server.domain.email_headers.stored_headers reads
    # them when the mail is built: a malformed one fails that send only).
    email: StoredJson
    email_message_id: str | None
    created_at: datetime
    sender_name: str | None
    inbox_name: str
    inbox_mail: MailSettings
    inbox_secret: str | None
    attachments: tuple[JobFile, ...]
    html: str | None = None  # None: made from `text`
    auto_submitted: str | None = None  # RFC 3834, for automatic mail


async def do_claim_outbox(ctx: ActionContext, *, limit: int = 10) -> list[OutboxJob]:
    """Lease up to `limit` due email sends (rows other workers hold are
    skipped: SKIP LOCKED on PostgreSQL, one writer at a time on SQLite).
    The batch's lease, messages, inboxes, senders and attachments are
    each written or read once for the whole batch."""
    o = t.outbox.c
    rows = await ctx.conn.execute(
        sa.select(t.outbox)
        .where(due_rows(ctx.now))
        .order_by(o.due_at, o.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    leased = []
    abandoned = _Recording()
    for row in [load(OutboxItem, r) for r in rows]:
        if row.locked_until is not None and _automatic(row):
            # Its lease ran out with no outcome recorded: the worker died,
            # maybe after the server took the mail. Automatic mail is sent
            # at most once (PROTOCOLS.md P1), so it is not tried again.
            why = "the sending stopped half way; not sent again"
            await _settle_unknown(ctx, row, why, abandoned)
            continue
        leased.append(row)
    await abandoned.writes.flush(ctx.conn)
    if not leased:
        return []
    await ctx.conn.execute(
        t.outbox.update()
        .where(o.id.in_([row.id for row in leased]))
        .values(locked_until=ctx.now + LEASE, attempts=o.attempts + 1)
    )
    batch = await _JobRows.read(ctx.conn, leased)
    jobs = []
    for row in leased:
        job = await _job(ctx, row, batch)
        if job is not None:
            jobs.append(job)
    return jobs


@dataclasses.dataclass
class _JobRows:
    """The rows a batch of claimed sends is built from, read at once."""

    messages: dict[int, Message]
    inboxes: dict[int, Inbox]
    senders: dict[int, str]
    files: dict[int, tuple[JobFile, ...]]

    @classmethod
    async def read(cls, conn: AsyncConnection, rows: Sequence[OutboxItem]) -> _JobRows:
        m, i, a = t.messages.c, t.inboxes.c, t.attachments.c
        message_ids = {row.message_id for row in rows if row.message_id is not None}
        messages = {
            r.id: load(Message, r)
            for r in await conn.execute(sa.select(t.messages).where(m.id.in_(message_ids)))
        }
        inboxes = {
            r.id: load(Inbox, r)
            for r in await conn.execute(
                sa.select(t.inboxes).where(i.id.in_({row.inbox_id for row in rows}))
            )
        }
        agent_ids = {
            msg.sender_id
            for msg in messages.values()
            if msg.sender_id is not None and msg.sender_kind == "agent"
        }
        senders: dict[int, str] = {}
        if agent_ids:
            for agent_id, name in await conn.execute(
                sa.select(t.agents.c.id, t.agents.c.name).where(t.agents.c.id.in_(agent_ids))
            ):
                senders[agent_id] = name
        files: dict[int, list[JobFile]] = {}
        for message_id, filename, kind, key in await conn.execute(
            sa.select(a.message_id, a.filename, a.content_type, a.storage_key)
            .where(a.message_id.in_(message_ids))
            .order_by(a.message_id, a.id)
        ):
            files.setdefault(message_id, []).append(JobFile(filename, kind, key))
        return cls(messages, inboxes, senders, {k: tuple(v) for k, v in files.items()})


async def _job(ctx: ActionContext, row: OutboxItem, batch: _JobRows) -> OutboxJob | None:
    msg = None if row.message_id is None else batch.messages.get(row.message_id)
    inbox = batch.inboxes.get(row.inbox_id)
    if msg is None or inbox is None:  # deleted since: nothing to send
        await ctx.conn.execute(
            t.outbox.update()
            .where(t.outbox.c.id == row.id)
            .values(status=OutboxStatus.FAILED, last_error="the message no longer exists")
        )
        return None
    if _continuity(row):
        return await _continuity_job(ctx, row, msg, inbox)
    touch = touch_decision_id(row.payload) is not None
    sender_name = None
    if msg.sender_id is not None and msg.sender_kind == "agent":
        sender_name = batch.senders.get(msg.sender_id)
    return OutboxJob(
        outbox_id=row.id,
        attempts=row.attempts + 1,
        workspace_id=msg.workspace_id,
        inbox_id=msg.inbox_id,
        conversation_id=msg.conversation_id,
        message_id=msg.id,
        text=msg.text,
        email=msg.email or {},
        email_message_id=msg.email_message_id,
        created_at=msg.created_at,
        sender_name=sender_name,
        inbox_name=inbox.name,
        inbox_mail=mail_settings_of(inbox.settings),
        inbox_secret=inbox.secret_encrypted,
        attachments=batch.files.get(msg.id, ()),
        # A touch's rendered HTML part; a reply's is made from its text.
        html=msg.html if touch else None,
        auto_submitted="auto-generated" if touch else None,
    )


async def seen_in_chat(conn: AsyncConnection, conversation_id: int, read_seq: int) -> int:
    """How far the visitor has seen conversation `conversation_id` in the
    chat (server.domain.continuity.seen_through): its read receipt
    `read_seq`, or the last message it typed in the widget."""
    m = t.messages.c
    wrote: int | None = await conn.scalar(
        sa.select(sa.func.max(m.seq)).where(
            m.conversation_id == conversation_id,
            m.direction == Direction.INBOUND.value,
            m.sender_kind == SenderKind.CONTACT.value,
            m.external_id.startswith(VISITOR_CHAT_PREFIX),
        )
    )
    return seen_through(read_seq, [wrote] if wrote else [])


async def _files(conn: AsyncConnection, message_ids: Sequence[int]) -> tuple[JobFile, ...]:
    """The attachments of the messages, in their order."""
    a = t.attachments.c
    rows = await conn.execute(
        sa.select(a.filename, a.content_type, a.storage_key)
        .where(a.message_id.in_(message_ids))
        .order_by(a.message_id, a.id)
    )
    return tuple(JobFile(filename, kind, key) for filename, kind, key in rows)


async def _continuity_job(
    ctx: ActionContext, row: OutboxItem, last: Message, inbox: Inbox
) -> OutboxJob | None:
    """The job of a continuity row: the replies it carries that still
    exist, unless the visitor has seen them all in the chat meanwhile (an
    SMTP outage can hold a row for hours; a mail about replies already
    read would only confuse)."""
    mail, m = continuity_mail(row.payload), t.messages.c
    replies = await ctx.conn.execute(
        sa.select(m.id, m.seq).where(
            m.id.in_(mail.message_ids), m.conversation_id == last.conversation_id
        )
    )
    replies_seen = {reply_id: seq for reply_id, seq in replies}
    read_seq = await ctx.conn.scalar(
        sa.select(t.conversations.c.contact_last_read_seq).where(
            t.conversations.c.id == last.conversation_id
        )
    )
    seen = await seen_in_chat(ctx.conn, last.conversation_id, int(read_seq or 0))
    if all(seq <= seen for seq in replies_seen.values()):
        await ctx.conn.execute(
            t.outbox.update()
            .where(t.outbox.c.id == row.id)
            .values(
                status=OutboxStatus.CANCELLED,
                locked_until=None,
                last_error="the visitor read these replies in the chat before the mail went out",
            )
        )
        return None
    files = await _files(ctx.conn, list(replies_seen))
    return OutboxJob(
        outbox_id=row.id,
        attempts=row.attempts + 1,
        workspace_id=last.workspace_id,
        inbox_id=last.inbox_id,
        conversation_id=last.conversation_id,
        message_id=last.id,
        text=mail.text,
        email=mail.email,
        email_message_id=None,
        created_at=row.created_at,
        sender_name=mail.sender_name,
        inbox_name=inbox.name,
        inbox_mail=mail_settings_of(inbox.settings),
        inbox_secret=inbox.secret_encrypted,
        attachments=files,
        auto_submitted="auto-generated",
    )


async def do_record_delivery(
    ctx: ActionContext,
    *,
    outbox_id: int,
    status: str,
    reason: str,
    email_message_id: str | None = None,
    maybe_delivered: bool = False,
) -> str:
    """Record one attempt of a claimed send. `status` is the sender's:
    sent, temporary or permanent; `maybe_delivered` says a temporary
    failure came after the server may have taken the mail (automatic mail
    is then not retried). Returns the outbox row's new status."""
    o = t.outbox.c
    found = (
        await ctx.conn.execute(sa.select(t.outbox).where(o.id == outbox_id).with_for_update())
    ).first()
    row = None if found is None else load(OutboxItem, found)
    batch = _Recording()
    new = await _record(
        ctx,
        row,
        status=status,
        reason=reason,
        email_message_id=email_message_id,
        maybe_delivered=maybe_delivered,
        batch=batch,
    )
    await batch.writes.flush(ctx.conn)
    return new


@dataclasses.dataclass
class _Recording:
    """What recording a batch of attempts read and locked once — the
    rows' messages and touch decisions, kept up to date as they are
    written — and the writes it gathers for one flush at its end."""

    messages: dict[int, Message] = dataclasses.field(default_factory=dict)
    decisions: dict[int, Decision] = dataclasses.field(default_factory=dict)
    writes: RowWrites = dataclasses.field(default_factory=RowWrites)


async def _record(
    ctx: ActionContext,
    row: OutboxItem | None,
    *,
    status: str,
    reason: str,
    email_message_id: str | None,
    maybe_delivered: bool,
    batch: _Recording,
) -> str:
    """`do_record_delivery` of `row`, read and locked by the caller, in
    `batch`."""
    if row is None or row.status != OutboxStatus.PENDING:
        return row.status if row is not None else OutboxStatus.FAILED
    reason = reason[:MAX_ERROR]
    if status == "temporary" and maybe_delivered and _automatic(row):
        return await _settle_unknown(ctx, row, f"it may have arrived: {reason}", batch)
    if status == "sent":
        # Sent, but some recipients refused: the reason says who.
        new, delivery, error = OutboxStatus.SENT, DeliveryStatus.SENT, (reason or None)
        values: dict[str, object] = {"sent_at": ctx.now, "last_error": None}
    elif status == "temporary" and row.attempts < MAX_ATTEMPTS:
        new, delivery = OutboxStatus.PENDING, DeliveryStatus.PENDING
        error = f"retrying: {reason}"[:MAX_ERROR]
        values = {"due_at": ctx.now + retry_delay(row.attempts), "last_error": reason}
    else:
        new, delivery = OutboxStatus.FAILED, DeliveryStatus.FAILED
        gave_up = status == "temporary"
        error = (f"gave up after {row.attempts} attempts: {reason}" if gave_up else reason)[
            :MAX_ERROR
        ]
        values = {"last_error": reason}
    continuity = _continuity(row)
    if continuity and new == OutboxStatus.SENT and email_message_id is not None:
        # What the next continuity mail of the conversation answers to, so
        # the visitor's mail client threads them.
        values["payload"] = {**row.payload, "sent_message_id": email_message_id}
    batch.writes.set(t.outbox, row.id, {"status": new, "locked_until": None, **values})
    if continuity:
        if new != OutboxStatus.PENDING:
            await _continuity_settled(ctx, row, new, error)
    elif row.message_id is not None:
        await _update_message(ctx, row.message_id, delivery, error, email_message_id, batch=batch)
    await _touch_settled(ctx, row, new, error, email_message_id, batch=batch)
    return new


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    """One attempt's outcome, as `do_record_delivery` takes it."""

    outbox_id: int
    status: str
    reason: str
    email_message_id: str | None = None
    maybe_delivered: bool = False


async def do_record_deliveries(ctx: ActionContext, *, results: Sequence[DeliveryResult]) -> None:
    """Record a batch of attempts in one transaction (the delivery worker
    sends a batch concurrently and writes its outcomes at once), in
    outbox id order so two workers' batches take their row locks in the
    same order. The outbox rows, then their messages, are read and locked
    in one statement each."""
    o, m = t.outbox.c, t.messages.c
    ids = sorted({r.outbox_id for r in results})
    rows = {
        r.id: load(OutboxItem, r)
        for r in await ctx.conn.execute(
            sa.select(t.outbox).where(o.id.in_(ids)).order_by(o.id).with_for_update()
        )
    }
    message_ids = sorted(
        {
            row.message_id
            for row in rows.values()
            if row.message_id is not None
            and row.status == OutboxStatus.PENDING
            and not _continuity(row)
        }
    )
    batch = _Recording()
    batch.messages = {
        r.id: load(Message, r)
        for r in await ctx.conn.execute(
            sa.select(t.messages).where(m.id.in_(message_ids)).order_by(m.id).with_for_update()
        )
    }
    decision_ids = sorted(
        {i for row in rows.values() if (i := touch_decision_id(row.payload)) is not None}
    )
    if decision_ids:
        d = t.decisions.c
        batch.decisions = {
            r.id: load(Decision, r)
            for r in await ctx.conn.execute(
                sa.select(t.decisions)
                .where(d.id.in_(decision_ids))
                .order_by(d.id)
                .with_for_update()
            )
        }
    for result in sorted(results, key=lambda r: r.outbox_id):
        await _record(
            ctx,
            rows.get(result.outbox_id),
            status=result.status,
            reason=result.reason,
            email_message_id=result.email_message_id,
            maybe_delivered=result.maybe_delivered,
            batch=batch,
        )
    await batch.writes.flush(ctx.conn)


def _continuity(row: OutboxItem) -> bool:
    return bool((row.payload or {}).get("kind") == CONTINUITY)


def _automatic(row: OutboxItem) -> bool:
    """Automatic mail (chat continuity, touches) is sent at most once;
    people's replies at least once (the receiver dedupes by Message-ID)."""
    return _continuity(row) or touch_decision_id(row.payload) is not None


async def _touch_settled(
    ctx: ActionContext,
    row: OutboxItem,
    status: str,
    error: str | None,
    email_message_id: str | None,
    *,
    batch: _Recording,
) -> None:
    decision_id = touch_decision_id(row.payload)
    if decision_id is not None and status != OutboxStatus.PENDING:
        await touch_delivery_recorded(
            ctx,
            decision_id=decision_id,
            outbox_status=status,
            error=error,
            email_message_id=email_message_id,
            known=batch.decisions,
            writes=batch.writes,
        )


async def _settle_unknown(
    ctx: ActionContext, row: OutboxItem, reason: str, batch: _Recording
) -> str:
    error = f"delivery unknown: {reason}"[:MAX_ERROR]
    batch.writes.set(
        t.outbox,
        row.id,
        {"status": OutboxStatus.UNKNOWN, "locked_until": None, "last_error": error},
    )
    if _continuity(row):
        await _continuity_settled(ctx, row, OutboxStatus.UNKNOWN, error)
    elif row.message_id is not None:
        await _update_message(ctx, row.message_id, DeliveryStatus.PENDING, error, None, batch=batch)
    await _touch_settled(ctx, row, OutboxStatus.UNKNOWN, error, None, batch=batch)
    return OutboxStatus.UNKNOWN


async def _continuity_settled(
    ctx: ActionContext, row: OutboxItem, status: str, error: str | None
) -> None:
    """Announce how a continuity mail ended; the replies' chat delivery
    state stays as it is."""
    m = t.messages.c
    conversation_id: int | None = await ctx.conn.scalar(
        sa.select(m.conversation_id).where(m.id == row.message_id)
    )
    if conversation_id is None:  # deleted meanwhile (its row would be gone too)
        return
    mail = continuity_mail(row.payload)
    await ctx.emit(
        MessagesEmailed(
            workspace_id=row.workspace_id,
            conversation_id=conversation_id,
            inbox_id=row.inbox_id,
            message_ids=list(mail.message_ids),
            address=mail.address,
            outbox_id=row.id,
            status=status,
            error=error,
        )
    )


async def _update_message(
    ctx: ActionContext,
    message_id: int,
    delivery: DeliveryStatus,
    error: str | None,
    email_message_id: str | None,
    *,
    batch: _Recording,
) -> None:
    """The message's delivery state after an attempt (the batch's copy of
    it is kept up to date: its write waits for the batch's flush)."""
    m = t.messages.c
    msg = batch.messages.get(message_id)
    if msg is None:
        found = (
            await ctx.conn.execute(
                sa.select(t.messages).where(m.id == message_id).with_for_update()
            )
        ).first()
        if found is None:
            return
        msg = load(Message, found)
    values: dict[str, Any] = {}
    if email_message_id is not None and msg.email_message_id is None:
        values["email_message_id"] = email_message_id
    # A bounce may have marked it failed already: a late "sent" can't undo that.
    changed = msg.delivery_status != DeliveryStatus.FAILED.value and (
        msg.delivery_status != delivery.value or msg.delivery_error != error
    )
    if changed:
        values.update(delivery_status=delivery.value, delivery_error=error)
    if values:
        batch.writes.set(t.messages, message_id, values)
        batch.messages[message_id] = dataclasses.replace(msg, **values)
    if changed:
        await ctx.emit(
            MessageDeliveryChanged(
                workspace_id=msg.workspace_id,
                message_id=msg.id,
                conversation_id=msg.conversation_id,
                inbox_id=msg.inbox_id,
                delivery_status=delivery.value,
                delivery_error=error,
            )
        )
