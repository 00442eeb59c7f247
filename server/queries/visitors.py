"""What a widget visitor may read: its session, its inbox's public face and
its own open conversation — never private notes, never another contact's.

A visitor is not an Actor (it is no agent of the workspace); it is
identified by its session token alone and every read here is sealed to
that session's contact and inbox.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.json_types import JsonObject, JsonValue
from server.domain.values import ConversationStatus, InboxKind, widget_client_id
from server.domain.widget_settings import PUBLIC_KEYS
from server.queries.api_shapes import iso, message_view
from server.queries.records import Conversation, Inbox, Message, StoredJson, load, load_or_none
from server.storage import tables as t
from server.storage.secrets import hash_token

MESSAGE_LIMIT = 100


@dataclasses.dataclass(frozen=True)
class VisitorSession:
    """A live widget session, resolved from its token."""

    session_id: int
    workspace_id: int
    inbox_id: int
    contact_id: int
    verified: bool
    inbox_settings: StoredJson
    # The contact the session proved (visitor_sessions.proven_contact_id):
    # it follows only conversations opened for that contact.
    proven_contact_id: int


async def widget_inbox_by_token(conn: AsyncConnection, public_token: str) -> Inbox | None:
    """The widget inbox an embed snippet names by its public token."""
    row = (
        await conn.execute(
            sa.select(t.inboxes).where(
                t.inboxes.c.public_token == public_token,
                t.inboxes.c.kind == InboxKind.WIDGET.value,
            )
        )
    ).first()
    return load_or_none(Inbox, row)


async def visitor_session_for_token(conn: AsyncConnection, token: str) -> VisitorSession | None:
    return await visitor_session_where(conn, t.visitor_sessions.c.token_hash == hash_token(token))


async def visitor_session_where(
    conn: AsyncConnection, condition: sa.ColumnElement[bool]
) -> VisitorSession | None:
    """The visitor session `condition` picks, with its inbox's settings."""
    s = t.visitor_sessions.c
    stmt: sa.Select[Any] = (
        sa.select(
            s.id.label("session_id"),
            s.workspace_id,
            s.inbox_id,
            s.contact_id,
            s.verified,
            t.inboxes.c.settings.label("inbox_settings"),
            s.proven_contact_id,
        )
        .join(t.inboxes, t.inboxes.c.id == s.inbox_id)
        .where(condition)
    )
    return load_or_none(VisitorSession, (await conn.execute(stmt)).first())


def public_inbox_view(row: Inbox) -> dict[str, JsonValue]:
    settings = row.settings
    return {
        "id": row.id,
        "name": row.name,
        **{key: settings.get(key) for key in PUBLIC_KEYS},
    }


VISITOR_MESSAGE_FIELDS = (
    "id",
    "conversation_id",
    "seq",
    "direction",
    "sender_kind",
    "text",
    "html",
    "created_at",
    "attachments",
)


def visitor_view(message: JsonObject) -> dict[str, JsonValue]:
    """A message (as `message_view` shows it to agents) as its visitor sees
    it: no internal ids of ingest, no delivery errors. Private notes never
    get this far. `client_id` is the widget's own key for a message it
    sent (None for anything else)."""
    view = {field: message[field] for field in VISITOR_MESSAGE_FIELDS}
    external_id = message.get("external_id")
    view["client_id"] = widget_client_id(external_id if isinstance(external_id, str) else None)
    return view


def visitor_message_view(row: Message) -> dict[str, JsonValue]:
    return visitor_view(message_view(row))


def visitor_conversation_scope(
    workspace_id: int, inbox_id: int, contact_id: int, proven_contact_id: int
) -> tuple[sa.ColumnElement[bool], ...]:
    """The one rule for which conversations a widget session may read and
    write (PROTOCOLS.md P3): its contact's, in its inbox, opened for the
    contact it proved. A contact merge moves conversations and sessions
    between contacts but leaves `origin_contact_id` and the session's
    proven contact, so a session that did not verify the other contact's
    identity never gains that contact's conversations (nor the other
    contact's sessions this one's)."""
    c = t.conversations.c
    return (
        c.workspace_id == workspace_id,
        c.inbox_id == inbox_id,
        c.contact_id == contact_id,
        c.origin_contact_id == proven_contact_id,
    )


def conversations_of(session: VisitorSession) -> tuple[sa.ColumnElement[bool], ...]:
    """Conditions on `conversations` for every one the visitor may follow."""
    return visitor_conversation_scope(
        session.workspace_id, session.inbox_id, session.contact_id, session.proven_contact_id
    )


def open_conversation_of(session: VisitorSession) -> tuple[sa.ColumnElement[bool], ...]:
    """Conditions on `conversations` for the visitor's unresolved ones."""
    c = t.conversations.c
    return (*conversations_of(session), c.status != ConversationStatus.RESOLVED.value)


async def visitor_conversation(
    conn: AsyncConnection, session: VisitorSession
) -> dict[str, JsonValue]:
    """The visitor's unresolved conversation in its inbox (the newest one)
    with its last MESSAGE_LIMIT public messages, oldest first; or none."""
    c = t.conversations.c
    conv = load_or_none(
        Conversation,
        (
            await conn.execute(
                sa.select(t.conversations)
                .where(*open_conversation_of(session))
                .order_by(c.last_activity_at.desc(), c.id.desc())
                .limit(1)
            )
        ).first(),
    )
    if conv is None:
        return {"conversation": None, "messages": [], "has_more": False}
    m = t.messages.c
    rows = [
        load(Message, r)
        for r in await conn.execute(
            sa.select(t.messages)
            .where(m.conversation_id == conv.id, m.private.is_(False))
            .order_by(m.seq.desc())
            .limit(MESSAGE_LIMIT + 1)
        )
    ]
    has_more = len(rows) > MESSAGE_LIMIT
    return {
        "conversation": {
            "id": conv.id,
            "status": conv.status,
            "created_at": iso(conv.created_at),
            "last_activity_at": iso(conv.last_activity_at),
            "agent_last_read_seq": conv.agent_last_read_seq,
            "contact_last_read_seq": conv.contact_last_read_seq,
        },
        "messages": [visitor_message_view(r) for r in reversed(rows[:MESSAGE_LIMIT])],
        "has_more": has_more,
    }
