"""Episodes and their decisions (TOUCHPOINTS.md rules 1 and 3): the
primitives the triggers (server.actions.touch_triggers) and the claim
worker share.

- `start_episode` writes a contact's episode of a touchpoint and the
  decision for its first step, in the caller's transaction: that of the
  event that triggered it. UNIQUE (touchpoint, contact, key) with ON
  CONFLICT DO NOTHING makes a replayed trigger, a second process or a
  retried transaction start nothing.
- `schedule_step` decides one step of an episode (UNIQUE idempotency key
  per episode and position): the trigger calls it for step 0, the claim
  worker for the next step when one settles. A step due on a date the
  contact lacks (no birthday) is recorded `skipped` and the next is
  decided; past the last step the episode is `done`.
- `end_episode` ends an active episode and cancels what it still had
  pending. It only moves `active` rows (UPDATE ... WHERE state='active'),
  so when an exit, a goal and the worker race, exactly one ends it.

These are helpers that run inside an action, not actions of their own:
they take the records the caller already read and never check the
actor's role (the trigger runs for whoever posted the message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.actions.action_context import ActionContext
from server.domain.events import (
    DecisionCancelled,
    DecisionScheduled,
    DecisionSkipped,
    EpisodeEnded,
    EpisodeStarted,
)
from server.domain.json_types import JsonValue
from server.domain.touch_guards import bucket_of, in_holdout, step_due_at
from server.domain.touch_timing import RelativeDelay, StepDelay, parse_delay
from server.domain.touchpoints import (
    PENDING,
    Arm,
    DecisionState,
    EpisodeState,
    Reentry,
    decision_key,
    episode_key,
    parse_trigger,
)
from server.queries.records import Decision, Episode, Touchpoint, TouchpointStep, load
from server.queries.segments import contact_in_segment, stored_filter
from server.queries.touch_contacts import ContactTiming, contact_timing
from server.queries.touch_planning import planning_segment
from server.queries.touchpoints import step_at
from server.storage import tables as t
from server.storage.inserts import insert_unless_taken

ONCE_KEY = "once"
ALL_STEPS_DONE = "all steps done"


async def start_episode(
    ctx: ActionContext,
    *,
    touchpoint: Touchpoint,
    contact_id: int,
    facts: Mapping[str, JsonValue],
    conversation_id: int | None = None,
    anchor: datetime | None = None,
) -> int | None:
    """Start `touchpoint` for the contact about the object `facts` name
    (they fill the episode key and become the episode's context) and
    decide its first step. None when nothing started: a placeholder of
    the key has no value, the contact is not in the touchpoint's entry
    segment, the contact had this key already (a replay, or reentry
    `once`), or the cooldown since its last episode has not run.

    A trigger's `wait` (no reply for 24 h) comes before step 0's own
    delay: the first step is counted from now + wait, or from `anchor` +
    wait when given (a broadcast's local time in the contact's zone, the
    start of a birthday's day: server.actions.touch_planning)."""
    key = episode_key(touchpoint.episode_key, facts)
    if key is None or not await _may_enter(ctx, touchpoint, contact_id):
        return None
    reentry = Reentry(touchpoint.reentry)
    if reentry is Reentry.ONCE:
        key = ONCE_KEY
    elif reentry is Reentry.COOLDOWN and await _cooling_down(ctx, touchpoint, contact_id):
        return None
    bucket = bucket_of(touchpoint.id, contact_id)
    arm = Arm.HOLDOUT if in_holdout(bucket, touchpoint.holdout_percent) else Arm.TREATMENT
    row = await insert_unless_taken(
        ctx.conn,
        t.episodes,
        {
            "workspace_id": touchpoint.workspace_id,
            "touchpoint_id": touchpoint.id,
            "version": touchpoint.version,
            "contact_id": contact_id,
            "key": key,
            "state": EpisodeState.ACTIVE.value,
            "arm": arm.value,
            "bucket": bucket,
            "context": dict(facts),
            "conversation_id": conversation_id,
            "entered_at": ctx.now,
        },
        keys=("touchpoint_id", "contact_id", "key"),
    )
    if row is None:
        return None
    episode = load(Episode, row)
    await ctx.emit(
        EpisodeStarted(
            workspace_id=episode.workspace_id,
            episode_id=episode.id,
            touchpoint_id=touchpoint.id,
            contact_id=contact_id,
            key=key,
            arm=arm.value,
        )
    )
    wait = parse_trigger(touchpoint.trigger).wait_seconds or 0
    start = ctx.now if anchor is None else anchor
    await schedule_step(ctx, episode=episode, position=0, anchor=start + timedelta(seconds=wait))
    return episode.id


async def _may_enter(ctx: ActionContext, touchpoint: Touchpoint, contact_id: int) -> bool:
    """Whether the contact is in the touchpoint's entry segment (if it
    has one), evaluated now rather than from the stored members: a
    contact who just left the segment must not get its touches."""
    if touchpoint.entry_segment_id is None:
        return True
    segment = await planning_segment(ctx.conn, touchpoint.workspace_id, touchpoint.entry_segment_id)
    if segment is None:
        return False
    return await contact_in_segment(
        ctx.conn, touchpoint.workspace_id, stored_filter(segment), contact_id, ctx.now
    )


async def _cooling_down(ctx: ActionContext, touchpoint: Touchpoint, contact_id: int) -> bool:
    """Whether the contact's latest episode of this touchpoint entered
    within its cooldown."""
    c = t.episodes.c
    latest: datetime | None = await ctx.conn.scalar(
        sa.select(sa.func.max(c.entered_at)).where(
            c.touchpoint_id == touchpoint.id, c.contact_id == contact_id
        )
    )
    if latest is None:
        return False
    return ctx.now - latest < timedelta(seconds=touchpoint.cooldown_seconds or 0)


async def schedule_step(
    ctx: ActionContext,
    *,
    episode: Episode,
    position: int,
    anchor: datetime,
    touchpoint: Touchpoint | None = None,
    steps: Mapping[tuple[int, int, int], TouchpointStep] | None = None,
    timing: ContactTiming | None = None,
) -> int | None:
    """Decide step `position` of the episode's version, due by its delay
    from `anchor` in the contact's zone. A step due on a date attribute
    the contact lacks is recorded `skipped` and the next one is decided;
    past the last step the episode ends `done` and None is returned.

    The decision's key is the episode's and the position's: deciding the
    same step again (a retry, a second worker) writes nothing and returns
    the id decided first.

    A caller that read them already (the claim, for its whole batch) passes
    the episode's `touchpoint`, `steps` (every step of the episode's
    touchpoint version, by touchpoint id, version and position: a missing
    position is past the last) and the contact's `timing`."""
    if touchpoint is None:
        touchpoint = await _touchpoint_of(ctx, episode)
    while True:
        if steps is None:
            step = await step_at(ctx.conn, episode.touchpoint_id, episode.version, position)
        else:
            step = steps.get((episode.touchpoint_id, episode.version, position))
        if step is None:
            await end_episode(
                ctx, episode_id=episode.id, state=EpisodeState.DONE, reason=ALL_STEPS_DONE
            )
            return None
        if timing is None:
            timing = await contact_timing(ctx.conn, episode.workspace_id, episode.contact_id)
        delay = parse_delay(step.delay, f"steps[{position}].delay")
        due = step_due_at(delay, anchor=anchor, zone=timing.zone, attributes=timing.attributes)
        values = decision_values(
            episode, touchpoint, step, position=position, due=due, anchor=anchor, now=ctx.now
        )
        if due is None:
            values |= skipped_for_missing_date(delay, ctx.now)
            row = await insert_unless_taken(ctx.conn, t.decisions, values, keys=_DECISION_KEY)
            if row is not None:
                await ctx.emit(DecisionSkipped(**decision_facts(load(Decision, row))))
            position += 1
            continue
        values["state"] = DecisionState.SCHEDULED.value
        row = await insert_unless_taken(ctx.conn, t.decisions, values, keys=_DECISION_KEY)
        if row is None:
            decided: int | None = await ctx.conn.scalar(
                sa.select(t.decisions.c.id).where(
                    t.decisions.c.idempotency_key == values["idempotency_key"]
                )
            )
            return decided
        decision = load(Decision, row)
        await ctx.emit(DecisionScheduled(**decision_facts(decision), due_at=decision.due_at))
        ctx.due_work_added()
        return decision.id


_DECISION_KEY = ("idempotency_key",)


def decision_values(
    episode: Episode,
    touchpoint: Touchpoint,
    step: TouchpointStep,
    *,
    position: int,
    due: datetime | None,
    anchor: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The decision row of step `position` (its state still to be set):
    due at `due`, or at `anchor` when the step's date is missing (it is
    then recorded skipped)."""
    return {
        "workspace_id": episode.workspace_id,
        "episode_id": episode.id,
        "touchpoint_id": episode.touchpoint_id,
        "step_id": step.id,
        "contact_id": episode.contact_id,
        "position": position,
        "channel": step.channel,
        "kind": touchpoint.kind,
        "priority": touchpoint.priority,
        "idempotency_key": decision_key(episode.id, position),
        "due_at": due or anchor,
        "run_at": due or anchor,
        "attempts": 0,
        "created_at": now,
    }


def skipped_for_missing_date(delay: StepDelay, now: datetime) -> dict[str, Any]:
    """The columns of a step skipped because the contact lacks its date."""
    attribute = delay.attribute if isinstance(delay, RelativeDelay) else "date"
    return {
        "state": DecisionState.SKIPPED.value,
        "reason": f"no {attribute} on the contact",
        "settled_at": now,
    }


async def _touchpoint_of(ctx: ActionContext, episode: Episode) -> Touchpoint:
    row = (
        await ctx.conn.execute(
            sa.select(t.touchpoints).where(t.touchpoints.c.id == episode.touchpoint_id)
        )
    ).one()
    return load(Touchpoint, row)


def decision_facts(decision: Decision) -> dict[str, Any]:
    """What every decision event says about its decision."""
    return {
        "workspace_id": decision.workspace_id,
        "decision_id": decision.id,
        "episode_id": decision.episode_id,
        "touchpoint_id": decision.touchpoint_id,
        "contact_id": decision.contact_id,
        "position": decision.position,
        "channel": decision.channel,
        "reason": decision.reason,
    }


async def end_episode(
    ctx: ActionContext, *, episode_id: int, state: EpisodeState, reason: str
) -> bool:
    """End an active episode in `state` for `reason`, cancelling its
    pending decisions with the same reason. False (and nothing written)
    when it was not active any more: someone else ended it first."""
    return await _end(ctx, episode_id, state, reason, (EpisodeState.ACTIVE,))


async def reach_goal(ctx: ActionContext, *, episode_id: int, reason: str) -> bool:
    """The episode's goal happened: it ends `goal`, from `active` (its
    pending decisions cancelled) or from `done` (every step had settled,
    and the goal came within its window after a send: the order placed a
    day after the last reminder is what that reminder was for)."""
    return await _end(
        ctx, episode_id, EpisodeState.GOAL, reason, (EpisodeState.ACTIVE, EpisodeState.DONE)
    )


async def _end(
    ctx: ActionContext,
    episode_id: int,
    state: EpisodeState,
    reason: str,
    from_states: tuple[EpisodeState, ...],
) -> bool:
    c = t.episodes.c
    ended = (
        await ctx.conn.execute(
            t.episodes.update()
            .where(c.id == episode_id, c.state.in_([s.value for s in from_states]))
            .values(state=state.value, ended_at=ctx.now, end_reason=reason[:200])
            .returning(c.workspace_id, c.touchpoint_id, c.contact_id)
        )
    ).first()
    if ended is None:
        return False
    await cancel_decisions(ctx, t.decisions.c.episode_id == episode_id, reason=reason)
    await ctx.emit(
        EpisodeEnded(
            workspace_id=ended.workspace_id,
            episode_id=episode_id,
            touchpoint_id=ended.touchpoint_id,
            contact_id=ended.contact_id,
            state=state.value,
            reason=reason[:200],
        )
    )
    return True


async def end_episodes(ctx: ActionContext, ends: Sequence[tuple[int, EpisodeState, str]]) -> None:
    """`end_episode` for many episodes at once, (episode id, state,
    reason) each: one UPDATE and one cancel per state and reason rather
    than two statements per episode (the claim ends its batch's)."""
    groups: dict[tuple[EpisodeState, str], list[int]] = {}
    for episode_id, state, reason in ends:
        groups.setdefault((state, reason), []).append(episode_id)
    c = t.episodes.c
    for (state, reason), ids in groups.items():
        rows = await ctx.conn.execute(
            t.episodes.update()
            .where(c.id.in_(ids), c.state == EpisodeState.ACTIVE.value)
            .values(state=state.value, ended_at=ctx.now, end_reason=reason[:200])
            .returning(c.id, c.workspace_id, c.touchpoint_id, c.contact_id)
        )
        ended = sorted(rows, key=lambda row: row.id)
        if not ended:
            continue
        await cancel_decisions(
            ctx, t.decisions.c.episode_id.in_([row.id for row in ended]), reason=reason
        )
        for row in ended:
            await ctx.emit(
                EpisodeEnded(
                    workspace_id=row.workspace_id,
                    episode_id=row.id,
                    touchpoint_id=row.touchpoint_id,
                    contact_id=row.contact_id,
                    state=state.value,
                    reason=reason[:200],
                )
            )


async def cancel_decisions(
    ctx: ActionContext, which: sa.ColumnElement[bool], *, reason: str
) -> list[int]:
    """Cancel the pending decisions among `which` (a condition on
    `decisions`) for `reason`, one DecisionCancelled each; returns their
    ids. Decisions already claimed, sent or settled are left alone: the
    claim checks the episode again inside its own transaction."""
    c = t.decisions.c
    rows = await ctx.conn.execute(
        t.decisions.update()
        .where(which, c.state.in_([s.value for s in PENDING]))
        .values(state=DecisionState.CANCELLED.value, reason=reason[:200], settled_at=ctx.now)
        .returning(*t.decisions.c)
    )
    cancelled = sorted((load(Decision, row) for row in rows), key=lambda d: d.id)
    for decision in cancelled:
        await ctx.emit(DecisionCancelled(**decision_facts(decision)))
    return [d.id for d in cancelled]


async def cancel_decision(ctx: ActionContext, *, decision_id: int, reason: str) -> bool:
    """Cancel one decision if it is still pending."""
    return bool(await cancel_decisions(ctx, t.decisions.c.id == decision_id, reason=reason))
