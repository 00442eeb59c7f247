"""Browser sessions: login, logout, logout everywhere."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import NotFound, Unauthenticated
from server.domain.events import SessionEnded, SessionStarted
from server.domain.values import IdentityKind, normalize_identity
from server.queries.records import Agent, load_or_none
from server.storage import tables as t
from server.storage.secrets import hash_token, new_token, verify_password


@dataclasses.dataclass(frozen=True)
class NewSession:
    """Returned once at login: `token` goes in the HttpOnly cookie and is
    never stored; `csrf_token` must accompany cookie-authenticated writes."""

    session_id: int
    agent_id: int
    workspace_id: int
    token: str
    csrf_token: str


async def do_start_session(
    ctx: ActionContext, *, email: str, password: str, lifetime: timedelta
) -> NewSession:
    """Log in with email and password. The actor is the system (the caller
    is anonymous until this succeeds)."""
    row = load_or_none(
        Agent,
        (
            await ctx.conn.execute(
                sa.select(t.agents).where(
                    t.agents.c.email == normalize_identity(IdentityKind.EMAIL, email)
                )
            )
        ).first(),
    )
    # Verify even when the email is unknown (against a dummy hash inside
    # verify_password) so timing does not reveal which emails exist.
    ok = verify_password(row.password_hash if row else None, password)
    if row is None or not ok or not row.active:
        raise Unauthenticated("wrong email or password")
    token = new_token("tls")
    csrf_token = secrets.token_urlsafe(32)
    session_id: int = (
        await ctx.conn.execute(
            t.sessions.insert()
            .values(
                workspace_id=row.workspace_id,
                agent_id=row.id,
                token_hash=hash_token(token),
                csrf_token=csrf_token,
                created_at=ctx.now,
                expires_at=ctx.now + lifetime,
            )
            .returning(t.sessions.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        SessionStarted(workspace_id=row.workspace_id, agent_id=row.id, session_id=session_id)
    )
    return NewSession(session_id, row.id, row.workspace_id, token, csrf_token)


async def do_end_session(ctx: ActionContext, *, session_id: int) -> None:
    """Log out of one session (the actor's own)."""
    if ctx.actor.session_id != session_id:
        raise NotFound("session not found")
    await end_sessions(
        ctx, agent_id=ctx.actor.agent_id, reason="logout", only_session_id=session_id
    )


async def do_end_all_sessions(ctx: ActionContext) -> int:
    """Log the actor out everywhere, this session included. Returns how many
    sessions ended."""
    if ctx.actor.agent_id is None:
        raise Unauthenticated("not logged in")
    return await end_sessions(ctx, agent_id=ctx.actor.agent_id, reason="logout_all")


async def end_sessions(
    ctx: ActionContext,
    *,
    agent_id: int | None,
    reason: str,
    only_session_id: int | None = None,
    keep_session_id: int | None = None,
) -> int:
    """Delete sessions of `agent_id` and emit one `session.ended` each, so
    live sockets opened with them close. Shared by logout, logout-all,
    password change and deactivation."""
    stmt = sa.select(t.sessions.c.id, t.sessions.c.workspace_id).where(
        t.sessions.c.agent_id == agent_id
    )
    if only_session_id is not None:
        stmt = stmt.where(t.sessions.c.id == only_session_id)
    if keep_session_id is not None:
        stmt = stmt.where(t.sessions.c.id != keep_session_id)
    sessions: list[tuple[int, int]] = [
        (row.id, row.workspace_id) for row in await ctx.conn.execute(stmt.order_by(t.sessions.c.id))
    ]
    if not sessions:
        return 0
    await ctx.conn.execute(
        t.sessions.delete().where(t.sessions.c.id.in_([session_id for session_id, _ in sessions]))
    )
    for session_id, workspace_id in sessions:
        await ctx.emit(
            SessionEnded(
                workspace_id=workspace_id,
                agent_id=agent_id or 0,
                session_id=session_id,
                reason=reason,
            )
        )
    return len(sessions)
