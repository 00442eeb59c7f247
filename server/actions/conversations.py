"""Conversations: opening, status, priority, labels, assignment."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.actions.snooze_jobs import set_snooze_wake
from server.domain.conversations import ConversationState, clean_labels, status_change
from server.domain.errors import InvalidInput
from server.domain.events import (
    ConversationAssigned,
    ConversationCreated,
    ConversationLabelsChanged,
    ConversationPriorityChanged,
    ConversationStatusChanged,
)
from server.domain.values import ConversationStatus, Priority
from server.queries.access import access_contact, access_conversation, access_inbox
from server.queries.records import Conversation
from server.storage import tables as t


def state_of(row: Conversation) -> ConversationState:
    return ConversationState(
        status=ConversationStatus(row.status),
        snoozed_until=row.snoozed_until,
        first_reply_at=row.first_reply_at,
        waiting_since=row.waiting_since,
        resolved_at=row.resolved_at,
    )


def status_changed(
    row: Conversation,
    status: ConversationStatus,
    snoozed_until: datetime | None,
    *,
    reason: str | None = None,
) -> ConversationStatusChanged:
    """The event of changing the conversation `row`, as it was, to
    `status` (and `snoozed_until`)."""
    return ConversationStatusChanged(
        workspace_id=row.workspace_id,
        conversation_id=row.id,
        inbox_id=row.inbox_id,
        old_status=row.status,
        status=status.value,
        snoozed_until=snoozed_until,
        reason=reason,
    )


async def do_create_conversation(
    ctx: ActionContext,
    *,
    inbox_id: int,
    contact_id: int,
    subject: str | None = None,
    status: ConversationStatus = ConversationStatus.OPEN,
) -> int:
    inbox = await access_inbox(ctx.conn, ctx.actor, inbox_id)
    await access_contact(ctx.conn, ctx.actor, contact_id)
    return await open_conversation(
        ctx,
        workspace_id=inbox.workspace_id,
        inbox_id=inbox_id,
        contact_id=contact_id,
        subject=subject,
        status=status,
    )


async def open_conversation(
    ctx: ActionContext,
    *,
    workspace_id: int,
    inbox_id: int,
    contact_id: int,
    subject: str | None,
    status: ConversationStatus = ConversationStatus.OPEN,
    origin_contact_id: int | None = None,
) -> int:
    """Insert a conversation (ids already checked by the caller), opened
    for `origin_contact_id` (default: `contact_id`; see
    server.queries.visitors.visitor_conversation_scope)."""
    values = new_conversation_row(
        workspace_id=workspace_id,
        inbox_id=inbox_id,
        contact_id=contact_id,
        subject=subject,
        status=status,
        origin_contact_id=origin_contact_id,
        now=ctx.now,
    )
    conversation_id: int = (
        await ctx.conn.execute(
            t.conversations.insert().values(**values).returning(t.conversations.c.id)
        )
    ).scalar_one()
    await ctx.emit(conversation_created(values, conversation_id))
    return conversation_id


def new_conversation_row(
    *,
    workspace_id: int,
    inbox_id: int,
    contact_id: int,
    subject: str | None,
    status: ConversationStatus,
    origin_contact_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """A new conversation's row, without messages yet (`last_seq` 0)."""
    return {
        "workspace_id": workspace_id,
        "inbox_id": inbox_id,
        "contact_id": contact_id,
        "origin_contact_id": contact_id if origin_contact_id is None else origin_contact_id,
        "subject": subject,
        "status": status.value,
        "priority": Priority.NONE.value,
        "last_seq": 0,
        "created_at": now,
        "last_activity_at": now,
    }


def conversation_created(values: Mapping[str, Any], conversation_id: int) -> ConversationCreated:
    """The event of the conversation inserted from `values`."""
    return ConversationCreated(
        workspace_id=values["workspace_id"],
        conversation_id=conversation_id,
        inbox_id=values["inbox_id"],
        contact_id=values["contact_id"],
        status=values["status"],
        subject=values["subject"],
        origin_contact_id=values["origin_contact_id"],
    )


async def do_change_conversation_status(
    ctx: ActionContext,
    *,
    conversation_id: int,
    status: ConversationStatus,
    snoozed_until: datetime | None = None,
) -> None:
    """Open, set pending, snooze until a time, or resolve."""
    row = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    change = status_change(state_of(row), status, snoozed_until=snoozed_until, now=ctx.now)
    if change is None:
        return
    await _update(ctx, conversation_id, change.columns())
    await set_snooze_wake(
        ctx,
        workspace_id=row.workspace_id,
        conversation_id=conversation_id,
        until=change.snoozed_until,
    )
    await ctx.emit(status_changed(row, change.status, change.snoozed_until))


async def do_set_conversation_priority(
    ctx: ActionContext, *, conversation_id: int, priority: Priority
) -> None:
    row = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    if row.priority == priority.value:
        return
    await _update(ctx, conversation_id, {"priority": priority.value})
    await ctx.emit(
        ConversationPriorityChanged(
            workspace_id=row.workspace_id,
            conversation_id=conversation_id,
            inbox_id=row.inbox_id,
            priority=priority.value,
        )
    )


