"""Workspaces: the sealed container every other row lives in."""

from __future__ import annotations

from server.actions.context import ActionContext
from server.domain.events import WorkspaceCreated
from server.storage import tables as t


async def do_create_workspace(ctx: ActionContext, *, name: str) -> int:
    workspace_id: int = (
        await ctx.conn.execute(
            t.workspaces.insert()
            .values(name=name, settings={}, created_at=ctx.now)
            .returning(t.workspaces.c.id)
        )
    ).scalar_one()
    await ctx.emit(WorkspaceCreated(workspace_id=workspace_id, name=name))
    return workspace_id
