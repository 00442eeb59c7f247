"""Touchpoint triggers and exits, in the transaction of what triggered them
(TOUCHPOINTS.md rule 1: the episode and its first decision are written
with the event, so a crash can't leave one without the other).

`perform` (server.actions.context) calls `react_to_events(ctx)` after the
action and before its events are appended. It reads the events the action
emitted (`ctx.pending`) and:

- ends the active episodes those events end, first: a reply from the
  customer ends a chase for that reply, an agent's message ends a wait
  for an agent (and supersedes the chase of that conversation's older
  agent message), a resolved conversation, a tracked event matching an
  exit rule with the episode's own values (`order_placed` for this cart);
  a tracked event that is the touchpoint's goal, within the goal window
  after the episode's first send, ends it `goal` instead (also once every
  step settled and the episode is `done`: the order a day after the last
  reminder is what the reminder was for);
- then starts episodes of the live touchpoints the events trigger
  (server.actions.touch_episodes.start_episode).

Which events count (RFC 3834 and common sense): a private note is nobody's
reply; a mail that says it was written by a program (an out-of-office, a
list) neither starts nor ends anything; only a person on the agents' side
(`sender_kind` agent) makes a chase for the customer's reply.

It costs nothing for the events that can't matter: their types are looked
at in memory first; a relevant one costs one indexed read of the live
touchpoints by trigger key and, when something could end an episode, one
of the active episodes of those conversations and contacts. The events
this reaction emits itself (episode.started, decision.scheduled, ...) are
appended with the rest but are not reacted to: the reaction reads the
events pending when it began. Nor are a claim's (server.actions.
touch_claims): it acts as the system of no workspace, so the conversation
a touch opens and the touch's message start and end nothing — touches
don't breed touches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from server.actions.action_context import ActionContext
from server.actions.touch_episodes import end_episode, reach_goal, start_episode
from server.domain.json_types import JsonObject, JsonValue
from server.domain.touch_timing import MAX_DELAY_SECONDS
from server.domain.touchpoints import (
    DecisionState,
    EpisodeState,
    ExitKind,
    ExitRule,
    Goal,
    Trigger,
    TriggerKind,
    implied_exits,
    matches,
    parse_exit_rules,
    parse_goal,
    parse_trigger,
    resolve_match,
    where_matches,
)
from server.domain.values import ConversationStatus, Direction, SenderKind
from server.queries.records import Episode, Touchpoint, load
from server.queries.touchpoints import live_touchpoints
from server.storage import tables as t
from server.storage.events import PendingEvent

# The only event types anything here reacts to.
RELEVANT = frozenset(
    {
        "contact.created",
        "conversation.created",
        "conversation.status_changed",
        "message.created",
        "contact.event_tracked",
    }
)

SUPERSEDED = "superseded by a newer reply"
# The longest goal window a touchpoint may have (server.domain.touchpoints
# parses it with this bound): older done episodes can't reach theirs.
MAX_GOAL_SECONDS = MAX_DELAY_SECONDS
_EXIT_REASONS = {
    ExitKind.CUSTOMER_REPLY: "customer replied",
    ExitKind.AGENT_REPLY: "agent replied",
    ExitKind.CONVERSATION_RESOLVED: "conversation resolved",
}
# A holdout episode's first decision is skipped, never sent: its goal
# window opens when that decision would have gone out.
HOLDOUT_REASON = "holdout"
# Message fields that are content, not facts about the message: they stay
# out of an episode's context (templates read the latest state at send).
_CONTENT = frozenset({"text", "html", "workspace_id"})


@dataclasses.dataclass(frozen=True)
class _Start:
    """An event that may start episodes of touchpoints with `key`. No
    `contact_id`: the conversation's contact (a resolved conversation's
    event does not name it)."""

    key: str
    contact_id: int | None
    conversation_id: int | None
    facts: dict[str, JsonValue]
    # What a trigger's `where` is compared with.
    properties: JsonObject


@dataclasses.dataclass(frozen=True)
class _Happening:
    """Something that may end episodes: in a conversation (`conversation_id`)
    or, for a tracked event, for a contact (`contact_id`, `name`)."""

    kind: ExitKind
    conversation_id: int | None = None
    contact_id: int | None = None
    name: str | None = None
    properties: JsonObject = dataclasses.field(default_factory=dict)


async def react_to_events(ctx: ActionContext) -> None:
    """Start and end episodes for the events this transaction emitted so
    far (see the module docstring)."""
    if not any(p.type in RELEVANT for p in ctx.pending):
        return
    workspace_id = ctx.actor.workspace_id
    starts: list[_Start] = []
    happenings: list[_Happening] = []
    # Only this workspace's events: an action acts within its actor's.
    for pending in [p for p in ctx.pending if p.workspace_id == workspace_id]:
        found_starts, found_happenings = _read(pending)
        starts += found_starts
        happenings += found_happenings
    if happenings:
        await _end_episodes(ctx, workspace_id, happenings)
    if starts:
        await _start_episodes(ctx, workspace_id, starts)


# -- what an event means -----------------------------------------------------


def _read(pending: PendingEvent) -> tuple[list[_Start], list[_Happening]]:
    """The starts and happenings one pending event stands for."""
    p = pending.payload
    if pending.type == "contact.created":
        return [_Start("event:contact.created", _int(p, "contact_id"), None, _facts(p), p)], []
    if pending.type == "conversation.created":
        conversation = _int(p, "conversation_id")
        start = _Start(
            "event:conversation.created", _int(p, "contact_id"), conversation, _facts(p), p
        )
        return [start], []
    if pending.type == "conversation.status_changed":
        resolved = ConversationStatus.RESOLVED.value
        if p.get("status") != resolved or p.get("old_status") == resolved:
            return [], []
        conversation = _int(p, "conversation_id")
        start = _Start("event:conversation.resolved", None, conversation, _facts(p), p)
        return [start], [_Happening(ExitKind.CONVERSATION_RESOLVED, conversation_id=conversation)]
    if pending.type == "message.created":
        return _read_message(p)
    if pending.type == "contact.event_tracked":
        name, contact = p.get("name"), _int(p, "contact_id")
        raw = p.get("properties")
        properties: JsonObject = raw if isinstance(raw, Mapping) else {}
        # The properties name the business object (`cart:{cart_id}`); the
        # event's own ids win over a property of the same name.
        facts: dict[str, JsonValue] = {**properties, "event": name, "contact_id": contact}
        facts["contact_event_id"] = p.get("contact_event_id")
        start = _Start(f"contact_event:{name}", contact, None, facts, properties)
        happening = _Happening(
            ExitKind.CONTACT_EVENT, contact_id=contact, name=str(name), properties=properties
        )
        return [start], [happening]
    return [], []


def _read_message(p: JsonObject) -> tuple[list[_Start], list[_Happening]]:
    if p.get("private"):
        return [], []
    conversation, contact = _int(p, "conversation_id"), _int(p, "contact_id")
    facts = _facts(p)
    if p.get("direction") == Direction.INBOUND.value:
        if p.get("sender_kind") != SenderKind.CONTACT.value or _automatic(p):
            return [], []
        starts = [
            _Start(key, contact, conversation, facts, p)
            for key in ("event:message.received", TriggerKind.NO_AGENT_REPLY.value)
        ]
        return starts, [_Happening(ExitKind.CUSTOMER_REPLY, conversation_id=conversation)]
    if p.get("sender_kind") != SenderKind.AGENT.value:
        return [], []
    start = _Start(TriggerKind.NO_CUSTOMER_REPLY.value, contact, conversation, facts, p)
    return [start], [_Happening(ExitKind.AGENT_REPLY, conversation_id=conversation)]


def _automatic(p: JsonObject) -> bool:
    """Whether an inbound mail says a program wrote it (RFC 3834: an
    auto-reply, a list, a bounce), as inbound email recorded it
    (`email.auto`, connectors.email.model.AutoKind)."""
    email = p.get("email")
    if not isinstance(email, Mapping):
        return False
    auto = email.get("auto")
    return auto is not None and auto != "none"


def _int(p: JsonObject, name: str) -> int | None:
    value = p.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _facts(p: JsonObject) -> dict[str, JsonValue]:
    """An event's plain fields: what episode keys and exit matches read."""
    return {
        name: value
        for name, value in p.items()
        if name not in _CONTENT and (value is None or isinstance(value, str | int | float))
    }


