"""Routing conversations by the workspace's rules, in the transaction of
what opened the conversation or brought the customer's message (so a
conversation is never seen unrouted, and a rollback takes the routing
with it).

`perform` (server.actions.context) calls `route_conversations(ctx)` after
the action, before the touchpoint triggers and before the events are
appended. It looks at the events the action emitted (`ctx.pending`):
a `conversation.created` routes that conversation (trigger
"conversation.created", with the text of an inbound message emitted in
the same transaction: a customer's first message opens the conversation
it is in); a `message.created` that is inbound, public and from the
contact routes its conversation (trigger "message.created"). Agents'
replies, notes, bots' messages and mails a program wrote (auto-replies)
route nothing. Each conversation is
routed once per transaction.

`do_route_conversation` reads a snapshot (server.domain.routing_rules.
RoutingFacts), lets the pure `plan_routing` decide, then writes the
changes and their record: a routing_decisions row and a
`conversation.routed` event per rule that changed something, then the
usual conversation.priority_changed / labels_changed / assigned events
with the result. It writes directly rather than through
do_assign_conversation & co.: routing acts for the workspace, whoever
the actor is (a widget visitor's message routes too), and the checks
those make on the actor are the rules' own here (an assignee must be an
active agent who may see the inbox, else the action is skipped).

It costs nothing for actions that emit neither event; otherwise one
indexed read of the enabled rules, and nothing more when there are none.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import sqlalchemy as sa

from server.actions.action_context import ActionContext
from server.domain.conversations import MAX_LABELS
from server.domain.errors import InvalidInput
from server.domain.events import (
    ConversationAssigned,
    ConversationLabelsChanged,
    ConversationPriorityChanged,
    ConversationRouted,
)
from server.domain.json_types import JsonObject
from server.domain.languages import detect_language
from server.domain.routing_rules import (
    Plan,
    RoutingFacts,
    Rule,
    Trigger,
    inbox_open,
    plan_routing,
    segments_named,
)
from server.domain.values import Direction, Role, SenderKind
from server.queries.records import Conversation, Segment, load, load_or_none
from server.queries.routing_rules import routing_mode, rule_of, rule_rows
from server.queries.segments import contact_in_segment, stored_filter
from server.storage import tables as t

log = logging.getLogger(__name__)

RELEVANT = frozenset({Trigger.CONVERSATION_CREATED.value, Trigger.MESSAGE_CREATED.value})


@dataclasses.dataclass
class _Target:
    trigger: Trigger
    message_id: int | None = None
    text: str | None = None


def is_customer_message(payload: JsonObject) -> bool:
    """Whether a `message.created` payload is the customer writing: inbound,
    public, from the contact, and not a mail that says a program wrote it
    (RFC 3834: an out-of-office or a list mail, recorded by inbound email
    as `email.auto`), which must not re-route a conversation."""
    email = payload.get("email")
    auto = email.get("auto") if isinstance(email, Mapping) else None
    return (
        payload.get("direction") == Direction.INBOUND.value
        and payload.get("sender_kind") == SenderKind.CONTACT.value
        and not payload.get("private")
        and auto in (None, "none")
    )


async def route_conversations(ctx: ActionContext) -> None:
    """Route the conversations this transaction opened or brought a
    customer's message to (see the module docstring)."""
    if not any(p.type in RELEVANT for p in ctx.pending):
        return
    targets: dict[int, _Target] = {}
    # Only this workspace's events: an action acts within its actor's.
    for p in [p for p in ctx.pending if p.workspace_id == ctx.actor.workspace_id]:
        conversation_id = p.conversation_id
        if conversation_id is None:
            continue
        if p.type == Trigger.CONVERSATION_CREATED.value:
            targets.setdefault(conversation_id, _Target(Trigger.CONVERSATION_CREATED))
        elif p.type == Trigger.MESSAGE_CREATED.value and is_customer_message(p.payload):
            target = targets.setdefault(conversation_id, _Target(Trigger.MESSAGE_CREATED))
            message_id, text = p.payload.get("message_id"), p.payload.get("text")
            target.message_id = message_id if isinstance(message_id, int) else None
            target.text = text if isinstance(text, str) else None
    if not targets:
        return
    rules = await _enabled_rules(ctx)
    if not rules:
        return
    for conversation_id, target in targets.items():
        await do_route_conversation(
            ctx,
            conversation_id=conversation_id,
            trigger=target.trigger,
            message_id=target.message_id,
            text=target.text,
            rules=rules,
        )


