"""Automatic assignment (FEATURES.md F5), on events, in the transaction
of what caused them.

`perform` (server.actions.context) calls `assign_waiting(ctx)` after the
action and routing, before the events are appended. From the events the
action emitted it finds:

- conversations that now wait for an agent — opened, reopened, routed to
  a team or unassigned, open and without an assignee — and assigns each
  by its policy (its team's, else its inbox's; none: it waits for a
  person);
- agents who may take more — one came online or was given more
  capacity, or a conversation of theirs was resolved, snoozed or set
  pending — and drains the queues of their policies.

The pure decisions are server.domain.assignment's. Capacity holds across
processes: the candidate agents' rows are locked (in id order) before
their load is counted, and a conversation is assigned only while it is
still unassigned under its own row lock; a queue read skips rows another
transaction holds. Every assignment writes the conversation, an
`assignments` row (who, by which policy, why: what the conversation
shows and what round robin counts) and `conversation.assigned`.

Requeueing (no reply in time, the assignee gone) is server.actions.
requeue's, and so is `do_record_presence`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

import sqlalchemy as sa

from server.actions.action_context import ActionContext
from server.actions.jobs import schedule_job
from server.domain.assignment import (
    REPLY_DUE,
    Mode,
    drain,
    parse_policy,
    pick_agent,
    queue_order,
)
from server.domain.errors import InvalidInput, NotFound
from server.domain.events import AssignmentPolicyChanged, ConversationAssigned
from server.domain.json_types import JsonValue
from server.domain.values import Availability, ConversationStatus
from server.queries.access import require_admin
from server.queries.assignment import (
    Queued,
    ScopedPolicy,
    agents_with_load,
    lock_agents,
    member_ids,
    policies_of_agents,
    policy_for,
    policy_of_scope,
    queue,
)
from server.storage import tables as t

_WAITING_EVENTS = frozenset(
    {"conversation.created", "conversation.routed", "conversation.assigned"}
)


async def assign_waiting(ctx: ActionContext) -> None:
    """Assign what the action left waiting; drain for agents it freed."""
    waiting: set[int] = set()
    freed: set[int] = set()
    # A requeue assigned (or left waiting) its conversation itself, away
    # from whom it left: not again here.
    requeued = {e.conversation_id for e in ctx.pending if e.type == "conversation.requeued"}
    for event in list(ctx.pending):
        data = event.payload
        if event.type in _WAITING_EVENTS and event.conversation_id is not None:
            waiting.add(event.conversation_id)
        elif event.type == "conversation.status_changed" and event.conversation_id is not None:
            if data.get("status") == ConversationStatus.OPEN.value:
                waiting.add(event.conversation_id)
            elif data.get("old_status") == ConversationStatus.OPEN.value:
                assignee = await _assignee_of(ctx, event.conversation_id)
                if assignee is not None:
                    freed.add(assignee)
        elif event.type == "agent.updated":
            changes = data.get("changes")
            if isinstance(changes, list) and {"availability", "capacity"} & set(changes):
                agent_id = data.get("agent_id")
                if isinstance(agent_id, int) and data.get("availability") == "online":
                    freed.add(agent_id)
    for conversation_id in await _unassigned_open(ctx, waiting - requeued):
        await assign_conversation(ctx, conversation_id)
    if freed:
        await drain_for(ctx, freed)


async def _unassigned_open(ctx: ActionContext, ids: set[int]) -> list[int]:
    """Which of these conversations wait for an agent, in one read (a
    touch batch opens a hundred conversations, most of them resolved)."""
    if not ids:
        return []
    c = t.conversations.c
    found = await ctx.conn.scalars(
        sa.select(c.id)
        .where(
            c.id.in_(ids),
            c.assignee_id.is_(None),
            c.status == ConversationStatus.OPEN.value,
            c.merged_into_id.is_(None),
        )
        .order_by(c.id)
    )
    return list(found)


async def _assignee_of(ctx: ActionContext, conversation_id: int) -> int | None:
    value: int | None = await ctx.conn.scalar(
        sa.select(t.conversations.c.assignee_id).where(t.conversations.c.id == conversation_id)
    )
    return value


async def assign_conversation(
    ctx: ActionContext, conversation_id: int, *, exclude: Collection[int] = ()
) -> int | None:
    """Assign the conversation by its policy if it is open and unassigned
    (to anyone but `exclude`); the agent chosen, or None."""
    c = t.conversations.c
    row = (
        await ctx.conn.execute(
            sa.select(c.id, c.workspace_id, c.inbox_id, c.team_id, c.status, c.assignee_id)
            .where(c.id == conversation_id, c.merged_into_id.is_(None))
            .with_for_update()
        )
    ).first()
    if row is None or row.assignee_id is not None or row.status != ConversationStatus.OPEN.value:
        return None
    scoped = await policy_for(ctx.conn, inbox_id=row.inbox_id, team_id=row.team_id)
    if scoped is None or scoped.policy.mode is Mode.MANUAL:
        return None
    members = [m for m in await member_ids(ctx.conn, scoped) if m not in exclude]
    await lock_agents(ctx.conn, members)
    agents = await agents_with_load(
        ctx.conn, members, window_start=ctx.now - scoped.policy.fairness_window
    )
    channel = await _channel(ctx, row.inbox_id)
    chosen = pick_agent(agents, scoped.policy, channel, ctx.now)
    if chosen is None:
        return None
    await _assign(
        ctx,
        workspace_id=row.workspace_id,
        inbox_id=row.inbox_id,
        team_id=row.team_id,
        conversation_id=conversation_id,
        agent_id=chosen.id,
        scoped=scoped,
    )
    return chosen.id


async def drain_for(ctx: ActionContext, agent_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Serve the queues of every policy these agents are in, as far as
    their (and their colleagues') capacity allows."""
    decided: list[tuple[int, int]] = []
    for scoped in await policies_of_agents(ctx.conn, set(agent_ids)):
        if scoped.policy.mode is Mode.MANUAL:
            continue
        decided.extend(await _drain_policy(ctx, scoped))
    return decided


