"""Reading contacts and the one timeline per customer (FEATURES.md F3).

Contacts are visible workspace-wide to every agent; a contact's timeline
only shows messages of conversations in inboxes the caller can see.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import InvalidInput, NotFound
from server.domain.json_types import JsonValue
from server.domain.values import IdentityKind, normalize_identity
from server.queries.access import access_contact, inbox_filter, visible_inbox_ids
from server.queries.api_shapes import iso, message_view
from server.queries.pagination import DEFAULT_LIMIT, decode_time_id_cursor, page
from server.queries.records import Contact, ContactEvent, Message, load
from server.storage import tables as t

_MAX_ID = 2**63 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """One of a contact's identities (an email, a phone, an external id)."""

    kind: str
    value: str
    verified: bool


def identity_view(identity: Identity) -> dict[str, JsonValue]:
    return {"kind": identity.kind, "value": identity.value, "verified": identity.verified}


def contact_view(row: Contact, identities: Sequence[Identity]) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "name": row.name,
        "attributes": row.attributes,
        "identities": [identity_view(i) for i in identities],
        "created_at": iso(row.created_at),
        "last_seen_at": iso(row.last_seen_at),
        # Set once this contact was merged into another: the UI goes there.
        "merged_into_id": row.merged_into_id,
    }


@dataclasses.dataclass(frozen=True, slots=True)
class TimelineItem:
    """A message plus where it happened: the inbox, its channel, and the
    conversation's subject and status."""

    message: Message
    inbox_id: int
    inbox_name: str
    channel: str
    conversation_subject: str | None
    conversation_status: str

    @classmethod
    def load(cls, row: sa.Row[Any]) -> TimelineItem:
        return cls(
            load(Message, row),
            row.inbox_id,
            row.inbox_name,
            row.channel,
            row.conversation_subject,
            row.conversation_status,
        )


def timeline_item_view(item: TimelineItem) -> dict[str, JsonValue]:
    return {
        **message_view(item.message),
        "inbox_id": item.inbox_id,
        "inbox_name": item.inbox_name,
        "channel": item.channel,
        "conversation_subject": item.conversation_subject,
        "conversation_status": item.conversation_status,
    }


def email_identities(identities: Sequence[Identity]) -> list[Identity]:
    """The email identities among `identities_of`'s, in their order."""
    return [i for i in identities if i.kind == IdentityKind.EMAIL.value]


async def identities_of(conn: AsyncConnection, ids: list[int]) -> dict[int, list[Identity]]:
    """Each contact's identities, oldest first."""
    out: defaultdict[int, list[Identity]] = defaultdict(list)
    if ids:
        ci = t.contact_identities.c
        stmt: sa.Select[Any] = (
            sa.select(ci.contact_id, ci.kind, ci.value, ci.verified)
            .where(ci.contact_id.in_(ids))
            .order_by(ci.contact_id, ci.id)
        )
        for r in await conn.execute(stmt):
            contact_id: int = r.contact_id
            out[contact_id].append(load(Identity, r))
    return out