async def _enabled_rules(ctx: ActionContext) -> list[Rule]:
    rules: list[Rule] = []
    for row in await rule_rows(ctx.conn, ctx.actor.workspace_id, enabled_only=True):
        try:
            rules.append(rule_of(row))
        except InvalidInput as exc:
            # Stored rules were checked when saved; one that no longer
            # reads (a tightened limit) is passed over, not fatal.
            log.warning("routing rule %s unreadable, skipped: %s", row.id, exc.message)
    return rules


async def do_route_conversation(
    ctx: ActionContext,
    *,
    conversation_id: int,
    trigger: Trigger,
    message_id: int | None = None,
    text: str | None = None,
    rules: list[Rule] | None = None,
) -> Plan:
    """Apply the workspace's enabled rules to a conversation of the
    actor's workspace; returns what was decided (nothing, when no rule
    changed anything)."""
    rules = await _enabled_rules(ctx) if rules is None else rules
    c = t.conversations.c
    row = load_or_none(
        Conversation,
        (
            await ctx.conn.execute(
                sa.select(t.conversations)
                .where(c.id == conversation_id, c.workspace_id == ctx.actor.workspace_id)
                .with_for_update(of=t.conversations, key_share=True)
            )
        ).first(),
    )
    if row is None or not rules:
        return Plan()
    facts = await _facts(ctx, row, rules, trigger, text)
    plan = plan_routing(rules, await routing_mode(ctx.conn, row.workspace_id), facts)
    if plan.decisions:
        await _apply(ctx, row, facts, plan, trigger=trigger, message_id=message_id)
    return plan


async def _facts(
    ctx: ActionContext, row: Conversation, rules: list[Rule], trigger: Trigger, text: str | None
) -> RoutingFacts:
    inbox = (
        await ctx.conn.execute(
            sa.select(t.inboxes.c.kind, t.inboxes.c.settings).where(t.inboxes.c.id == row.inbox_id)
        )
    ).one()
    attributes = await ctx.conn.scalar(
        sa.select(t.contacts.c.attributes).where(t.contacts.c.id == row.contact_id)
    )
    labels = await ctx.conn.scalars(
        sa.select(t.conversation_labels.c.label).where(
            t.conversation_labels.c.conversation_id == row.id
        )
    )
    return RoutingFacts(
        trigger=trigger,
        inbox_id=row.inbox_id,
        channel=inbox.kind,
        contact_attributes=attributes if isinstance(attributes, dict) else {},
        segment_ids=await _segments_of(ctx, row, segments_named(rules)),
        text=text,
        language=detect_language(text) if text else None,
        open_now=inbox_open(inbox.settings if isinstance(inbox.settings, dict) else None, ctx.now),
        priority=row.priority,
        labels=frozenset(labels),
        team_id=row.team_id,
        assignee_id=row.assignee_id,
        teams=await _teams(ctx, row, rules),
        assignable=await _assignable(ctx, row, rules),
    )


async def _segments_of(
    ctx: ActionContext, row: Conversation, named: frozenset[int]
) -> frozenset[int]:
    """Of the segments `named`, those the contact is in now (evaluated
    live, not as of the segment's last refresh)."""
    if not named:
        return frozenset()
    s = t.segments.c
    segments = await ctx.conn.execute(
        sa.select(t.segments).where(s.id.in_(named), s.workspace_id == row.workspace_id)
    )
    inside: set[int] = set()
    for found in segments:
        segment = load(Segment, found)
        if await contact_in_segment(
            ctx.conn, row.workspace_id, stored_filter(segment), row.contact_id, ctx.now
        ):
            inside.add(segment.id)
    return frozenset(inside)


