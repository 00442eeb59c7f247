"""What a widget visitor's live socket needs to know: its session by id
(after it was identified as someone else), the conversations it follows,
and which agents could answer it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.json_types import JsonValue
from server.domain.values import IdentityKind, Role
from server.queries.records import Inbox, load
from server.queries.visitors import (
    VisitorSession,
    conversations_of,
    open_conversation_of,
    public_inbox_view,
    visitor_conversation,
    visitor_session_where,
)
from server.storage import tables as t

# Anonymous visitors are named "Visitor 1a2b3c" (server.actions.visitors).
ANONYMOUS_NAME_PREFIX = "Visitor "


async def visitor_session_by_id(conn: AsyncConnection, session_id: int) -> VisitorSession | None:
    return await visitor_session_where(conn, t.visitor_sessions.c.id == session_id)


async def visitor_conversation_ids(conn: AsyncConnection, session: VisitorSession) -> set[int]:
    """Every conversation the visitor may follow (`conversations_of`),
    resolved ones too: an agent may still reopen and answer them."""
    rows = await conn.execute(sa.select(t.conversations.c.id).where(*conversations_of(session)))
    return {int(row.id) for row in rows}


async def inbox_agent_ids(conn: AsyncConnection, workspace_id: int, inbox_id: int) -> set[int]:
    """Active agents who can answer in the inbox: its members and the
    workspace's admins."""
    a = t.agents.c
    members = sa.select(t.inbox_members.c.agent_id).where(t.inbox_members.c.inbox_id == inbox_id)
    rows = await conn.execute(
        sa.select(a.id).where(
            a.workspace_id == workspace_id,
            a.active.is_(True),
            sa.or_(a.role == Role.ADMIN.value, a.id.in_(members)),
        )
    )
    return {row.id for row in rows}


async def has_open_conversation(conn: AsyncConnection, session: VisitorSession) -> bool:
    """Whether the visitor's next message continues a conversation rather
    than opening one."""
    found = await conn.scalar(
        sa.select(t.conversations.c.id).where(*open_conversation_of(session)).limit(1)
    )
    return found is not None


async def visitor_contact(conn: AsyncConnection, session: VisitorSession) -> dict[str, JsonValue]:
    """What the widget may show about its own visitor: a name it was given
    (not the generated "Visitor ..." one), whether it is verified, and
    whether an address to answer by email is known. A session that a
    contact merge moved onto another contact is not told that contact's
    name: it never proved to be it."""
    row = (
        await conn.execute(
            sa.select(t.contacts.c.name, t.contacts.c.attributes).where(
                t.contacts.c.id == session.contact_id
            )
        )
    ).first()
    name = row.name if row is not None else ""
    own = session.contact_id == session.proven_contact_id
    attributes = row.attributes if row is not None else {}
    has_email_identity = await conn.scalar(
        sa.select(t.contact_identities.c.id)
        .where(
            t.contact_identities.c.contact_id == session.contact_id,
            t.contact_identities.c.kind == IdentityKind.EMAIL.value,
        )
        .limit(1)
    )
    return {
        "name": name if own and not name.startswith(ANONYMOUS_NAME_PREFIX) else None,
        "verified": session.verified,
        "has_email": has_email_identity is not None or bool(attributes.get("email")),
    }


async def widget_state(
    conn: AsyncConnection, session: VisitorSession
) -> tuple[dict[str, JsonValue], set[int]]:
    """Everything the widget shows on load: the inbox's public face, who
    the visitor is to us, and its open conversation with its messages;
    and, read in the same transaction, the agents who could answer (for
    the caller to tell whether one is online)."""
    state = await visitor_conversation(conn, session)
    inbox = load(
        Inbox,
        (await conn.execute(sa.select(t.inboxes).where(t.inboxes.c.id == session.inbox_id))).one(),
    )
    state["inbox"] = public_inbox_view(inbox)
    state["contact"] = await visitor_contact(conn, session)
    return state, await inbox_agent_ids(conn, session.workspace_id, session.inbox_id)
