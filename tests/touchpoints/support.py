"""Touchpoints for the touchpoint tests, made through the actions, and
readers of what the engine wrote."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from server.actions.context import ActionContext, perform
from server.actions.touch_episodes import start_episode
from server.actions.touchpoints import do_create_touchpoint, do_set_touchpoint_status
from server.domain.json_types import JsonValue
from server.domain.touchpoints import TouchStatus, parse_touchpoint
from server.queries.records import Decision, Episode, load
from server.queries.touchpoints import touchpoint_row
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, fetch_all


def cart_reminder(**overrides: Any) -> dict[str, Any]:
    """An abandoned-cart reminder: 4 h after `cart_updated`, ended by the
    order of that cart."""
    body: dict[str, Any] = {
        "name": "Abandoned cart",
        "trigger": {"kind": "contact_event", "name": "cart_updated"},
        "episode_key": "cart:{cart_id}",
        "exit_rules": [
            {"kind": "contact_event", "name": "order_placed", "match": {"cart_id": "{cart_id}"}}
        ],
        "steps": [
            {
                "delay": {"after": "4h"},
                "variants": [{"subject": "Still thinking?", "body": "{{ contact.name }}"}],
            }
        ],
    }
    body.update(overrides)
    return body


def step(after: str | int = "1h", **extra: Any) -> dict[str, Any]:
    return {
        "delay": {"after": after},
        "variants": [{"subject": "Hello", "body": "Hi"}],
        **extra,
    }


async def make_touchpoint(
    runtime: Runtime, ws: Workspace, body: Mapping[str, Any], *, live: bool = True
) -> int:
    touchpoint_id: int = await perform(
        runtime, ws.admin, do_create_touchpoint, spec=parse_touchpoint(body)
    )
    if live:
        await perform(
            runtime,
            ws.admin,
            do_set_touchpoint_status,
            touchpoint_id=touchpoint_id,
            status=TouchStatus.LIVE,
        )
    return touchpoint_id


async def _start(
    ctx: ActionContext,
    *,
    touchpoint_id: int,
    contact_id: int,
    facts: Mapping[str, JsonValue],
    conversation_id: int | None,
) -> int | None:
    touchpoint = await touchpoint_row(ctx.conn, ctx.actor.workspace_id, touchpoint_id)
    return await start_episode(
        ctx,
        touchpoint=touchpoint,
        contact_id=contact_id,
        facts=facts,
        conversation_id=conversation_id,
    )


async def start(
    runtime: Runtime,
    ws: Workspace,
    touchpoint_id: int,
    facts: Mapping[str, JsonValue],
    *,
    contact_id: int | None = None,
    conversation_id: int | None = None,
) -> int | None:
    """Start an episode directly (as a trigger would), in its own transaction."""
    result: int | None = await perform(
        runtime,
        ws.system,
        _start,
        touchpoint_id=touchpoint_id,
        contact_id=ws.contact_id if contact_id is None else contact_id,
        facts=facts,
        conversation_id=conversation_id,
    )
    return result


async def episodes_of(runtime: Runtime, touchpoint_id: int) -> list[Episode]:
    c = t.episodes.c
    rows = await fetch_all(
        runtime, sa.select(t.episodes).where(c.touchpoint_id == touchpoint_id).order_by(c.id)
    )
    return [load(Episode, row) for row in rows]


async def decisions_of(runtime: Runtime, touchpoint_id: int) -> list[Decision]:
    c = t.decisions.c
    rows = await fetch_all(
        runtime,
        sa.select(t.decisions).where(c.touchpoint_id == touchpoint_id).order_by(c.id),
    )
    return [load(Decision, row) for row in rows]


async def started(
    runtime: Runtime, ws: Workspace, touchpoint_id: int, facts: Mapping[str, JsonValue]
) -> int:
    """Start an episode that must start; its id."""
    episode_id = await start(runtime, ws, touchpoint_id, facts)
    assert episode_id is not None
    return episode_id
