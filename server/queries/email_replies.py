"""What an email reply in a conversation goes out with, unless the agent
changes it: the recipients and subject that continue the customer's
thread (reply to all, the customer always in To), and which addresses
are suppressed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.email_address import address_problem
from server.domain.email_headers import ReceivedHeaders, received_headers
from server.domain.email_settings import mail_settings_of
from server.domain.email_subjects import reply_subject
from server.domain.email_threading import (
    Flag,
    Reason,
    normalize_address,
    normalize_message_id,
)
from server.domain.email_tokens import looks_like_reply_address
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.domain.values import Direction, InboxKind
from server.queries.access import access_conversation
from server.queries.contacts import email_identities, identities_of
from server.queries.inboxes import get_inbox
from server.queries.records import Conversation
from server.storage import tables as t

DEFAULT_SUBJECT = "Your message"
# How many of the latest inbound mails are looked through for the
# customer's own (the rest may be a colleague's replies into the thread).
LOOKBACK = 50


@dataclasses.dataclass(frozen=True)
class ReplyDefaults:
    """`subject` is ready to send ("Re: …" when answering a mail)."""

    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]


async def email_reply_defaults(
    conn: AsyncConnection, actor: Actor, conversation_id: int
) -> dict[str, JsonValue]:
    """`GET /conversations/{id}/email_defaults`: what the composer shows."""
    conv = await access_conversation(conn, actor, conversation_id)
    inbox = await get_inbox(conn, conv.inbox_id)
    if inbox.kind != InboxKind.EMAIL.value:
        raise NotFound("not an email conversation", field="conversation_id")
    found = await reply_defaults(
        conn, conv, own_addresses=[mail_settings_of(inbox.settings).address or ""]
    )
    blocked = await suppressed(conn, conv.workspace_id, [*found.to, *found.cc])
    return {
        "to": list(found.to),
        "cc": list(found.cc),
        "subject": found.subject,
        "suppressed": [{"address": a, "reason": r} for a, r in sorted(blocked.items())],
    }


async def reply_defaults(
    conn: AsyncConnection, conv: Conversation, *, own_addresses: Iterable[str] = ()
) -> ReplyDefaults:
    """Reply to the customer, continuing the thread (reply to all).

    To: the Reply-To, else the From, of the latest mail from the
    conversation's customer; everyone else the latest mail in the thread
    went to is in Cc, and so is its sender when that was someone else
    (a colleague replying into the thread: threading flagged it
    `different_sender`). The other person is offered, never put in the
    customer's place. Our own addresses are never offered. With no mail
    from the customer yet, To is the contact's email address."""
    m = t.messages.c
    mails = [
        received_headers(email)
        for email in (
            await conn.execute(
                sa.select(m.email)
                .where(
                    m.conversation_id == conv.id,
                    m.direction == Direction.INBOUND.value,
                    m.email.is_not(None),
                )
                .order_by(m.seq.desc())
                .limit(LOOKBACK)
            )
        ).scalars()
    ]
    subject = conv.subject or DEFAULT_SUBJECT
    if not mails:
        return ReplyDefaults(await _contact_addresses(conn, conv.contact_id), (), subject, None, ())
    last = mails[0]
    customers = next((e for e in mails if not _from_someone_else(e)), None)
    to = _answer_to(customers) if customers is not None else ()
    to = to or await _contact_addresses(conn, conv.contact_id)
    ours = {normalize_address(a) for a in own_addresses}
    others = [*last.to, *last.cc]
    if last is not customers:
        others = [*_answer_to(last), *others]
    cc = tuple(
        a
        for a in _unique(others)
        if a not in to and a not in ours and not looks_like_reply_address(a)
    )
    msgid = normalize_message_id(last.message_id or "")
    refs = tuple(r for r in (normalize_message_id(x) for x in last.references) if r)
    return ReplyDefaults(
        to,
        cc,
        reply_subject(last.subject or subject),
        msgid,
        (*refs, msgid) if msgid else refs,
    )


def _from_someone_else(email: ReceivedHeaders) -> bool:
    """Whether threading joined this mail to a conversation whose contact
    is not its sender. (A mail that opened a conversation of its own for
    its sender carries the same flag; its sender is that one's contact.)"""
    return (
        Flag.DIFFERENT_SENDER.value in email.thread_flags
        and email.thread_reason != Reason.NEW_DIFFERENT_SENDER.value
    )


def _answer_to(email: ReceivedHeaders) -> tuple[str, ...]:
    """Where an answer to `email` goes: its Reply-To, else its From."""
    return _unique(email.reply_to) or _unique([email.sender])


def _unique(addresses: Iterable[str | None]) -> tuple[str, ...]:
    """Each address once, normalized; what is no email address (a bare
    `To: jane` of the customer's mail) is never offered."""
    out: list[str] = []
    for address in addresses:
        value = normalize_address(address or "")
        if value and value not in out and address_problem(value) is None:
            out.append(value)
    return tuple(out)


async def _contact_addresses(conn: AsyncConnection, contact_id: int) -> tuple[str, ...]:
    """The contact's best email address: verified first, then the oldest."""
    emails = email_identities((await identities_of(conn, [contact_id]))[contact_id])
    best = sorted(emails, key=lambda i: not i.verified)[:1]  # stable: oldest first
    return tuple(i.value for i in best)


async def suppressed(
    conn: AsyncConnection, workspace_id: int, addresses: Iterable[str], *, automated: bool = False
) -> dict[str, str]:
    """The addresses among `addresses` that must not be mailed, with why:
    bounced ones; for `automated` mail also those that unsubscribed."""
    wanted = list({normalize_address(a) for a in addresses})
    if not wanted:
        return {}
    s = t.email_suppressions.c
    stmt = sa.select(s.address, s.reason).where(
        s.workspace_id == workspace_id, s.address.in_(wanted)
    )
    if not automated:
        stmt = stmt.where(s.scope == "all")
    rows = await conn.execute(stmt)
    return {r.address: r.reason for r in rows}
