"""What a widget visitor's live socket needs to know: its session by id
(after it was identified as someone else), the conversations it follows,
and which agents could answer it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.values import Role
from server.queries.visitors import VisitorSession
from server.storage import tables as t


async def visitor_session_by_id(conn: AsyncConnection, session_id: int) -> VisitorSession | None:
    s = t.visitor_sessions.c
    row = (
        await conn.execute(
            sa.select(
                s.id, s.workspace_id, s.inbox_id, s.contact_id, s.verified, t.inboxes.c.settings
            )
            .join(t.inboxes, t.inboxes.c.id == s.inbox_id)
            .where(s.id == session_id)
        )
    ).first()
    if row is None:
        return None
    return VisitorSession(
        row.id, row.workspace_id, row.inbox_id, row.contact_id, row.verified, row.settings
    )


async def visitor_conversation_ids(conn: AsyncConnection, session: VisitorSession) -> set[int]:
    """Every conversation of the visitor's contact in the session's inbox
    (resolved ones too: an agent may still reopen and answer them)."""
    c = t.conversations.c
    rows = await conn.execute(
        sa.select(c.id).where(
            c.workspace_id == session.workspace_id,
            c.inbox_id == session.inbox_id,
            c.contact_id == session.contact_id,
        )
    )
    return {row.id for row in rows}


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
