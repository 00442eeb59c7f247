"""Resolving credentials to an Actor: one function per credential kind, used
by REST and (later) the websocket handshake alike."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor, ActorKind
from server.domain.values import Role
from server.queries.records import load_or_none
from server.storage import tables as t
from server.storage.secrets import hash_token


@dataclasses.dataclass(frozen=True)
class SessionActor:
    actor: Actor
    csrf_token: str


@dataclasses.dataclass(frozen=True, slots=True)
class _SessionAgent:
    """A session (`id`) and the active agent it belongs to."""

    id: int
    csrf_token: str
    expires_at: datetime
    agent_id: int
    workspace_id: int
    role: str


@dataclasses.dataclass(frozen=True, slots=True)
class _TokenAgent:
    """An unrevoked API token (`id`) and the active agent it belongs to."""

    id: int
    agent_id: int
    workspace_id: int
    role: str


@dataclasses.dataclass(frozen=True, slots=True)
class _AgentStanding:
    role: str
    active: bool


async def actor_for_session(
    conn: AsyncConnection, token: str, now: datetime
) -> SessionActor | None:
    """The agent behind a session cookie, if the session is live and the
    agent active."""
    stmt: sa.Select[Any] = (
        sa.select(
            t.sessions.c.id,
            t.sessions.c.csrf_token,
            t.sessions.c.expires_at,
            t.agents.c.id.label("agent_id"),
            t.agents.c.workspace_id,
            t.agents.c.role,
        )
        .join(t.agents, t.agents.c.id == t.sessions.c.agent_id)
        .where(t.sessions.c.token_hash == hash_token(token), t.agents.c.active.is_(True))
    )
    row = load_or_none(_SessionAgent, (await conn.execute(stmt)).first())
    if row is None or row.expires_at <= now:
        return None
    actor = Actor(
        kind=ActorKind.AGENT,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        role=Role(row.role),
        session_id=row.id,
    )
    return SessionActor(actor, row.csrf_token)


async def actor_for_api_token(conn: AsyncConnection, token: str) -> Actor | None:
    """The agent behind a personal API token, unless revoked."""
    stmt: sa.Select[Any] = (
        sa.select(
            t.api_tokens.c.id,
            t.agents.c.id.label("agent_id"),
            t.agents.c.workspace_id,
            t.agents.c.role,
        )
        .join(t.agents, t.agents.c.id == t.api_tokens.c.agent_id)
        .where(
            t.api_tokens.c.token_hash == hash_token(token),
            t.api_tokens.c.revoked_at.is_(None),
            t.agents.c.active.is_(True),
        )
    )
    row = load_or_none(_TokenAgent, (await conn.execute(stmt)).first())
    if row is None:
        return None
    return Actor(
        kind=ActorKind.AGENT,
        workspace_id=row.workspace_id,
        agent_id=row.agent_id,
        role=Role(row.role),
        token_id=row.id,
    )


async def actor_for_agent(conn: AsyncConnection, actor: Actor) -> Actor | None:
    """`actor` with its current role, or None if the agent was deactivated."""
    stmt: sa.Select[Any] = sa.select(t.agents.c.role, t.agents.c.active).where(
        t.agents.c.id == actor.agent_id
    )
    row = load_or_none(_AgentStanding, (await conn.execute(stmt)).first())
    if row is None or not row.active:
        return None
    return dataclasses.replace(actor, role=Role(row.role))
