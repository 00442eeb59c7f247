"""Permission-checked reads: the one place that decides who may see what.

Every route (and later every websocket subscription) goes through these.
A missing object and one the caller may not see both raise NotFound
(PROTOCOLS.md P7), so ids from another workspace reveal nothing.

Rules: a workspace is sealed; admins see every inbox of their workspace;
an agent sees the inboxes it is a member of (directly) and their
conversations and messages; agents, teams and contacts are visible
workspace-wide, but a contact's timeline only shows conversations in
inboxes the caller can see. Canned responses follow their scope
(`canned_response_filter`). Merging contacts takes more than seeing them
(`require_merge_reach`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import Forbidden, NotFound
from server.queries import records as r
from server.queries.records import R, load
from server.storage import tables as t


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only an admin may do this")


async def _row(conn: AsyncConnection, stmt: sa.Select[Any], what: str, cls: type[R]) -> R:
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"{what} not found")
    return load(cls, row)


async def visible_inbox_ids(conn: AsyncConnection, actor: Actor) -> list[int] | None:
    """The inboxes `actor` may read, or None meaning every inbox of its
    workspace (admins and the system)."""
    if actor.is_admin:
        return None
    rows = await conn.execute(
        sa.select(t.inbox_members.c.inbox_id).where(
            t.inbox_members.c.agent_id == actor.agent_id,
            t.inbox_members.c.workspace_id == actor.workspace_id,
        )
    )
    return [r[0] for r in rows]


async def visible_team_ids(conn: AsyncConnection, actor: Actor) -> list[int] | None:
    """The teams whose canned responses `actor` may read: its own teams,
    or None meaning every team (admins and the system)."""
    if actor.is_admin:
        return None
    rows = await conn.execute(_member_of(t.team_members, "team_id", actor))
    return [r[0] for r in rows]


def inbox_filter(
    column: sa.ColumnElement[int], visible: list[int] | None
) -> sa.ColumnElement[bool]:
    return sa.true() if visible is None else column.in_(visible)


async def access_inbox(conn: AsyncConnection, actor: Actor, inbox_id: int) -> r.Inbox:
    stmt = sa.select(t.inboxes).where(
        t.inboxes.c.id == inbox_id, t.inboxes.c.workspace_id == actor.workspace_id
    )
    if not actor.is_admin:
        stmt = stmt.where(
            sa.exists().where(
                t.inbox_members.c.inbox_id == t.inboxes.c.id,
                t.inbox_members.c.agent_id == actor.agent_id,
            )
        )
    return await _row(conn, stmt, "inbox", r.Inbox)


async def access_conversation(
    conn: AsyncConnection, actor: Actor, conversation_id: int, *, for_update: bool = False
) -> r.Conversation:
    stmt = sa.select(t.conversations).where(
        t.conversations.c.id == conversation_id,
        t.conversations.c.workspace_id == actor.workspace_id,
    )
    if not actor.is_admin:
        stmt = stmt.where(
            sa.exists().where(
                t.inbox_members.c.inbox_id == t.conversations.c.inbox_id,
                t.inbox_members.c.agent_id == actor.agent_id,
            )
        )
    if for_update:
        # NO KEY UPDATE: conflicts with other writers of this row but not with
        # the KEY SHARE locks that foreign-key checks of inserted messages take.
        stmt = stmt.with_for_update(of=t.conversations, key_share=True)
    return await _row(conn, stmt, "conversation", r.Conversation)


async def access_message(conn: AsyncConnection, actor: Actor, message_id: int) -> r.Message:
    """A message, for whoever may read its conversation (a message the
    caller may not read is as missing as one that does not exist)."""
    m = t.messages.c
    row = (
        await conn.execute(
            sa.select(t.messages).where(m.id == message_id, m.workspace_id == actor.workspace_id)
        )
    ).first()
    if row is None:
        raise NotFound("message not found", field="message_id")
    await access_conversation(conn, actor, row.conversation_id)
    return load(r.Message, row)


async def access_contact(conn: AsyncConnection, actor: Actor, contact_id: int) -> r.Contact:
    stmt = sa.select(t.contacts).where(
        t.contacts.c.id == contact_id, t.contacts.c.workspace_id == actor.workspace_id
    )
    return await _row(conn, stmt, "contact", r.Contact)


async def access_agent(conn: AsyncConnection, actor: Actor, agent_id: int) -> r.Agent:
    stmt = sa.select(t.agents).where(
        t.agents.c.id == agent_id, t.agents.c.workspace_id == actor.workspace_id
    )
    return await _row(conn, stmt, "agent", r.Agent)


async def access_team(conn: AsyncConnection, actor: Actor, team_id: int) -> r.Team:
    stmt = sa.select(t.teams).where(
        t.teams.c.id == team_id, t.teams.c.workspace_id == actor.workspace_id
    )
    return await _row(conn, stmt, "team", r.Team)


async def access_api_token(conn: AsyncConnection, actor: Actor, token_id: int) -> r.ApiToken:
    """Agents see their own tokens; admins see every token of the workspace."""
    stmt = sa.select(t.api_tokens).where(
        t.api_tokens.c.id == token_id, t.api_tokens.c.workspace_id == actor.workspace_id
    )
    if not actor.is_admin:
        stmt = stmt.where(t.api_tokens.c.agent_id == actor.agent_id)
    return await _row(conn, stmt, "api token", r.ApiToken)


def _member_of(table: sa.Table, column: str, actor: Actor) -> sa.Select[Any]:
    """The ids (`column`) of the teams or inboxes `actor` is a member of."""
    return sa.select(table.c[column]).where(
        table.c.agent_id == actor.agent_id, table.c.workspace_id == actor.workspace_id
    )


def canned_response_filter(actor: Actor) -> sa.ColumnElement[bool]:
    """Which canned responses `actor` may read: workspace ones, everyone;
    team ones, the team's members; inbox ones, the inbox's members (admins
    all of both, as they see every inbox); personal ones, only their owner
    — admins included, a personal response is its agent's own."""
    c = t.canned_responses.c
    own = (
        sa.and_(c.scope == "personal", c.agent_id == actor.agent_id)
        if actor.agent_id is not None
        else sa.false()
    )
    if actor.is_admin:
        shared: sa.ColumnElement[bool] = c.scope != "personal"
    else:
        shared = sa.or_(
            c.scope == "workspace",
            sa.and_(c.scope == "team", c.team_id.in_(_member_of(t.team_members, "team_id", actor))),
            sa.and_(
                c.scope == "inbox", c.inbox_id.in_(_member_of(t.inbox_members, "inbox_id", actor))
            ),
        )
    return sa.and_(c.workspace_id == actor.workspace_id, sa.or_(shared, own))