# -- ending ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """An episode the events may end (an active one, or a done one that
    may still reach its goal) with what decides its end."""

    episode: Episode
    trigger: Trigger
    exits: tuple[ExitRule, ...]
    goal: Goal | None


async def _end_episodes(
    ctx: ActionContext, workspace_id: int, happenings: Sequence[_Happening]
) -> None:
    conversations = {h.conversation_id for h in happenings if h.conversation_id is not None}
    contacts = {
        h.contact_id
        for h in happenings
        if h.kind is ExitKind.CONTACT_EVENT and h.contact_id is not None
    }
    active = await _active_episodes(ctx, workspace_id, conversations, contacts)
    if not active:
        return
    tracked = {h.name for h in happenings if h.kind is ExitKind.CONTACT_EVENT}
    candidates = [a.episode.id for a in active if a.goal is not None and a.goal.name in tracked]
    sends = await _first_sends(ctx, candidates) if candidates else {}
    for item in active:
        ending = _ending(item, happenings, sends.get(item.episode.id), ctx.now)
        if ending is None:
            continue
        state, reason = ending
        if state is EpisodeState.GOAL:
            await reach_goal(ctx, episode_id=item.episode.id, reason=reason)
        else:
            await end_episode(ctx, episode_id=item.episode.id, state=state, reason=reason)


def _ending(
    item: _Candidate,
    happenings: Sequence[_Happening],
    first_send: datetime | None,
    now: datetime,
) -> tuple[EpisodeState, str] | None:
    """How the happenings end this episode, if they do (the first that
    does decides)."""
    episode = item.episode
    context: JsonObject = episode.context if isinstance(episode.context, Mapping) else {}
    # A done episode can still reach its goal, nothing else.
    active = episode.state == EpisodeState.ACTIVE.value
    for h in happenings:
        if h.kind is ExitKind.CONTACT_EVENT:
            if h.contact_id != episode.contact_id:
                continue
            goal = item.goal
            if (
                goal is not None
                and goal.name == h.name
                and first_send is not None
                and first_send <= now <= first_send + timedelta(seconds=goal.within_seconds)
                and matches(resolve_match(goal.match, context), h.properties)
            ):
                return EpisodeState.GOAL, f"goal: {h.name}"
            for rule in item.exits if active else ():
                if (
                    rule.kind is ExitKind.CONTACT_EVENT
                    and rule.name == h.name
                    and matches(resolve_match(rule.match, context), h.properties)
                ):
                    return EpisodeState.EXITED, f"exit: {h.name}"
            continue
        if (
            not active
            or episode.conversation_id is None
            or h.conversation_id != episode.conversation_id
        ):
            continue
        if any(rule.kind is h.kind for rule in item.exits):
            return EpisodeState.EXITED, _EXIT_REASONS[h.kind]
        if h.kind is ExitKind.AGENT_REPLY and item.trigger.kind is TriggerKind.NO_CUSTOMER_REPLY:
            return EpisodeState.EXITED, SUPERSEDED
    return None


async def _active_episodes(
    ctx: ActionContext, workspace_id: int, conversations: set[int], contacts: set[int]
) -> list[_Candidate]:
    """The active episodes in these conversations or of these contacts,
    and the contacts' done episodes of touchpoints with a goal, with their
    touchpoints' exit rules and goals: one read."""
    e, tp = t.episodes.c, t.touchpoints.c
    where = []
    if conversations:
        where.append(e.conversation_id.in_(sorted(conversations)))
    if contacts:
        where.append(e.contact_id.in_(sorted(contacts)))
    if not where:
        return []
    active = sa.and_(e.state == EpisodeState.ACTIVE.value, sa.or_(*where))
    if contacts:
        # Episodes whose steps all settled may still see their goal.
        done = sa.and_(
            e.state == EpisodeState.DONE.value,
            e.contact_id.in_(sorted(contacts)),
            e.ended_at >= ctx.now - timedelta(seconds=MAX_GOAL_SECONDS),
            tp.goal.is_not(None),
        )
        active = sa.or_(active, done)
    rows = await ctx.conn.execute(
        sa.select(t.episodes, tp.trigger, tp.exit_rules, tp.goal)
        .join(t.touchpoints, tp.id == e.touchpoint_id)
        .where(e.workspace_id == workspace_id, active)
        .order_by(e.id)
    )
    out = []
    for row in rows:
        trigger = parse_trigger(row.trigger)
        exits = parse_exit_rules(row.exit_rules) + implied_exits(trigger)
        out.append(_Candidate(load(Episode, row), trigger, exits, parse_goal(row.goal)))
    return out