async def _teams(ctx: ActionContext, row: Conversation, rules: list[Rule]) -> frozenset[int]:
    wanted = {r.spec.actions.team_id for r in rules} - {None}
    if not wanted:
        return frozenset()
    found = await ctx.conn.scalars(
        sa.select(t.teams.c.id).where(
            t.teams.c.id.in_(wanted), t.teams.c.workspace_id == row.workspace_id
        )
    )
    return frozenset(found)


async def _assignable(ctx: ActionContext, row: Conversation, rules: list[Rule]) -> frozenset[int]:
    """The rules' assignees who are active agents of the workspace and may
    see the conversation's inbox (admins, or its members)."""
    wanted = {r.spec.actions.assignee_id for r in rules} - {None}
    if not wanted:
        return frozenset()
    a, m = t.agents.c, t.inbox_members.c
    member = sa.exists().where(m.inbox_id == row.inbox_id, m.agent_id == a.id)
    found = await ctx.conn.scalars(
        sa.select(a.id).where(
            a.id.in_(wanted),
            a.workspace_id == row.workspace_id,
            a.active.is_(True),
            sa.or_(a.role == Role.ADMIN.value, member),
        )
    )
    return frozenset(found)


async def _apply(
    ctx: ActionContext,
    row: Conversation,
    facts: RoutingFacts,
    plan: Plan,
    *,
    trigger: Trigger,
    message_id: int | None,
) -> None:
    for decision in plan.decisions:
        decision_id: int = (
            await ctx.conn.execute(
                t.routing_decisions.insert()
                .values(
                    workspace_id=row.workspace_id,
                    conversation_id=row.id,
                    rule_id=decision.rule_id,
                    rule_name=decision.rule_name,
                    trigger=trigger.value,
                    message_id=message_id,
                    changes=decision.changes,
                    skipped=list(decision.skipped),
                    created_at=ctx.now,
                )
                .returning(t.routing_decisions.c.id)
            )
        ).scalar_one()
        await ctx.emit(
            ConversationRouted(
                workspace_id=row.workspace_id,
                conversation_id=row.id,
                inbox_id=row.inbox_id,
                routing_decision_id=decision_id,
                routing_rule_id=decision.rule_id,
                rule_name=decision.rule_name,
                trigger=trigger.value,
                message_id=message_id,
                changes=decision.changes,
                skipped=list(decision.skipped),
            )
        )
    columns: dict[str, object] = {}
    if plan.priority is not None:
        columns["priority"] = plan.priority.value
    if plan.team_id is not None:
        columns["team_id"] = plan.team_id
    if plan.assignee_id is not None:
        columns["assignee_id"] = plan.assignee_id
    if columns:
        await ctx.conn.execute(
            t.conversations.update().where(t.conversations.c.id == row.id).values(**columns)
        )
    if plan.priority is not None:
        await ctx.emit(
            ConversationPriorityChanged(
                workspace_id=row.workspace_id,
                conversation_id=row.id,
                inbox_id=row.inbox_id,
                priority=plan.priority.value,
            )
        )
    await _add_labels(ctx, row, facts, list(plan.add_labels))
    if plan.team_id is not None or plan.assignee_id is not None:
        await ctx.emit(
            ConversationAssigned(
                workspace_id=row.workspace_id,
                conversation_id=row.id,
                inbox_id=row.inbox_id,
                assignee_id=plan.assignee_id if plan.assignee_id is not None else row.assignee_id,
                team_id=plan.team_id if plan.team_id is not None else row.team_id,
            )
        )


async def _add_labels(
    ctx: ActionContext, row: Conversation, facts: RoutingFacts, added: list[str]
) -> None:
    # A conversation carries at most MAX_LABELS; routing adds what fits.
    added = added[: max(0, MAX_LABELS - len(facts.labels))]
    if not added:
        return
    await ctx.conn.execute(
        t.conversation_labels.insert(),
        [
            {"conversation_id": row.id, "label": label, "workspace_id": row.workspace_id}
            for label in added
        ],
    )
    await ctx.emit(
        ConversationLabelsChanged(
            workspace_id=row.workspace_id,
            conversation_id=row.id,
            inbox_id=row.inbox_id,
            labels=sorted(facts.labels | set(added)),
            added=added,
            removed=[],
        )
    )
