"""Touchpoints (F7, TOUCHPOINTS.md): creating, editing and switching them
live, paused or archived. Admins only.

A touchpoint's steps are stored per version: an edit bumps `version` and
writes the new version's steps beside the old ones, so an episode keeps
the steps of the version it started under (editing a live touchpoint
never changes what was already decided).

Status:
- `live` starts episodes (server.actions.touch_triggers);
- `paused` starts nothing and leaves pending decisions waiting: the
  claim worker does not claim decisions of a paused touchpoint;
- `archived` starts nothing and ends its active episodes `exited`, their
  pending decisions cancelled, with reason "touchpoint archived".

What a spec refers to must exist in the workspace: its inbox (email or
widget, matching every step's channel), its entry segment and the segment
its trigger enters or broadcasts to. Template syntax needs the Liquid
environment, which is not this module's: the caller passes
`validate_templates` (the HTTP layer does), and it runs before anything is
written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from server.actions.action_context import ActionContext
from server.actions.touch_episodes import cancel_decisions
from server.actions.touch_planning import plan_touchpoint
from server.domain.errors import Conflict, InvalidInput
from server.domain.events import EpisodeEnded, TouchpointCreated, TouchpointUpdated
from server.domain.touch_timing import delay_json, quiet_hours_json
from server.domain.touchpoints import (
    Channel,
    EpisodeState,
    TouchpointSpec,
    TouchStatus,
    exit_rules_json,
    goal_json,
    trigger_json,
    variant_json,
)
from server.domain.values import InboxKind
from server.queries.access import require_admin
from server.queries.touchpoints import touchpoint_row
from server.storage import tables as t

ARCHIVED_REASON = "touchpoint archived"

# Checks a spec's templates, raising InvalidInput naming the field
# (`steps[0].variants[1].body`): server.touch_templates.check_template.
TemplateCheck = Callable[[TouchpointSpec], None]

# Which inbox kind sends each channel's steps.
_INBOX_KIND = {Channel.EMAIL: InboxKind.EMAIL, Channel.WIDGET: InboxKind.WIDGET}


async def do_create_touchpoint(
    ctx: ActionContext,
    *,
    spec: TouchpointSpec,
    status: TouchStatus = TouchStatus.DRAFT,
    seed: str | None = None,
    validate_templates: TemplateCheck | None = None,
) -> int:
    """A new touchpoint at version 1; `seed` names the ready template it
    was made from."""
    require_admin(ctx.actor)
    await _check(ctx, spec, validate_templates)
    await _name_taken(ctx, spec.name)
    touchpoint_id: int = (
        await ctx.conn.execute(
            t.touchpoints.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                status=status.value,
                seed=seed,
                version=1,
                created_by_id=ctx.actor.agent_id,
                created_at=ctx.now,
                **_columns(spec, ctx),
            )
            .returning(t.touchpoints.c.id)
        )
    ).scalar_one()
    await _write_steps(ctx, touchpoint_id, 1, spec)
    await plan_touchpoint(ctx, touchpoint_id=touchpoint_id)
    await ctx.emit(
        TouchpointCreated(
            workspace_id=ctx.actor.workspace_id,
            touchpoint_id=touchpoint_id,
            name=spec.name,
            kind=spec.kind.value,
            status=status.value,
            seed=seed,
        )
    )
    return touchpoint_id


async def do_update_touchpoint(
    ctx: ActionContext,
    *,
    touchpoint_id: int,
    spec: TouchpointSpec,
    validate_templates: TemplateCheck | None = None,
) -> int:
    """Replace the touchpoint's spec with `spec` as a new version (returned);
    episodes already started keep their version's steps."""
    require_admin(ctx.actor)
    row = await touchpoint_row(ctx.conn, ctx.actor.workspace_id, touchpoint_id, for_update=True)
    await _check(ctx, spec, validate_templates)
    await _name_taken(ctx, spec.name, except_id=row.id)
    version = row.version + 1
    await ctx.conn.execute(
        t.touchpoints.update()
        .where(t.touchpoints.c.id == row.id)
        .values(version=version, **_columns(spec, ctx))
    )
    await _write_steps(ctx, row.id, version, spec)
    if trigger_json(spec.trigger) != row.trigger:
        # A broadcast moved to another time or segment, a scan of another
        # segment: plan it anew (the pending planning job is superseded).
        await plan_touchpoint(ctx, touchpoint_id=row.id)
    await ctx.emit(
        TouchpointUpdated(
            workspace_id=row.workspace_id,
            touchpoint_id=row.id,
            name=spec.name,
            status=row.status,
            version=version,
        )
    )
    return version


async def do_set_touchpoint_status(
    ctx: ActionContext, *, touchpoint_id: int, status: TouchStatus
) -> None:
    """Switch the touchpoint live, paused, back to draft or archived (see
    the module docstring for what each means for pending decisions).
    Setting the status it has changes nothing and emits nothing."""
    require_admin(ctx.actor)
    row = await touchpoint_row(ctx.conn, ctx.actor.workspace_id, touchpoint_id, for_update=True)
    if row.status == status.value:
        return
    await ctx.conn.execute(
        t.touchpoints.update()
        .where(t.touchpoints.c.id == row.id)
        .values(status=status.value, updated_at=ctx.now)
    )
    if status is TouchStatus.ARCHIVED:
        await _end_all(ctx, row.id)
    await plan_touchpoint(ctx, touchpoint_id=row.id)
    await ctx.emit(
        TouchpointUpdated(
            workspace_id=row.workspace_id,
            touchpoint_id=row.id,
            name=row.name,
            status=status.value,
            version=row.version,
        )
    )


