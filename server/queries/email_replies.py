"""What an email reply in a conversation goes out with, unless the agent
changes it: the recipients and subject that continue the customer's
thread (reply to all), and which addresses are suppressed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.email.render import reply_subject
from server.domain.actors import Actor
from server.domain.email_threading import normalize_address, normalize_message_id
from server.domain.email_tokens import looks_like_reply_address
from server.domain.errors import NotFound
from server.domain.values import Direction, InboxKind
from server.queries.access import AnyRow, access_conversation
from server.queries.contacts import email_identities, identities_of
from server.storage import tables as t

DEFAULT_SUBJECT = "Your message"


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
) -> dict[str, Any]:
    """`GET /conversations/{id}/email_defaults`: what the composer shows."""
    conv = await access_conversation(conn, actor, conversation_id)
    inbox = (await conn.execute(sa.select(t.inboxes).where(t.inboxes.c.id == conv.inbox_id))).one()
    if inbox.kind != InboxKind.EMAIL.value:
        raise NotFound("not an email conversation", field="conversation_id")
    found = await reply_defaults(conn, conv, own_addresses=[inbox.settings.get("address") or ""])
    blocked = await suppressed(conn, conv.workspace_id, [*found.to, *found.cc])
    return {
        "to": list(found.to),
        "cc": list(found.cc),
        "subject": found.subject,
        "suppressed": [{"address": a, "reason": r} for a, r in sorted(blocked.items())],
    }


async def reply_defaults(
    conn: AsyncConnection, conv: AnyRow, *, own_addresses: Iterable[str] = ()
) -> ReplyDefaults:
    """Reply to the customer's latest mail in `conv` (its Reply-To, else
    its sender; everyone else it was sent to in Cc, but never our own
    addresses); a conversation with no mail yet goes to its contact's
    email address."""
    m = t.messages.c
    last = (
        await conn.execute(
            sa.select(m.email)
            .where(
                m.conversation_id == conv.id,
                m.direction == Direction.INBOUND.value,
                m.email.is_not(None),
            )
            .order_by(m.seq.desc())
            .limit(1)
        )
    ).first()
    subject = conv.subject or DEFAULT_SUBJECT
    if last is None:
        return ReplyDefaults(await _contact_addresses(conn, conv.contact_id), (), subject, None, ())
    email: dict[str, Any] = last.email
    ours = {normalize_address(a) for a in own_addresses}
    to = _unique(a["address"] for a in (email.get("reply_to") or [email.get("from") or {}]))
    others = (a["address"] for a in [*email.get("to", []), *email.get("cc", [])])
    cc = tuple(
        a
        for a in _unique(others)
        if a not in to and a not in ours and not looks_like_reply_address(a)
    )
    msgid = normalize_message_id(email.get("message_id") or "")
    refs = tuple(r for r in (normalize_message_id(x) for x in email.get("references", [])) if r)
    return ReplyDefaults(
        to or await _contact_addresses(conn, conv.contact_id),
        cc,
        reply_subject(email.get("subject") or subject),
        msgid,
        (*refs, msgid) if msgid else refs,
    )


def _unique(addresses: Iterable[str | None]) -> tuple[str, ...]:
    out: list[str] = []
    for address in addresses:
        value = normalize_address(address or "")
        if value and value not in out:
            out.append(value)
    return tuple(out)


async def _contact_addresses(conn: AsyncConnection, contact_id: int) -> tuple[str, ...]:
    """The contact's best email address: verified first, then the oldest."""
    emails = email_identities((await identities_of(conn, [contact_id]))[contact_id])
    best = sorted(emails, key=lambda i: not i["verified"])[:1]  # stable: oldest first
    return tuple(i["value"] for i in best)


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
