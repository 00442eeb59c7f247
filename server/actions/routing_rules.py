"""Routing rules (F5): admins adding, changing, reordering and deleting
the workspace's rules, and choosing its mode (first match or all).

Each rule's JSON is checked by server.domain.routing_rules and stored in
its clean form; what it names (inboxes, segments, teams, agents) must
exist in the workspace when it is saved, or a 422 names the field
(`actions[0].team`). Something named may go away later: routing then
skips that action and says so in the conversation's record.

Positions stay 0..n-1 in evaluation order. Every write here first locks
the workspace row, so two admins editing at once queue rather than
hand out one position twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import Conflict, InvalidInput
from server.domain.events import (
    RoutingModeChanged,
    RoutingRuleCreated,
    RoutingRuleDeleted,
    RoutingRulesReordered,
    RoutingRuleUpdated,
)
from server.domain.json_types import JsonValue
from server.domain.routing_rules import (
    MAX_PER_WORKSPACE,
    InboxCondition,
    Match,
    RoutingMode,
    SegmentCondition,
    Trigger,
    actions_json,
    clean_name,
    conditions_json,
    on_json,
    parse_actions,
    parse_conditions,
    parse_match,
    parse_mode,
    parse_on,
)
from server.queries.access import require_admin
from server.queries.routing_rules import SETTINGS_KEY, access_routing_rule, routing_mode
from server.storage import tables as t

DEFAULT_ON: list[JsonValue] = [Trigger.CONVERSATION_CREATED.value, Trigger.MESSAGE_CREATED.value]


async def _lock_workspace(ctx: ActionContext) -> None:
    w = t.workspaces.c
    await ctx.conn.execute(sa.select(w.id).where(w.id == ctx.actor.workspace_id).with_for_update())


async def _name_taken(ctx: ActionContext, name: str, *, except_id: int | None = None) -> None:
    r = t.routing_rules.c
    stmt = sa.select(r.id).where(r.workspace_id == ctx.actor.workspace_id, r.name == name)
    if except_id is not None:
        stmt = stmt.where(r.id != except_id)
    if await ctx.conn.scalar(stmt) is not None:
        raise Conflict(f"name: there is already a routing rule named {name!r}", field="name")


async def _missing(
    ctx: ActionContext, table: sa.Table, ids: set[int], *extra: sa.ColumnElement[bool]
) -> set[int]:
    """Which of `ids` name no row of `table` in the workspace."""
    if not ids:
        return set()
    c = table.c
    found = await ctx.conn.scalars(
        sa.select(c.id).where(c.id.in_(ids), c.workspace_id == ctx.actor.workspace_id, *extra)
    )
    return ids - set(found)


async def _check_references(
    ctx: ActionContext, conditions: Sequence[object], actions: Sequence[object]
) -> None:
    """Everything a rule names exists in the workspace (an assignee: an
    active agent), or InvalidInput naming the field."""
    for i, c in enumerate(conditions):
        if isinstance(c, InboxCondition):
            gone = await _missing(ctx, t.inboxes, set(c.inbox_ids))
            if gone:
                raise InvalidInput(
                    f"conditions[{i}].inbox: no inbox {min(gone)}", field=f"conditions[{i}].inbox"
                )
        if isinstance(c, SegmentCondition) and await _missing(ctx, t.segments, {c.segment_id}):
            field = f"conditions[{i}].segment"
            raise InvalidInput(f"{field}: no segment {c.segment_id}", field=field)
    for i, item in enumerate(actions):
        assert isinstance(item, dict)
        ((key, value),) = item.items()
        if key == "team" and await _missing(ctx, t.teams, {value}):
            raise InvalidInput(f"actions[{i}].team: no team {value}", field=f"actions[{i}].team")
        if key == "assignee" and await _missing(
            ctx, t.agents, {value}, t.agents.c.active.is_(True)
        ):
            field = f"actions[{i}].assignee"
            raise InvalidInput(f"{field}: no active agent {value}", field=field)


async def _clean_spec(
    ctx: ActionContext, conditions: JsonValue, actions: JsonValue
) -> tuple[list[JsonValue], list[JsonValue]]:
    """Parsed, checked against the workspace, in stored form."""
    parsed_conditions, parsed_actions = parse_conditions(conditions), parse_actions(actions)
    stored_actions = actions_json(parsed_actions)
    # As written (parse_actions checked its shape): the field names the
    # index the admin wrote, not the stored order.
    assert isinstance(actions, list)
    await _check_references(ctx, parsed_conditions, actions)
    return conditions_json(parsed_conditions), stored_actions


async def _count(ctx: ActionContext) -> int:
    r = t.routing_rules.c
    n = await ctx.conn.scalar(
        sa.select(sa.func.count()).where(r.workspace_id == ctx.actor.workspace_id)
    )
    return int(n or 0)


async def do_create_routing_rule(
    ctx: ActionContext,
    *,
    name: str,
    conditions: JsonValue,
    actions: JsonValue,
    on: JsonValue | None = None,
    match: str = Match.ALL.value,
    enabled: bool = True,
    position: int | None = None,
) -> int:
    """Add a rule at `position` (default: last, evaluated after the rest);
    the rules from there on move down one."""
    require_admin(ctx.actor)
    name = clean_name(name)
    stored_on = on_json(parse_on(DEFAULT_ON if on is None else on))
    stored_match = parse_match(match).value
    stored_conditions, stored_actions = await _clean_spec(ctx, conditions, actions)
    await _lock_workspace(ctx)
    await _name_taken(ctx, name)
    held = await _count(ctx)
    if held >= MAX_PER_WORKSPACE:
        raise Conflict(f"at most {MAX_PER_WORKSPACE} routing rules; delete one first")
    if position is not None and position < 0:
        raise InvalidInput("position: must be 0 or more", field="position")
    at = held if position is None else min(position, held)
    r = t.routing_rules.c
    await ctx.conn.execute(
        t.routing_rules.update()
        .where(r.workspace_id == ctx.actor.workspace_id, r.position >= at)
        .values(position=r.position + 1)
    )
    rule_id: int = (
        await ctx.conn.execute(
            t.routing_rules.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                name=name,
                position=at,
                enabled=enabled,
                on=stored_on,
                match=stored_match,
                conditions=stored_conditions,
                actions=stored_actions,
                created_by_id=ctx.actor.agent_id,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            .returning(r.id)
        )
    ).scalar_one()
    await ctx.emit(
        RoutingRuleCreated(
            workspace_id=ctx.actor.workspace_id,
            routing_rule_id=rule_id,
            name=name,
            position=at,
            enabled=enabled,
        )
    )
    return rule_id


async def do_update_routing_rule(
    ctx: ActionContext,
    *,
    rule_id: int,
    name: str | None = None,
    enabled: bool | None = None,
    on: JsonValue | None = None,
    match: str | None = None,
    conditions: JsonValue | None = None,
    actions: JsonValue | None = None,
) -> None:
    """Change what is given; nothing changed, nothing emitted. The rule
    keeps its position (reorder to move it)."""
    require_admin(ctx.actor)
    await _lock_workspace(ctx)
    row = await access_routing_rule(ctx.conn, ctx.actor, rule_id, for_update=True)
    values: dict[str, object] = {}
    if name is not None and (name := clean_name(name)) != row.name:
        await _name_taken(ctx, name, except_id=row.id)
        values["name"] = name
    if enabled is not None and enabled != row.enabled:
        values["enabled"] = enabled
    if on is not None and (clean_on := on_json(parse_on(on))) != row.on:
        values["on"] = clean_on
    if match is not None and (clean_match := parse_match(match).value) != row.match:
        values["match"] = clean_match
    if conditions is not None or actions is not None:
        stored_conditions, stored_actions = await _clean_spec(
            ctx,
            row.conditions if conditions is None else conditions,
            row.actions if actions is None else actions,
        )
        if stored_conditions != row.conditions:
            values["conditions"] = stored_conditions
        if stored_actions != row.actions:
            values["actions"] = stored_actions
    if not values:
        return
    r = t.routing_rules.c
    await ctx.conn.execute(
        t.routing_rules.update().where(r.id == row.id).values(**values, updated_at=ctx.now)
    )
    await ctx.emit(
        RoutingRuleUpdated(
            workspace_id=row.workspace_id,
            routing_rule_id=row.id,
            name=str(values.get("name", row.name)),
            enabled=bool(values.get("enabled", row.enabled)),
            changes=sorted(values),
        )
    )


async def do_delete_routing_rule(ctx: ActionContext, *, rule_id: int) -> None:
    """Delete a rule; the rules after it move up one. Its decisions stay
    on their conversations under its name (rule_id becomes null)."""
    require_admin(ctx.actor)
    await _lock_workspace(ctx)
    row = await access_routing_rule(ctx.conn, ctx.actor, rule_id, for_update=True)
    r = t.routing_rules.c
    await ctx.conn.execute(t.routing_rules.delete().where(r.id == row.id))
    await ctx.conn.execute(
        t.routing_rules.update()
        .where(r.workspace_id == row.workspace_id, r.position > row.position)
        .values(position=r.position - 1)
    )
    await ctx.emit(
        RoutingRuleDeleted(workspace_id=row.workspace_id, routing_rule_id=row.id, name=row.name)
    )


async def do_reorder_routing_rules(ctx: ActionContext, *, rule_ids: Sequence[int]) -> None:
    """Put the rules in the order of `rule_ids`, which must list every rule
    of the workspace once. The same order again changes nothing."""
    require_admin(ctx.actor)
    await _lock_workspace(ctx)
    r = t.routing_rules.c
    rows = list(
        await ctx.conn.execute(
            sa.select(r.id, r.position)
            .where(r.workspace_id == ctx.actor.workspace_id)
            .order_by(r.position, r.id)
        )
    )
    if len(rule_ids) != len(set(rule_ids)) or set(rule_ids) != {row.id for row in rows}:
        raise InvalidInput(
            "rule_ids: must list every routing rule of the workspace exactly once",
            field="rule_ids",
        )
    if [row.id for row in rows] == list(rule_ids) and all(
        row.position == i for i, row in enumerate(rows)
    ):
        return
    for position, rule_id in enumerate(rule_ids):
        await ctx.conn.execute(
            t.routing_rules.update().where(r.id == rule_id).values(position=position)
        )
    await ctx.emit(
        RoutingRulesReordered(workspace_id=ctx.actor.workspace_id, routing_rule_ids=list(rule_ids))
    )


async def do_set_routing_mode(ctx: ActionContext, *, mode: str) -> RoutingMode:
    """Route by the first matching rule ("first") or by all of them
    ("all"); kept in the workspace's settings beside the others."""
    require_admin(ctx.actor)
    chosen = parse_mode(mode)
    w = t.workspaces.c
    stored = await ctx.conn.scalar(
        sa.select(w.settings).where(w.id == ctx.actor.workspace_id).with_for_update()
    )
    if await routing_mode(ctx.conn, ctx.actor.workspace_id) is chosen:
        return chosen
    settings = dict(stored) if isinstance(stored, dict) else {}
    settings[SETTINGS_KEY] = {"mode": chosen.value}
    await ctx.conn.execute(
        t.workspaces.update().where(w.id == ctx.actor.workspace_id).values(settings=settings)
    )
    await ctx.emit(RoutingModeChanged(workspace_id=ctx.actor.workspace_id, mode=chosen.value))
    return chosen
