"""Teams and their members."""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import Conflict
from server.domain.events import (
    TeamCreated,
    TeamDeleted,
    TeamMemberAdded,
    TeamMemberRemoved,
    TeamUpdated,
)
from server.queries.access import access_agent, access_team, require_admin
from server.storage import tables as t


async def _name_taken(ctx: ActionContext, name: str, *, except_id: int | None = None) -> bool:
    stmt = sa.select(t.teams.c.id).where(
        t.teams.c.workspace_id == ctx.actor.workspace_id, t.teams.c.name == name
    )
    if except_id is not None:
        stmt = stmt.where(t.teams.c.id != except_id)
    return await ctx.conn.scalar(stmt) is not None


async def do_create_team(ctx: ActionContext, *, name: str, description: str = "") -> int:
    require_admin(ctx.actor)
    if await _name_taken(ctx, name):
        raise Conflict("a team with this name exists", field="name")
    team_id: int = (
        await ctx.conn.execute(
            t.teams.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                name=name,
                description=description,
                created_at=ctx.now,
            )
            .returning(t.teams.c.id)
        )
    ).scalar_one()
    await ctx.emit(TeamCreated(workspace_id=ctx.actor.workspace_id, team_id=team_id, name=name))
    return team_id


async def do_update_team(
    ctx: ActionContext, *, team_id: int, name: str | None = None, description: str | None = None
) -> None:
    row = await access_team(ctx.conn, ctx.actor, team_id)
    require_admin(ctx.actor)
    new_name = row.name if name is None else name
    new_description = row.description if description is None else description
    if (new_name, new_description) == (row.name, row.description):
        return
    if new_name != row.name and await _name_taken(ctx, new_name, except_id=team_id):
        raise Conflict("a team with this name exists", field="name")
    await ctx.conn.execute(
        t.teams.update()
        .where(t.teams.c.id == team_id)
        .values(name=new_name, description=new_description)
    )
    await ctx.emit(
        TeamUpdated(
            workspace_id=row.workspace_id,
            team_id=team_id,
            name=new_name,
            description=new_description,
        )
    )


async def do_delete_team(ctx: ActionContext, *, team_id: int) -> None:
    row = await access_team(ctx.conn, ctx.actor, team_id)
    require_admin(ctx.actor)
    await ctx.conn.execute(
        t.conversations.update().where(t.conversations.c.team_id == team_id).values(team_id=None)
    )
    await ctx.conn.execute(t.teams.delete().where(t.teams.c.id == team_id))
    await ctx.emit(TeamDeleted(workspace_id=row.workspace_id, team_id=team_id))


async def do_add_team_member(ctx: ActionContext, *, team_id: int, agent_id: int) -> bool:
    """Returns False when the agent was already a member (nothing emitted)."""
    team = await access_team(ctx.conn, ctx.actor, team_id)
    await access_agent(ctx.conn, ctx.actor, agent_id)
    require_admin(ctx.actor)
    exists = await ctx.conn.scalar(
        sa.select(t.team_members.c.team_id).where(
            t.team_members.c.team_id == team_id, t.team_members.c.agent_id == agent_id
        )
    )
    if exists is not None:
        return False
    await ctx.conn.execute(
        t.team_members.insert().values(
            team_id=team_id, agent_id=agent_id, workspace_id=team.workspace_id
        )
    )
    await ctx.emit(
        TeamMemberAdded(workspace_id=team.workspace_id, team_id=team_id, agent_id=agent_id)
    )
    return True


async def do_remove_team_member(ctx: ActionContext, *, team_id: int, agent_id: int) -> bool:
    team = await access_team(ctx.conn, ctx.actor, team_id)
    require_admin(ctx.actor)
    result = await ctx.conn.execute(
        t.team_members.delete().where(
            t.team_members.c.team_id == team_id, t.team_members.c.agent_id == agent_id
        )
    )
    if result.rowcount == 0:
        return False
    await ctx.emit(
        TeamMemberRemoved(workspace_id=team.workspace_id, team_id=team_id, agent_id=agent_id)
    )
    return True
