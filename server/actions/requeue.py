"""Requeue (FEATURES.md F5): a conversation goes back to the queue when
its assignee doesn't answer within the policy's `reassign_after`, or
goes away (the last socket closed and stayed closed past the policy's
`offline_grace`), and is assigned to someone else.

Both are durable due work (server.actions.jobs), scheduled in the
transaction that makes them due — the assignment, the last socket
closing — so a restart loses none and the job row's lease runs each
once:

- REPLY_DUE, one per assignment (key `assignment:<id>`, due its wait
  after it): when due, if it is still the conversation's latest
  assignment, the conversation is open with that assignee and no public
  reply of theirs came since, it is requeued.
- AGENT_AWAY, one per departure (key `away:<agent>:<left_at>`): when due,
  if the agent is still not connected, each of their open conversations
  under an automatic policy is requeued.

`do_record_presence` is how the live layer says an agent's first socket
opened or last one closed.

A requeue unassigns (`conversation.assigned` to nobody), writes a private
note in the thread saying why, emits `conversation.requeued`, and assigns
by the policy among the others; with no one else free it waits in the
queue (the automatic assignment hook leaves it alone in this transaction,
so it does not go straight back to whom it left).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from server.actions.action_context import ActionContext
from server.actions.assignment import assign_conversation, drain_for
from server.actions.jobs import schedule_job
from server.actions.messages import append_message
from server.domain.assignment import AGENT_AWAY, Mode
from server.domain.events import ConversationAssigned, ConversationRequeued
from server.domain.jobs import ClaimedJob, JobOutcome, JobStatus
from server.domain.values import (
    Availability,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    SenderKind,
)
from server.queries.assignment import policies_of_agents, policy_for
from server.queries.records import Conversation, load_or_none
from server.storage import tables as t


async def schedule_away_check(ctx: ActionContext, *, agent_id: int, left_at: datetime) -> None:
    """The agent's last socket closed at `left_at`: look again when the
    longest offline grace of their policies has passed."""
    policies = [
        p
        for p in await policies_of_agents(ctx.conn, [agent_id])
        if p.policy.mode is not Mode.MANUAL
    ]
    if not policies:
        return
    grace = max(p.policy.offline_grace for p in policies)
    workspace_id = (
        await ctx.conn.execute(sa.select(t.agents.c.workspace_id).where(t.agents.c.id == agent_id))
    ).scalar_one()
    await schedule_job(
        ctx,
        workspace_id=workspace_id,
        kind=AGENT_AWAY,
        subject_id=agent_id,
        key=f"away:{agent_id}:{left_at.isoformat()}",
        due_at=left_at + grace,
    )
    ctx.due_work_added()


async def requeue_unanswered_job(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
    """REPLY_DUE's handler: requeue the conversation if its assignee
    still hasn't answered."""
    conv = await _locked(ctx, job.subject_id)
    if conv is None:
        return JobOutcome(JobStatus.CANCELLED, "the conversation no longer exists")
    a = t.assignments.c
    last = (
        await ctx.conn.execute(
            sa.select(a.agent_id, a.at)
            .where(a.conversation_id == conv.id)
            .order_by(a.id.desc())
            .limit(1)
        )
    ).first()
    if last is None or conv.assignee_id != last.agent_id:
        return JobOutcome(JobStatus.CANCELLED, "assigned to someone else since")
    scoped = await policy_for(ctx.conn, inbox_id=conv.inbox_id, team_id=conv.team_id)
    wait = scoped.policy.reassign_after if scoped is not None else None
    if wait is None or last.at + wait != job.due_at:
        # An earlier assignment's (or the policy's wait changed since).
        return JobOutcome(JobStatus.CANCELLED, "not the latest assignment's")
    if conv.status != ConversationStatus.OPEN.value:
        return JobOutcome(JobStatus.CANCELLED, f"the conversation is {conv.status}")
    m = t.messages.c
    answered = await ctx.conn.scalar(
        sa.select(m.id)
        .where(
            m.conversation_id == conv.id,
            m.sender_kind == SenderKind.AGENT.value,
            m.sender_id == last.agent_id,
            m.private.is_(False),
            m.created_at >= last.at,
        )
        .limit(1)
    )
    if answered is not None:
        return JobOutcome(JobStatus.DONE, "answered")
    name = await _name(ctx, last.agent_id)
    reason = f"no reply from {name} within {_minutes(wait)}"
    await requeue(ctx, conv, agent_id=last.agent_id, reason=reason)
    return JobOutcome(JobStatus.DONE)