async def access_canned_response(
    conn: AsyncConnection, actor: Actor, canned_response_id: int, *, for_update: bool = False
) -> r.CannedResponse:
    stmt = sa.select(t.canned_responses).where(
        t.canned_responses.c.id == canned_response_id, canned_response_filter(actor)
    )
    if for_update:
        stmt = stmt.with_for_update(of=t.canned_responses)
    return await _row(conn, stmt, "canned response", r.CannedResponse)


def require_canned_editor(actor: Actor, row: r.CannedResponse) -> None:
    """Who may change a canned response they can read: an admin any; an
    agent every one it can read except workspace ones (reading a team,
    inbox or personal response already takes membership or ownership)."""
    if row.scope == "workspace" and not actor.is_admin:
        raise Forbidden("only an admin may change a workspace canned response")


async def out_of_merge_reach(
    conn: AsyncConnection, actor: Actor, contact_ids: Collection[int]
) -> set[int]:
    """Those of `contact_ids` that `actor` may not merge (see
    `require_merge_reach`): the ones with a conversation in an inbox it
    can't read. Never any for an admin."""
    if actor.is_admin or not contact_ids:
        return set()
    visible = await visible_inbox_ids(conn, actor)
    c = t.conversations.c
    rows = await conn.execute(
        sa.select(c.contact_id)
        .distinct()
        .where(
            c.contact_id.in_(list(contact_ids)),
            c.workspace_id == actor.workspace_id,
            c.inbox_id.not_in(visible or []),
        )
    )
    return {r.contact_id for r in rows}


async def require_merge_reach(
    conn: AsyncConnection, actor: Actor, *contacts: tuple[str, int]
) -> None:
    """Who may merge two contacts, preview or undo their merge, or act on a
    suggestion to merge them: an admin, or an agent who can read every
    conversation of each contact. A merge hands one contact's
    conversations to the other (and to whoever acts as it), so an agent
    who can't see some of them must not decide where they go. `contacts`
    are (field, contact id) pairs, the field being the input that named
    the contact; the first one out of reach is Forbidden, naming its field
    (the contacts themselves are visible to every agent: P7's 404 is for
    what the caller can't see)."""
    hidden = await out_of_merge_reach(conn, actor, [contact_id for _, contact_id in contacts])
    for field, contact_id in contacts:
        if contact_id in hidden:
            raise Forbidden(
                f"{field}: this contact has conversations in inboxes you can't see;"
                " only an admin or an agent who can see all of them may merge it",
                field=field,
            )