async def _drain_policy(ctx: ActionContext, scoped: ScopedPolicy) -> list[tuple[int, int]]:
    members = await member_ids(ctx.conn, scoped)
    if not members:
        return []
    # Agents first, then the queue (skipping rows others hold): the same
    # lock order as assign_conversation's wait, so no two wait on each other.
    await lock_agents(ctx.conn, members)
    queued = {q.waiting.id: q for q in await queue(ctx.conn, scoped)}
    if not queued:
        return []
    agents = await agents_with_load(
        ctx.conn, members, window_start=ctx.now - scoped.policy.fairness_window
    )
    decided = drain([q.waiting for q in queued.values()], agents, scoped.policy, ctx.now)
    for conversation_id, agent_id in decided:
        await _assign_queued(ctx, queued[conversation_id], agent_id, scoped)
    return decided


async def _assign_queued(
    ctx: ActionContext,
    queued: Queued,
    agent_id: int,
    scoped: ScopedPolicy,
    reason: str | None = None,
) -> None:
    await _assign(
        ctx,
        workspace_id=queued.workspace_id,
        inbox_id=queued.inbox_id,
        team_id=queued.team_id,
        conversation_id=queued.waiting.id,
        agent_id=agent_id,
        scoped=scoped,
        reason=reason,
    )


async def _assign(
    ctx: ActionContext,
    *,
    workspace_id: int,
    inbox_id: int,
    team_id: int | None,
    conversation_id: int,
    agent_id: int,
    scoped: ScopedPolicy,
    reason: str | None = None,
) -> None:
    c = t.conversations.c
    await ctx.conn.execute(
        t.conversations.update().where(c.id == conversation_id).values(assignee_id=agent_id)
    )
    assignment_id = (
        await ctx.conn.execute(
            t.assignments.insert()
            .values(
                workspace_id=workspace_id,
                conversation_id=conversation_id,
                agent_id=agent_id,
                policy_id=scoped.id,
                reason=reason or f"{scoped.policy.mode.value.replace('_', ' ')} in {scoped.scope}",
                at=ctx.now,
            )
            .returning(t.assignments.c.id)
        )
    ).scalar_one()
    wait = scoped.policy.reassign_after
    if wait is not None:
        # Back to the queue if the assignee doesn't answer in time
        # (server.actions.requeue). Earlier ones are left to find, when
        # due, that they are not the latest assignment's: this may run
        # inside one of them (a requeue), which must not cancel itself.
        await schedule_job(
            ctx,
            workspace_id=workspace_id,
            kind=REPLY_DUE,
            subject_id=conversation_id,
            key=f"assignment:{assignment_id}",
            due_at=ctx.now + wait,
            supersede=False,
        )
        ctx.due_work_added()
    await ctx.emit(
        ConversationAssigned(
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            inbox_id=inbox_id,
            assignee_id=agent_id,
            team_id=team_id,
        )
    )