async def _first_sends(ctx: ActionContext, episode_ids: Sequence[int]) -> dict[int, datetime]:
    """When each episode's first touch went out (for the holdout arm:
    when it would have)."""
    c = t.decisions.c
    sent = sa.or_(
        c.state == DecisionState.SENT.value,
        sa.and_(c.state == DecisionState.SKIPPED.value, c.reason == HOLDOUT_REASON),
    )
    rows = await ctx.conn.execute(
        sa.select(c.episode_id, sa.func.min(sa.func.coalesce(c.settled_at, c.run_at)))
        .where(c.episode_id.in_(sorted(set(episode_ids))), sent)
        .group_by(c.episode_id)
    )
    return {episode_id: at for episode_id, at in rows}


# -- starting ----------------------------------------------------------------


async def _start_episodes(ctx: ActionContext, workspace_id: int, starts: Sequence[_Start]) -> None:
    touchpoints = await live_touchpoints(ctx.conn, workspace_id, {s.key for s in starts})
    if not touchpoints:
        return
    by_key: dict[str, list[tuple[Touchpoint, Trigger]]] = {}
    for touchpoint in touchpoints:
        by_key.setdefault(touchpoint.trigger_key, []).append(
            (touchpoint, parse_trigger(touchpoint.trigger))
        )
    owners = await _conversation_contacts(
        ctx, {s.conversation_id for s in starts if s.contact_id is None and s.key in by_key}
    )
    for start in starts:
        contact_id = start.contact_id
        if contact_id is None and start.conversation_id is not None:
            contact_id = owners.get(start.conversation_id)
        if contact_id is None:
            continue
        for touchpoint, trigger in by_key.get(start.key, []):
            if not where_matches(trigger.where, start.properties):
                continue
            await start_episode(
                ctx,
                touchpoint=touchpoint,
                contact_id=contact_id,
                facts=start.facts,
                conversation_id=start.conversation_id,
            )


async def _conversation_contacts(
    ctx: ActionContext, conversation_ids: set[int | None]
) -> dict[int, int]:
    ids = sorted(i for i in conversation_ids if i is not None)
    if not ids:
        return {}
    c = t.conversations.c
    rows = await ctx.conn.execute(sa.select(c.id, c.contact_id).where(c.id.in_(ids)))
    return {conversation_id: contact_id for conversation_id, contact_id in rows}