async def do_change_conversation_labels(
    ctx: ActionContext,
    *,
    conversation_id: int,
    add: list[str] | None = None,
    remove: list[str] | None = None,
    replace: list[str] | None = None,
) -> list[str]:
    """Add and remove labels, or replace the whole set. Returns the new set."""
    row = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    current = set(
        (
            await ctx.conn.execute(
                sa.select(t.conversation_labels.c.label).where(
                    t.conversation_labels.c.conversation_id == conversation_id
                )
            )
        ).scalars()
    )
    if replace is not None:
        wanted = set(clean_labels(replace, field="labels"))
    else:
        wanted = (current | set(clean_labels(add or [], field="add"))) - set(
            clean_labels(remove or [], field="remove")
        )
    clean_labels(sorted(wanted))  # enforces the cap on the resulting set
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if not added and not removed:
        return sorted(current)
    if removed:
        await ctx.conn.execute(
            t.conversation_labels.delete().where(
                t.conversation_labels.c.conversation_id == conversation_id,
                t.conversation_labels.c.label.in_(removed),
            )
        )
    if added:
        await ctx.conn.execute(
            t.conversation_labels.insert(),
            [
                {
                    "conversation_id": conversation_id,
                    "label": label,
                    "workspace_id": row.workspace_id,
                }
                for label in added
            ],
        )
    await ctx.emit(
        ConversationLabelsChanged(
            workspace_id=row.workspace_id,
            conversation_id=conversation_id,
            inbox_id=row.inbox_id,
            labels=sorted(wanted),
            added=added,
            removed=removed,
        )
    )
    return sorted(wanted)


class _Unchanged(enum.Enum):
    """The default of a field that may be set to None: leave it as it is."""

    UNCHANGED = enum.auto()


_UNCHANGED = _Unchanged.UNCHANGED


async def do_assign_conversation(
    ctx: ActionContext,
    *,
    conversation_id: int,
    assignee_id: int | _Unchanged | None = _UNCHANGED,
    team_id: int | _Unchanged | None = _UNCHANGED,
) -> None:
    """Set the assignee and/or the team; None unassigns. The assignee must
    be an active agent who can see the conversation's inbox."""
    row = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    changes: dict[str, int | None] = {}
    if assignee_id is not _UNCHANGED and assignee_id != row.assignee_id:
        if assignee_id is not None:
            await _check_assignee(ctx, row, assignee_id)
        changes["assignee_id"] = assignee_id
    if team_id is not _UNCHANGED and team_id != row.team_id:
        if team_id is not None:
            found = await ctx.conn.scalar(
                sa.select(t.teams.c.id).where(
                    t.teams.c.id == team_id, t.teams.c.workspace_id == row.workspace_id
                )
            )
            if found is None:
                raise InvalidInput("no such team", field="team_id")
        changes["team_id"] = team_id
    if not changes:
        return
    await _update(ctx, conversation_id, changes)
    await ctx.emit(
        ConversationAssigned(
            workspace_id=row.workspace_id,
            conversation_id=conversation_id,
            inbox_id=row.inbox_id,
            assignee_id=changes.get("assignee_id", row.assignee_id),
            team_id=changes.get("team_id", row.team_id),
        )
    )


async def _check_assignee(ctx: ActionContext, conversation: Conversation, agent_id: int) -> None:
    agent = (
        await ctx.conn.execute(
            sa.select(t.agents.c.role, t.agents.c.active).where(
                t.agents.c.id == agent_id, t.agents.c.workspace_id == conversation.workspace_id
            )
        )
    ).first()
    if agent is None or not agent.active:
        raise InvalidInput("no such active agent", field="assignee_id")
    if agent.role != "admin":
        member = await ctx.conn.scalar(
            sa.select(t.inbox_members.c.agent_id).where(
                t.inbox_members.c.inbox_id == conversation.inbox_id,
                t.inbox_members.c.agent_id == agent_id,
            )
        )
        if member is None:
            raise InvalidInput("this agent is not a member of the inbox", field="assignee_id")


async def _update(ctx: ActionContext, conversation_id: int, values: Mapping[str, object]) -> None:
    await ctx.conn.execute(
        t.conversations.update().where(t.conversations.c.id == conversation_id).values(**values)
    )


async def do_update_conversation(
    ctx: ActionContext,
    *,
    conversation_id: int,
    status: ConversationStatus | None = None,
    snoozed_until: datetime | None = None,
    priority: Priority | None = None,
    labels: list[str] | None = None,
    add_labels: list[str] | None = None,
    remove_labels: list[str] | None = None,
    assignee_id: int | _Unchanged | None = _UNCHANGED,
    team_id: int | _Unchanged | None = _UNCHANGED,
) -> None:
    """Several changes in one transaction: all of them apply or none does.
    Each part still emits its own event, in this order: status, priority,
    labels, assignment."""
    if status is not None:
        await do_change_conversation_status(
            ctx, conversation_id=conversation_id, status=status, snoozed_until=snoozed_until
        )
    elif snoozed_until is not None:
        raise InvalidInput("snoozed_until goes with status", field="status")
    if priority is not None:
        await do_set_conversation_priority(ctx, conversation_id=conversation_id, priority=priority)
    if labels is not None or add_labels is not None or remove_labels is not None:
        if labels is not None and (add_labels is not None or remove_labels is not None):
            raise InvalidInput("give labels, or add_labels/remove_labels, not both", field="labels")
        await do_change_conversation_labels(
            ctx,
            conversation_id=conversation_id,
            add=add_labels,
            remove=remove_labels,
            replace=labels,
        )
    if assignee_id is not _UNCHANGED or team_id is not _UNCHANGED:
        await do_assign_conversation(
            ctx, conversation_id=conversation_id, assignee_id=assignee_id, team_id=team_id
        )
