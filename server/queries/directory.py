"""Reading the workspace directory: teams, inboxes and API tokens.

Teams are visible to every agent of the workspace; an inbox only to its
members (and admins); an API token to its owner (and admins). Secrets are
never shown here: not an inbox's HMAC key or channel secrets (only whether
each is set), not a token's hash (PROTOCOLS.md P7). Agents themselves are read in server.queries.agents.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.inbox_settings import with_secret_flags
from server.domain.json_types import JsonValue
from server.domain.values import InboxKind
from server.queries.access import (
    access_api_token,
    access_inbox,
    access_team,
    inbox_filter,
    require_admin,
    visible_inbox_ids,
)
from server.queries.api_shapes import iso
from server.queries.inbox_secrets import inbox_secrets_of
from server.queries.records import ApiToken, Inbox, Team, load
from server.storage import tables as t
from server.storage.secrets import SecretBox

# -- teams ------------------------------------------------------------------


def team_view(row: Team, member_ids: list[int]) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "member_ids": member_ids,
        "created_at": iso(row.created_at),
    }


async def team_members_of(conn: AsyncConnection, ids: list[int]) -> dict[int, list[int]]:
    """Each team's member agent ids, ascending."""
    out: defaultdict[int, list[int]] = defaultdict(list)
    if ids:
        tm = t.team_members.c
        rows = await conn.execute(
            sa.select(tm.team_id, tm.agent_id)
            .where(tm.team_id.in_(ids))
            .order_by(tm.team_id, tm.agent_id)
        )
        for row in rows:
            out[int(row.team_id)].append(int(row.agent_id))
    return out


async def team_detail(conn: AsyncConnection, actor: Actor, team_id: int) -> dict[str, JsonValue]:
    row = await access_team(conn, actor, team_id)
    return team_view(row, (await team_members_of(conn, [row.id]))[row.id])


async def list_teams(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    """Every team of the workspace, by name."""
    rows = (
        await conn.execute(
            sa.select(t.teams)
            .where(t.teams.c.workspace_id == actor.workspace_id)
            .order_by(t.teams.c.name, t.teams.c.id)
        )
    ).all()
    teams = [load(Team, r) for r in rows]
    members = await team_members_of(conn, [r.id for r in teams])
    return {"items": [team_view(r, members[r.id]) for r in teams]}


# -- inboxes ----------------------------------------------------------------


def inbox_view(row: Inbox, member_ids: list[int], box: SecretBox) -> dict[str, JsonValue]:
    """An inbox without its secrets: `public_token` is public by design (the
    widget's script tag names the inbox by it); `secret_encrypted` never
    leaves the server, the settings say only which secrets are set
    (`bot_token_set`), which needs `box` to tell."""
    kind = InboxKind(row.kind)
    settings = with_secret_flags(kind, row.settings, inbox_secrets_of(box, row.secret_encrypted))
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "settings": settings,
        "public_token": row.public_token,
        "member_ids": member_ids,
        "created_at": iso(row.created_at),
    }


async def inbox_members_of(conn: AsyncConnection, ids: list[int]) -> dict[int, list[int]]:
    """Each inbox's member agent ids, ascending."""
    out: defaultdict[int, list[int]] = defaultdict(list)
    if ids:
        im = t.inbox_members.c
        rows = await conn.execute(
            sa.select(im.inbox_id, im.agent_id)
            .where(im.inbox_id.in_(ids))
            .order_by(im.inbox_id, im.agent_id)
        )
        for row in rows:
            out[int(row.inbox_id)].append(int(row.agent_id))
    return out


async def inbox_detail(
    conn: AsyncConnection, actor: Actor, inbox_id: int, box: SecretBox
) -> dict[str, JsonValue]:
    row = await access_inbox(conn, actor, inbox_id)
    return inbox_view(row, (await inbox_members_of(conn, [row.id]))[row.id], box)


async def list_inboxes(conn: AsyncConnection, actor: Actor, box: SecretBox) -> dict[str, JsonValue]:
    """The inboxes the caller may see (all of them for an admin), by name."""
    inboxes = await visible_inboxes(conn, actor)
    members = await inbox_members_of(conn, [r.id for r in inboxes])
    return {"items": [inbox_view(r, members[r.id], box) for r in inboxes]}


async def visible_inboxes(conn: AsyncConnection, actor: Actor) -> list[Inbox]:
    """The inboxes the caller may see (all of them for an admin), by name."""
    visible = await visible_inbox_ids(conn, actor)
    rows = (
        await conn.execute(
            sa.select(t.inboxes)
            .where(
                t.inboxes.c.workspace_id == actor.workspace_id,
                inbox_filter(t.inboxes.c.id, visible),
            )
            .order_by(t.inboxes.c.name, t.inboxes.c.id)
        )
    ).all()
    return [load(Inbox, r) for r in rows]


# -- API tokens -------------------------------------------------------------


def api_token_view(row: ApiToken) -> dict[str, JsonValue]:
    """A token's metadata. `prefix` (the first characters of the token) lets
    its owner recognise it; the token itself is shown only at creation and
    its hash never."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "agent_id": row.agent_id,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }


async def api_token_detail(
    conn: AsyncConnection, actor: Actor, token_id: int
) -> dict[str, JsonValue]:
    return api_token_view(await access_api_token(conn, actor, token_id))


async def list_api_tokens(
    conn: AsyncConnection, actor: Actor, *, everyone: bool = False
) -> dict[str, JsonValue]:
    """The caller's own tokens, revoked ones included, oldest first. With
    `everyone` (admins only) every token of the workspace."""
    a = t.api_tokens.c
    stmt = sa.select(t.api_tokens).where(a.workspace_id == actor.workspace_id)
    if everyone:
        require_admin(actor)
    else:
        stmt = stmt.where(a.agent_id == actor.agent_id)
    rows = await conn.execute(stmt.order_by(a.id))
    return {"items": [api_token_view(load(ApiToken, r)) for r in rows]}
