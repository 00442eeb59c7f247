"""Macros (F6): saving, changing and deleting them. Running one is
server.actions.macro_runs.

Who may write (who may read is server.queries.macros.macro_filter),
mirroring canned responses:
- workspace macros: admins (every agent runs them);
- personal macros: only the agent who owns them.
The scope is fixed at creation, so each event about a macro reaches
exactly the audience that can read it.

Steps are validated by server.domain.macros. What they refer to must
exist in the workspace and be usable by the macro's whole audience when
saved, or the save is refused naming the step's field
(`actions[1].canned_response_id`): a workspace macro sends only workspace
canned responses (a team, inbox or personal one is not every agent's to
use); a personal macro any response its owner can read. Things can still
change afterwards (a response deleted, an agent deactivated): a run then
fails on that step and applies nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.domain.events import MacroCreated, MacroDeleted, MacroUpdated
from server.domain.macros import (
    MAX_PER_AUDIENCE,
    MacroScope,
    StepType,
    clean_name,
    owner_key,
    parse_actions,
)
from server.domain.values import CannedScope
from server.queries import records as r
from server.queries.access import (
    access_agent,
    access_canned_response,
    access_team,
    require_admin,
)
from server.queries.macros import access_macro
from server.queries.records import load
from server.storage import tables as t


async def check_references(
    ctx: ActionContext, scope: MacroScope, steps: Sequence[dict[str, Any]]
) -> None:
    """Refuse steps naming a canned response, team or agent that the
    macro's audience could not use (InvalidInput on the step's field)."""
    for i, step in enumerate(steps):
        kind = StepType(step["type"])
        if kind is StepType.SEND_CANNED_RESPONSE:
            field = f"actions[{i}].canned_response_id"
            try:
                # The caller is the owner of a personal macro, or an admin.
                row = await access_canned_response(ctx.conn, ctx.actor, step["canned_response_id"])
            except NotFound:
                raise InvalidInput(f"{field}: no such canned response", field=field) from None
            if scope is MacroScope.WORKSPACE and row.scope != CannedScope.WORKSPACE.value:
                raise InvalidInput(
                    f"{field}: a workspace macro can send only workspace canned responses"
                    " (every agent runs it)",
                    field=field,
                )
        elif kind is StepType.ASSIGN_TEAM and step["team_id"] is not None:
            field = f"actions[{i}].team_id"
            try:
                await access_team(ctx.conn, ctx.actor, step["team_id"])
            except NotFound:
                raise InvalidInput(f"{field}: no such team", field=field) from None
        elif kind is StepType.ASSIGN_AGENT and isinstance(step["agent_id"], int):
            field = f"actions[{i}].agent_id"
            try:
                agent = await access_agent(ctx.conn, ctx.actor, step["agent_id"])
            except NotFound:
                agent = None
            if agent is None or not agent.active:
                raise InvalidInput(f"{field}: no such active agent", field=field)


async def _name_taken(
    ctx: ActionContext, key: str, name: str, *, except_id: int | None = None
) -> None:
    c = t.macros.c
    stmt = sa.select(c.id).where(
        c.workspace_id == ctx.actor.workspace_id, c.owner_key == key, c.name == name
    )
    if except_id is not None:
        stmt = stmt.where(c.id != except_id)
    if await ctx.conn.scalar(stmt) is not None:
        raise Conflict(f"name: {name!r} is taken for this audience", field="name")


async def _room_for_one_more(ctx: ActionContext, key: str) -> None:
    c = t.macros.c
    held = await ctx.conn.scalar(
        sa.select(sa.func.count()).where(
            c.workspace_id == ctx.actor.workspace_id, c.owner_key == key
        )
    )
    if (held or 0) >= MAX_PER_AUDIENCE:
        raise Conflict(f"at most {MAX_PER_AUDIENCE} macros per audience; delete one first")


async def _locked_macro(ctx: ActionContext, macro_id: int) -> r.Macro:
    """The macro, if the caller may read it, locked for a change."""
    return await access_macro(ctx.conn, ctx.actor, macro_id, for_update=True)


def require_macro_editor(ctx: ActionContext, row: r.Macro) -> None:
    """Reading a personal macro already takes owning it; a workspace
    macro is changed by admins only."""
    if row.scope == MacroScope.WORKSPACE.value and not ctx.actor.is_admin:
        raise Forbidden("only an admin may change a workspace macro")


class _Audience(TypedDict):
    """The fields every macro event carries: who it reaches."""

    workspace_id: int
    macro_id: int
    scope: str
    agent_id: int | None


def _audience_fields(row: r.Macro) -> _Audience:
    return {
        "workspace_id": row.workspace_id,
        "macro_id": row.id,
        "scope": row.scope,
        "agent_id": row.agent_id,
    }


async def do_create_macro(
    ctx: ActionContext, *, scope: MacroScope, name: str, actions: Sequence[Any]
) -> int:
    """Save a macro for the workspace (admins) or for the caller alone.
    Returns its id."""
    if scope is MacroScope.WORKSPACE:
        require_admin(ctx.actor)
        agent_id = None
    elif ctx.actor.agent_id is None:
        raise Forbidden("only an agent has personal macros", field="scope")
    else:
        agent_id = ctx.actor.agent_id
    name = clean_name(name)
    steps = parse_actions(list(actions))
    await check_references(ctx, scope, steps)
    key = owner_key(scope, agent_id)
    await _name_taken(ctx, key, name)
    await _room_for_one_more(ctx, key)
    inserted = (
        await ctx.conn.execute(
            t.macros.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                scope=scope.value,
                agent_id=agent_id,
                owner_key=key,
                name=name,
                actions=steps,
                usage_count=0,
                created_by=ctx.actor.agent_id,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            .returning(t.macros)
        )
    ).one()
    row = load(r.Macro, inserted)
    await ctx.emit(MacroCreated(**_audience_fields(row), name=name))
    return row.id


async def do_update_macro(
    ctx: ActionContext,
    *,
    macro_id: int,
    name: str | None = None,
    actions: Sequence[Any] | None = None,
) -> None:
    """Change what is given; nothing changed, nothing emitted. New steps
    are checked against the macro's own audience."""
    row = await _locked_macro(ctx, macro_id)
    require_macro_editor(ctx, row)
    values: dict[str, object] = {}
    new_name = row.name
    if name is not None and (name := clean_name(name)) != row.name:
        await _name_taken(ctx, row.owner_key, name, except_id=row.id)
        values["name"] = new_name = name
    if actions is not None and (steps := parse_actions(list(actions))) != row.actions:
        await check_references(ctx, MacroScope(row.scope), steps)
        values["actions"] = steps
    if not values:
        return
    await ctx.conn.execute(
        t.macros.update().where(t.macros.c.id == row.id).values(**values, updated_at=ctx.now)
    )
    await ctx.emit(
        MacroUpdated(
            **_audience_fields(row),
            name=new_name,
            changes=sorted(values),
        )
    )


async def do_delete_macro(ctx: ActionContext, *, macro_id: int) -> None:
    row = await _locked_macro(ctx, macro_id)
    require_macro_editor(ctx, row)
    await ctx.conn.execute(t.macros.delete().where(t.macros.c.id == row.id))
    await ctx.emit(MacroDeleted(**_audience_fields(row)))