async def _channel(ctx: ActionContext, inbox_id: int) -> str:
    kind = await ctx.conn.scalar(sa.select(t.inboxes.c.kind).where(t.inboxes.c.id == inbox_id))
    return str(kind)


async def do_set_assignment_policy(
    ctx: ActionContext,
    *,
    policy: JsonValue,
    inbox_id: int | None = None,
    team_id: int | None = None,
) -> None:
    """Set the policy of an inbox or a team (admins), then serve its queue:
    what waited for a person is assigned now if it can be."""
    require_admin(ctx.actor)
    parsed = parse_policy(policy)
    workspace_id = await _scope_workspace(ctx, inbox_id=inbox_id, team_id=team_id)
    p = t.assignment_policies.c
    where = p.inbox_id == inbox_id if inbox_id is not None else p.team_id == team_id
    stored = parsed.json()
    updated = await ctx.conn.execute(
        t.assignment_policies.update()
        .where(where)
        .values(policy=stored, updated_at=ctx.now)
        .returning(p.id)
    )
    if updated.first() is None:
        await ctx.conn.execute(
            t.assignment_policies.insert().values(
                workspace_id=workspace_id,
                inbox_id=inbox_id,
                team_id=team_id,
                policy=stored,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
        )
    await ctx.emit(
        AssignmentPolicyChanged(
            workspace_id=workspace_id, inbox_id=inbox_id, team_id=team_id, policy=stored
        )
    )
    scoped = await policy_of_scope(ctx.conn, inbox_id=inbox_id, team_id=team_id)
    if scoped is not None and scoped.policy.mode is not Mode.MANUAL:
        await _drain_policy(ctx, scoped)


async def do_delete_assignment_policy(
    ctx: ActionContext, *, inbox_id: int | None = None, team_id: int | None = None
) -> None:
    """Remove an inbox's or a team's policy (admins): its conversations
    wait for a person. Removing none is no error."""
    require_admin(ctx.actor)
    workspace_id = await _scope_workspace(ctx, inbox_id=inbox_id, team_id=team_id)
    p = t.assignment_policies.c
    where = p.inbox_id == inbox_id if inbox_id is not None else p.team_id == team_id
    gone = await ctx.conn.execute(t.assignment_policies.delete().where(where).returning(p.id))
    if gone.first() is not None:
        await ctx.emit(
            AssignmentPolicyChanged(
                workspace_id=workspace_id, inbox_id=inbox_id, team_id=team_id, policy=None
            )
        )


async def _scope_workspace(ctx: ActionContext, *, inbox_id: int | None, team_id: int | None) -> int:
    """The workspace of the inbox or team named (exactly one), in the
    actor's workspace; NotFound otherwise."""
    if (inbox_id is None) == (team_id is None):
        raise InvalidInput("name an inbox or a team", field="inbox_id")
    table = t.inboxes if inbox_id is not None else t.teams
    wanted = inbox_id if inbox_id is not None else team_id
    found = await ctx.conn.scalar(
        sa.select(table.c.workspace_id).where(
            table.c.id == wanted, table.c.workspace_id == ctx.actor.workspace_id
        )
    )
    if found is None:
        raise NotFound("no such inbox" if inbox_id is not None else "no such team")
    return int(found)


async def do_take_next(ctx: ActionContext) -> int | None:
    """ "Take next": the calling agent pulls the most urgent, longest
    waiting conversation from the queues of their inboxes' and teams'
    policies (manual ones too: that is what manual is for), within their
    capacity; the conversation's id, or None when nothing waits or they
    are full."""
    agent_id = ctx.actor.agent_id
    if agent_id is None:
        raise InvalidInput("only an agent can take a conversation", field="actor")
    await lock_agents(ctx.conn, [agent_id])
    for scoped in await policies_of_agents(ctx.conn, [agent_id]):
        if agent_id not in await member_ids(ctx.conn, scoped):
            continue
        [me] = await agents_with_load(
            ctx.conn, [agent_id], window_start=ctx.now - scoped.policy.fairness_window
        )
        # A pull is a person at the desk: present by definition, busy or not.
        me = dataclasses.replace(me, availability=Availability.ONLINE, connected=True)
        queued = {q.waiting.id: q for q in await queue(ctx.conn, scoped)}
        for waiting in queue_order(q.waiting for q in queued.values()):
            if pick_agent([me], scoped.policy, waiting.channel, ctx.now, pulled=True) is None:
                continue
            reason = f"taken from the queue of {scoped.scope}"
            await _assign_queued(ctx, queued[waiting.id], agent_id, scoped, reason)
            return waiting.id
    return None
