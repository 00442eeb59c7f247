"""The next steps of a claim batch's episodes, decided together.

`schedule_step` (server.actions.touch_episodes) decides one episode's
next step in two or three statements; the claim settles up to a batch of
decisions at once, so it hands their next steps here: every new decision
row (the scheduled ones, and those skipped on the way because the
contact lacks a step's date) goes in one INSERT, and the episodes past
their last step end in one UPDATE. The rows, their keys and their events
are the ones `schedule_step` writes: deciding a step again still writes
nothing (ON CONFLICT on the decision's key).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from server.actions.action_context import ActionContext
from server.actions.touch_episodes import (
    ALL_STEPS_DONE,
    decision_facts,
    decision_values,
    end_episodes,
    skipped_for_missing_date,
)
from server.domain.events import DecisionScheduled, DecisionSkipped
from server.domain.touch_guards import step_due_at
from server.domain.touch_timing import parse_delay
from server.domain.touchpoints import DecisionState, EpisodeState
from server.queries.records import Decision, Episode, Touchpoint, TouchpointStep, load
from server.queries.touch_contacts import ContactTiming, contact_timing
from server.storage import tables as t


@dataclasses.dataclass(frozen=True)
class NextStep:
    """Decide step `position` of `episode`, due by its delay from `anchor`."""

    episode: Episode
    touchpoint: Touchpoint
    position: int
    anchor: datetime
    timing: ContactTiming | None


async def schedule_steps(
    ctx: ActionContext,
    requests: Sequence[NextStep],
    steps: Mapping[tuple[int, int, int], TouchpointStep],
) -> None:
    """Decide every request's step, as `schedule_step` would one by one.
    `steps` holds every step of the requests' touchpoint versions, by
    touchpoint id, version and position (a missing position is past the
    last)."""
    rows: list[dict[str, Any]] = []
    ends: list[tuple[int, EpisodeState, str]] = []
    for request in requests:
        episode = request.episode
        timing = request.timing
        position = request.position
        while True:
            step = steps.get((episode.touchpoint_id, episode.version, position))
            if step is None:
                ends.append((episode.id, EpisodeState.DONE, ALL_STEPS_DONE))
                break
            if timing is None:
                timing = await contact_timing(ctx.conn, episode.workspace_id, episode.contact_id)
            delay = parse_delay(step.delay, f"steps[{position}].delay")
            due = step_due_at(
                delay, anchor=request.anchor, zone=timing.zone, attributes=timing.attributes
            )
            values = decision_values(
                episode,
                request.touchpoint,
                step,
                position=position,
                due=due,
                anchor=request.anchor,
                now=ctx.now,
            )
            if due is None:
                rows.append(values | skipped_for_missing_date(delay, ctx.now))
                position += 1
                continue
            state = DecisionState.SCHEDULED.value
            rows.append(values | {"state": state, "reason": None, "settled_at": None})
            break
    if rows:
        await _insert_decisions(ctx, rows)
    if ends:
        await end_episodes(ctx, ends)


async def _insert_decisions(ctx: ActionContext, rows: list[dict[str, Any]]) -> None:
    """The rows whose key no decision holds yet, in one INSERT, and each
    new one's event."""
    dialect = postgresql if ctx.conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(t.decisions)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(*t.decisions.c)
    )
    written = sorted((load(Decision, row) for row in await ctx.conn.execute(stmt)), key=_by_id)
    scheduled = False
    for decision in written:
        facts = decision_facts(decision)
        if decision.state == DecisionState.SKIPPED.value:
            await ctx.emit(DecisionSkipped(**facts))
            continue
        await ctx.emit(DecisionScheduled(**facts, due_at=decision.due_at))
        scheduled = True
    if scheduled:
        ctx.due_work_added()


def _by_id(decision: Decision) -> int:
    return decision.id
