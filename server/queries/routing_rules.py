"""Reading routing rules (F5): the workspace's rules in order, its mode,
and what routing did to a conversation.

Rules are every agent's to read (they explain why a conversation landed
where it did); writing them is for admins (server.actions.routing_rules).
A conversation's routing record is for whoever may read the
conversation.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.domain.routing_rules import (
    Match,
    RoutingMode,
    Rule,
    parse_spec,
)
from server.queries.access import access_conversation
from server.queries.api_shapes import iso
from server.queries.records import RoutingDecision, RoutingRule, load, load_or_none
from server.storage import tables as t

# Where the mode is kept in workspaces.settings.
SETTINGS_KEY = "routing"
DEFAULT_MODE = RoutingMode.FIRST
# A conversation's routing record is read whole; a decision is written
# only when a rule changes something, so this is never reached in
# practice, and bounds the answer if it is.
MAX_DECISIONS = 500


def mode_of(settings: object) -> RoutingMode:
    """The routing mode stored in a workspace's settings; first match when
    none (or an unreadable one) is stored."""
    routing = settings.get(SETTINGS_KEY) if isinstance(settings, Mapping) else None
    mode = routing.get("mode") if isinstance(routing, Mapping) else None
    if isinstance(mode, str) and mode in RoutingMode.__members__.values():
        return RoutingMode(mode)
    return DEFAULT_MODE


async def routing_mode(conn: AsyncConnection, workspace_id: int) -> RoutingMode:
    w = t.workspaces.c
    return mode_of(await conn.scalar(sa.select(w.settings).where(w.id == workspace_id)))


async def access_routing_rule(
    conn: AsyncConnection, actor: Actor, rule_id: int, *, for_update: bool = False
) -> RoutingRule:
    r = t.routing_rules.c
    stmt = sa.select(t.routing_rules).where(r.id == rule_id, r.workspace_id == actor.workspace_id)
    if for_update:
        stmt = stmt.with_for_update(of=t.routing_rules)
    row = load_or_none(RoutingRule, (await conn.execute(stmt)).first())
    if row is None:
        raise NotFound("routing rule not found")
    return row


async def rule_rows(
    conn: AsyncConnection, workspace_id: int, *, enabled_only: bool = False
) -> list[RoutingRule]:
    """The workspace's rules in evaluation order."""
    r = t.routing_rules.c
    stmt = sa.select(t.routing_rules).where(r.workspace_id == workspace_id)
    if enabled_only:
        stmt = stmt.where(r.enabled.is_(True))
    rows = await conn.execute(stmt.order_by(r.position, r.id))
    return [load(RoutingRule, row) for row in rows]


def rule_of(row: RoutingRule) -> Rule:
    """A stored rule, parsed (stored in the form the parsers read back)."""
    spec = parse_spec(on=row.on, match=row.match, conditions=row.conditions, actions=row.actions)
    return Rule(row.id, row.name, row.position, row.enabled, spec)


def rule_view(row: RoutingRule) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "name": row.name,
        "position": row.position,
        "enabled": row.enabled,
        "on": row.on,
        "match": row.match if row.match else Match.ALL.value,
        "conditions": row.conditions,
        "actions": row.actions,
        "created_by_id": row.created_by_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def list_routing_rules(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    """The workspace's mode and its rules in order. Not paged: a workspace
    has at most server.domain.routing_rules.MAX_PER_WORKSPACE."""
    rows = await rule_rows(conn, actor.workspace_id)
    mode = await routing_mode(conn, actor.workspace_id)
    return {"mode": mode.value, "items": [rule_view(r) for r in rows]}


async def routing_rule_detail(
    conn: AsyncConnection, actor: Actor, rule_id: int
) -> dict[str, JsonValue]:
    return rule_view(await access_routing_rule(conn, actor, rule_id))


async def routing_settings(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    return {"mode": (await routing_mode(conn, actor.workspace_id)).value}


def decision_view(row: RoutingDecision) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "rule_id": row.rule_id,
        "rule_name": row.rule_name,
        "trigger": row.trigger,
        "message_id": row.message_id,
        "changes": row.changes,
        "skipped": row.skipped,
        "created_at": iso(row.created_at),
    }


async def conversation_routing(
    conn: AsyncConnection, actor: Actor, conversation_id: int
) -> dict[str, JsonValue]:
    """What routing did to a conversation, oldest first: the lines the
    conversation shows ("routed by rule 'Refunds' → team Billing")."""
    await access_conversation(conn, actor, conversation_id)
    d = t.routing_decisions.c
    rows = await conn.execute(
        sa.select(t.routing_decisions)
        .where(d.conversation_id == conversation_id)
        .order_by(d.created_at, d.id)
        .limit(MAX_DECISIONS)
    )
    return {"items": [decision_view(load(RoutingDecision, r)) for r in rows]}