async def contact_detail(
    conn: AsyncConnection, actor: Actor, contact_id: int
) -> dict[str, JsonValue]:
    row = await access_contact(conn, actor, contact_id)
    return contact_view(row, (await identities_of(conn, [row.id]))[row.id])


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_contacts(
    conn: AsyncConnection,
    actor: Actor,
    *,
    q: str | None = None,
    identity_kind: IdentityKind | None = None,
    identity_value: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """Newest first. `q` matches a case-insensitive substring of the name
    (wildcards in it are literal); `identity_kind` + `identity_value` find
    the contact holding that identity (exact, after normalisation). Filters
    combine with AND. Contacts merged into another are left out (their
    identities moved to the survivor, which an identity search finds)."""
    if (identity_kind is None) != (identity_value is None):
        missing = "identity_value" if identity_value is None else "identity_kind"
        raise InvalidInput("identity_kind and identity_value go together", field=missing)
    c = t.contacts.c
    stmt = sa.select(t.contacts).where(
        c.workspace_id == actor.workspace_id, c.merged_into_id.is_(None)
    )
    if q:
        stmt = stmt.where(c.name.ilike(f"%{_like_escape(q)}%", escape="\\"))
    if identity_kind is not None and identity_value is not None:
        ci = t.contact_identities.c
        stmt = stmt.where(
            sa.exists().where(
                ci.contact_id == c.id,
                ci.workspace_id == actor.workspace_id,
                ci.kind == identity_kind.value,
                ci.value == normalize_identity(identity_kind, identity_value),
            )
        )
    if cursor is not None:
        at, last_id = decode_time_id_cursor(cursor)
        stmt = stmt.where(sa.or_(c.created_at < at, sa.and_(c.created_at == at, c.id < last_id)))
    stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    rows = [load(Contact, r) for r in await conn.execute(stmt)]
    identities = await identities_of(conn, [r.id for r in rows])
    items = [contact_view(r, identities[r.id]) for r in rows]
    return page(items, limit, lambda item: (item["created_at"], item["id"]))


async def contact_timeline(
    conn: AsyncConnection,
    actor: Actor,
    contact_id: int,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """Every message of the contact, across all its conversations and
    inboxes the caller can see, oldest first (created_at, then id). Private
    notes are included: every caller here is an agent.

    Reads the `ix_messages_contact_created` range (messages carry the
    contact id), joining each message to its conversation and inbox."""
    await access_contact(conn, actor, contact_id)
    visible = await visible_inbox_ids(conn, actor)
    m, conv, inbox = t.messages.c, t.conversations.c, t.inboxes.c
    stmt = (
        sa.select(
            t.messages,
            conv.inbox_id,
            inbox.name.label("inbox_name"),
            inbox.kind.label("channel"),
            conv.subject.label("conversation_subject"),
            conv.status.label("conversation_status"),
        )
        .join(t.conversations, conv.id == m.conversation_id)
        .join(t.inboxes, inbox.id == conv.inbox_id)
        .where(
            m.contact_id == contact_id,
            m.workspace_id == actor.workspace_id,
            inbox_filter(conv.inbox_id, visible),
        )
    )
    if cursor is not None:
        at, last_id = decode_time_id_cursor(cursor)
        stmt = stmt.where(sa.or_(m.created_at > at, sa.and_(m.created_at == at, m.id > last_id)))
    stmt = stmt.order_by(m.created_at, m.id).limit(limit + 1)
    rows = (await conn.execute(stmt)).all()
    items = [timeline_item_view(TimelineItem.load(r)) for r in rows]
    return page(items, limit, lambda item: (item["created_at"], item["id"]))


async def contact_events(
    conn: AsyncConnection,
    actor: Actor,
    contact_id: int,
    *,
    name: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """What the contact did on the site (the widget's `track`), newest
    first, optionally only events called `name`."""
    await access_contact(conn, actor, contact_id)
    e = t.contact_events.c
    stmt = sa.select(t.contact_events).where(
        e.contact_id == contact_id, e.workspace_id == actor.workspace_id
    )
    if name is not None:
        stmt = stmt.where(e.name == name)
    if cursor is not None:
        at, last_id = decode_time_id_cursor(cursor)
        stmt = stmt.where(sa.or_(e.created_at < at, sa.and_(e.created_at == at, e.id < last_id)))
    rows = (
        await conn.execute(stmt.order_by(e.created_at.desc(), e.id.desc()).limit(limit + 1))
    ).all()
    items = [contact_event_view(load(ContactEvent, r)) for r in rows]
    return page(items, limit, lambda item: (item["created_at"], item["id"]))


def contact_event_view(event: ContactEvent) -> dict[str, JsonValue]:
    return {
        "id": event.id,
        "name": event.name,
        "properties": event.properties,
        "created_at": iso(event.created_at),
    }


async def contact_event_detail(
    conn: AsyncConnection, actor: Actor, contact_id: int, event_id: int
) -> dict[str, JsonValue]:
    """One tracked event of the contact, as the list shows it."""
    await access_contact(conn, actor, contact_id)
    e = t.contact_events.c
    row = (
        await conn.execute(
            sa.select(t.contact_events).where(
                e.id == event_id, e.contact_id == contact_id, e.workspace_id == actor.workspace_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("contact event not found")
    return contact_event_view(load(ContactEvent, row))