async def requeue_away_job(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
    """AGENT_AWAY's handler: requeue the open conversations of an agent who
    is still away, under the policies that assign automatically."""
    ag = t.agents.c
    agent = (
        await ctx.conn.execute(
            sa.select(ag.connected, ag.name).where(ag.id == job.subject_id).with_for_update()
        )
    ).first()
    if agent is None:
        return JobOutcome(JobStatus.CANCELLED, "the agent no longer exists")
    if agent.connected:
        return JobOutcome(JobStatus.CANCELLED, "back before the grace ran out")
    c = t.conversations.c
    ids = await ctx.conn.scalars(
        sa.select(c.id)
        .where(c.assignee_id == job.subject_id, c.status == ConversationStatus.OPEN.value)
        .order_by(c.id)
    )
    for conversation_id in list(ids):
        conv = await _locked(ctx, conversation_id)
        if conv is None or conv.assignee_id != job.subject_id:
            continue
        scoped = await policy_for(ctx.conn, inbox_id=conv.inbox_id, team_id=conv.team_id)
        if scoped is None or scoped.policy.mode is Mode.MANUAL:
            continue  # assigned by hand, stays theirs
        await requeue(ctx, conv, agent_id=job.subject_id, reason=f"{agent.name} went offline")
    return JobOutcome(JobStatus.DONE)


async def requeue(ctx: ActionContext, conv: Conversation, *, agent_id: int, reason: str) -> None:
    """Take `conv` from `agent_id` (its row locked by the caller), say why
    in the thread, and assign it among the others."""
    await ctx.conn.execute(
        t.conversations.update().where(t.conversations.c.id == conv.id).values(assignee_id=None)
    )
    await ctx.emit(
        ConversationAssigned(
            workspace_id=conv.workspace_id,
            conversation_id=conv.id,
            inbox_id=conv.inbox_id,
            assignee_id=None,
            team_id=conv.team_id,
        )
    )
    note = f"Returned to the queue: {reason}."
    await append_message(
        ctx,
        conv,
        direction=Direction.OUTBOUND,
        sender_kind=SenderKind.SYSTEM,
        sender_id=None,
        private=True,
        text=note,
        html=None,
        delivery_status=DeliveryStatus.RECEIVED,
    )
    await ctx.emit(
        ConversationRequeued(
            workspace_id=conv.workspace_id,
            conversation_id=conv.id,
            inbox_id=conv.inbox_id,
            agent_id=agent_id,
            reason=reason,
        )
    )
    await assign_conversation(ctx, conv.id, exclude={agent_id})


async def _locked(ctx: ActionContext, conversation_id: int) -> Conversation | None:
    c = t.conversations.c
    row = (
        await ctx.conn.execute(
            sa.select(t.conversations)
            .where(c.id == conversation_id, c.merged_into_id.is_(None))
            .with_for_update()
        )
    ).first()
    return load_or_none(Conversation, row)


async def _name(ctx: ActionContext, agent_id: int) -> str:
    name = await ctx.conn.scalar(sa.select(t.agents.c.name).where(t.agents.c.id == agent_id))
    return str(name or f"agent {agent_id}")


def _minutes(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 or minutes % 60 else f"{minutes // 60} h"


async def do_record_presence(ctx: ActionContext, *, agent_id: int, connected: bool) -> None:
    """An agent's first live socket opened (`connected`) or last one
    closed (presence itself stays off the event log, server.realtime.
    presence, so this emits nothing). Connecting drains their queues;
    leaving is looked at again after the policies' grace."""
    a = t.agents.c
    values: dict[str, object] = {"connected": connected}
    if not connected:
        values["left_at"] = ctx.now
    changed = await ctx.conn.execute(
        t.agents.update()
        .where(a.id == agent_id, a.connected.is_(not connected))
        .values(**values)
        .returning(a.availability)
    )
    row = changed.first()
    if row is None:
        return  # no change: another process recorded it already
    if connected:
        if row.availability == Availability.ONLINE.value:
            await drain_for(ctx, [agent_id])
        return
    await schedule_away_check(ctx, agent_id=agent_id, left_at=ctx.now)