async def _end_all(ctx: ActionContext, touchpoint_id: int) -> None:
    """End every active episode of an archived touchpoint and cancel every
    pending decision of it: two set-wise UPDATEs, however many contacts."""
    c = t.episodes.c
    ended = await ctx.conn.execute(
        t.episodes.update()
        .where(c.touchpoint_id == touchpoint_id, c.state == EpisodeState.ACTIVE.value)
        .values(state=EpisodeState.EXITED.value, ended_at=ctx.now, end_reason=ARCHIVED_REASON)
        .returning(c.id, c.workspace_id, c.contact_id)
    )
    episodes = sorted(ended.all(), key=lambda e: e.id)
    await cancel_decisions(
        ctx, t.decisions.c.touchpoint_id == touchpoint_id, reason=ARCHIVED_REASON
    )
    for episode in episodes:
        await ctx.emit(
            EpisodeEnded(
                workspace_id=episode.workspace_id,
                episode_id=episode.id,
                touchpoint_id=touchpoint_id,
                contact_id=episode.contact_id,
                state=EpisodeState.EXITED.value,
                reason=ARCHIVED_REASON,
            )
        )


# -- checks ------------------------------------------------------------------


async def _check(
    ctx: ActionContext, spec: TouchpointSpec, validate_templates: TemplateCheck | None
) -> None:
    if validate_templates is not None:
        validate_templates(spec)
    if spec.inbox_id is not None:
        await _check_inbox(ctx, spec)
    for field, segment_id in (
        ("entry_segment_id", spec.entry_segment_id),
        ("trigger.segment_id", spec.trigger.segment_id),
    ):
        if segment_id is not None:
            await _check_segment(ctx, field, segment_id)


async def _check_inbox(ctx: ActionContext, spec: TouchpointSpec) -> None:
    c = t.inboxes.c
    kind = await ctx.conn.scalar(
        sa.select(c.kind).where(c.id == spec.inbox_id, c.workspace_id == ctx.actor.workspace_id)
    )
    if kind is None:
        raise InvalidInput("inbox_id: no such inbox", field="inbox_id")
    if kind not in (InboxKind.EMAIL.value, InboxKind.WIDGET.value):
        raise InvalidInput("inbox_id: must be an email or widget inbox", field="inbox_id")
    for step in spec.steps:
        wanted = _INBOX_KIND[step.channel]
        if kind != wanted.value:
            field = f"steps[{step.position}].channel"
            raise InvalidInput(
                f"{field}: a {step.channel.value} step needs a {wanted.value} inbox,"
                f" and inbox {spec.inbox_id} is a {kind} inbox",
                field=field,
            )


async def _check_segment(ctx: ActionContext, field: str, segment_id: int) -> None:
    c = t.segments.c
    found = await ctx.conn.scalar(
        sa.select(c.id).where(c.id == segment_id, c.workspace_id == ctx.actor.workspace_id)
    )
    if found is None:
        raise InvalidInput(f"{field}: no such segment", field=field)


async def _name_taken(ctx: ActionContext, name: str, *, except_id: int | None = None) -> None:
    c = t.touchpoints.c
    stmt = sa.select(c.id).where(c.workspace_id == ctx.actor.workspace_id, c.name == name)
    if except_id is not None:
        stmt = stmt.where(c.id != except_id)
    if await ctx.conn.scalar(stmt) is not None:
        raise Conflict(f"name: a touchpoint named {name!r} exists already", field="name")


# -- storing -----------------------------------------------------------------


def _columns(spec: TouchpointSpec, ctx: ActionContext) -> dict[str, Any]:
    """The `touchpoints` columns a spec sets."""
    return {
        "name": spec.name,
        "description": spec.description,
        "kind": spec.kind.value,
        "trigger": trigger_json(spec.trigger),
        "trigger_key": spec.trigger.key,
        "episode_key": spec.episode_key,
        "entry_segment_id": spec.entry_segment_id,
        "exit_rules": exit_rules_json(spec.exit_rules),
        "goal": goal_json(spec.goal),
        "reentry": spec.reentry.value,
        "cooldown_seconds": spec.cooldown_seconds,
        "priority": spec.priority,
        "holdout_percent": spec.holdout_percent,
        "max_lateness_seconds": spec.max_lateness_seconds,
        "quiet_hours": None if spec.quiet_hours is None else quiet_hours_json(spec.quiet_hours),
        "inbox_id": spec.inbox_id,
        "updated_at": ctx.now,
    }


async def _write_steps(
    ctx: ActionContext, touchpoint_id: int, version: int, spec: TouchpointSpec
) -> None:
    await ctx.conn.execute(
        t.touchpoint_steps.insert(),
        [
            {
                "workspace_id": ctx.actor.workspace_id,
                "touchpoint_id": touchpoint_id,
                "version": version,
                "position": step.position,
                "delay": delay_json(step.delay),
                "channel": step.channel.value,
                "variants": [variant_json(v) for v in step.variants],
                "step_filter": None,
                "business_hours": step.business_hours,
                "created_at": ctx.now,
            }
            for step in spec.steps
        ],
    )
