"""Reading agents."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.json_types import JsonValue
from server.queries.access import access_agent
from server.queries.api_shapes import iso
from server.queries.records import Agent, load
from server.storage import tables as t


def agent_view(row: Agent) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "role": row.role,
        "availability": row.availability,
        "capacity": row.capacity,
        "active": row.active,
        "created_at": iso(row.created_at),
    }


async def agent_detail(conn: AsyncConnection, actor: Actor, agent_id: int) -> dict[str, JsonValue]:
    return agent_view(await access_agent(conn, actor, agent_id))


async def list_agents(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    return {"items": [agent_view(r) for r in await workspace_agents(conn, actor)]}


async def workspace_agents(conn: AsyncConnection, actor: Actor) -> list[Agent]:
    """Every agent of the caller's workspace, by id."""
    rows = await conn.execute(
        sa.select(t.agents)
        .where(t.agents.c.workspace_id == actor.workspace_id)
        .order_by(t.agents.c.id)
    )
    return [load(Agent, r) for r in rows]


async def find_agent_id_by_email(conn: AsyncConnection, email: str) -> int | None:
    """Internal lookup (CLI, demo): no actor, no permission check."""
    found: int | None = await conn.scalar(
        sa.select(t.agents.c.id).where(t.agents.c.email == email.strip().lower())
    )
    return found
