"""Agents: creating, updating, passwords."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.actions.sessions import end_sessions
from server.domain.errors import Conflict, Forbidden, InvalidInput
from server.domain.events import AgentCreated, AgentPasswordChanged, AgentUpdated
from server.domain.values import Availability, IdentityKind, Role, normalize_identity
from server.queries.access import access_agent, require_admin
from server.storage import tables as t
from server.storage.secrets import hash_password, verify_password

MIN_PASSWORD_LENGTH = 10


def check_password_strength(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", field=field
        )


def check_email(email: str, *, field: str = "email") -> str:
    email = normalize_identity(IdentityKind.EMAIL, email)
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        raise InvalidInput("not an email address", field=field)
    return email


async def do_create_agent(
    ctx: ActionContext,
    *,
    email: str,
    name: str,
    password: str,
    role: Role = Role.AGENT,
    capacity: int | None = None,
) -> int:
    """Add an agent to the actor's workspace (admins only)."""
    require_admin(ctx.actor)
    email = check_email(email)
    check_password_strength(password)
    taken = await ctx.conn.scalar(sa.select(t.agents.c.id).where(t.agents.c.email == email))
    if taken is not None:
        raise Conflict("an agent with this email already exists", field="email")
    agent_id: int = (
        await ctx.conn.execute(
            t.agents.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                email=email,
                name=name,
                role=role.value,
                password_hash=hash_password(password),
                availability=Availability.OFFLINE.value,
                capacity=capacity,
                active=True,
                created_at=ctx.now,
                password_changed_at=ctx.now,
            )
            .returning(t.agents.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        AgentCreated(
            workspace_id=ctx.actor.workspace_id,
            agent_id=agent_id,
            email=email,
            name=name,
            role=role.value,
        )
    )
    return agent_id


async def do_update_agent(
    ctx: ActionContext,
    *,
    agent_id: int,
    name: str | None = None,
    role: Role | None = None,
    availability: Availability | None = None,
    capacity: int | None = None,
    clear_capacity: bool = False,
    active: bool | None = None,
) -> None:
    """Change an agent. Agents may change their own name and availability;
    role, capacity and the active flag are for admins. Deactivating an agent
    ends its sessions."""
    row = await access_agent(ctx.conn, ctx.actor, agent_id)
    is_self = ctx.actor.agent_id == agent_id
    if not ctx.actor.is_admin and (
        not is_self
        or role is not None
        or capacity is not None
        or clear_capacity
        or active is not None
    ):
        raise Forbidden("only an admin may change this")
    if is_self and (active is False or (role is not None and role is not Role.ADMIN)):
        raise Forbidden("you cannot demote or deactivate yourself")
    values: dict[str, object] = {}
    if name is not None and name != row.name:
        values["name"] = name
    if role is not None and role.value != row.role:
        values["role"] = role.value
    if availability is not None and availability.value != row.availability:
        values["availability"] = availability.value
    if clear_capacity and row.capacity is not None:
        values["capacity"] = None
    elif capacity is not None and capacity != row.capacity:
        values["capacity"] = capacity
    if active is not None and active != row.active:
        values["active"] = active
    if not values:
        return
    await ctx.conn.execute(t.agents.update().where(t.agents.c.id == agent_id).values(**values))
    merged = {**dataclasses.asdict(row), **values}
    await ctx.emit(
        AgentUpdated(
            workspace_id=row.workspace_id,
            agent_id=agent_id,
            changes=sorted(values),
            name=str(merged["name"]),
            role=str(merged["role"]),
            availability=str(merged["availability"]),
            capacity=merged["capacity"],
            active=bool(merged["active"]),
        )
    )
    if values.get("active") is False:
        await end_sessions(ctx, agent_id=agent_id, reason="deactivated")


async def do_change_password(
    ctx: ActionContext, *, agent_id: int, current_password: str | None, new_password: str
) -> None:
    """Set a new password. An agent changing its own must give the current
    one; an admin resetting another agent's need not. Every other session
    of the agent ends."""
    row = await access_agent(ctx.conn, ctx.actor, agent_id)
    if ctx.actor.agent_id == agent_id:
        if current_password is None or not verify_password(row.password_hash, current_password):
            raise InvalidInput("current password is wrong", field="current_password")
    else:
        require_admin(ctx.actor)
    check_password_strength(new_password, field="new_password")
    await ctx.conn.execute(
        t.agents.update()
        .where(t.agents.c.id == agent_id)
        .values(password_hash=hash_password(new_password), password_changed_at=ctx.now)
    )
    await ctx.emit(AgentPasswordChanged(workspace_id=row.workspace_id, agent_id=agent_id))
    await end_sessions(
        ctx, agent_id=agent_id, reason="password_changed", keep_session_id=ctx.actor.session_id
    )
