"""The conditions behind GET /conversations' filters, in one place.

The conversation list and the saved-filter counts of the sidebar
(server.queries.saved_filters) both build their WHERE clauses here, so a
saved filter's count is the length of the list it opens: same access
rules, same meaning of every filter.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.domain.actors import Actor
from server.queries.access import inbox_filter
from server.storage import tables as t


def conversation_scope(actor: Actor, visible: list[int] | None) -> list[sa.ColumnElement[bool]]:
    """What `actor` may list at all: its workspace, and the inboxes
    `visible` (server.queries.access.visible_inbox_ids; None: all)."""
    c = t.conversations.c
    return [c.workspace_id == actor.workspace_id, inbox_filter(c.inbox_id, visible)]


def conversation_filters(
    actor: Actor,
    *,
    status: list[str] | None = None,
    inbox_id: int | None = None,
    team_id: int | None = None,
    assignee_id: int | None = None,
    contact_id: int | None = None,
    label: str | None = None,
    unassigned: bool = False,
    mine: bool = False,
) -> list[sa.ColumnElement[bool]]:
    """The list's filters, combined with AND by the caller. `mine` is the
    conversations assigned to the asking agent; `unassigned` those assigned
    to nobody."""
    c = t.conversations.c
    out: list[sa.ColumnElement[bool]] = []
    if status:
        out.append(c.status.in_(status))
    if inbox_id is not None:
        out.append(c.inbox_id == inbox_id)
    if team_id is not None:
        out.append(c.team_id == team_id)
    if assignee_id is not None:
        out.append(c.assignee_id == assignee_id)
    if contact_id is not None:
        out.append(c.contact_id == contact_id)
    if unassigned:
        out.append(c.assignee_id.is_(None))
    if mine:
        out.append(c.assignee_id == actor.agent_id)
    if label is not None:
        out.append(
            sa.exists().where(
                t.conversation_labels.c.conversation_id == c.id,
                t.conversation_labels.c.label == label.strip().lower(),
            )
        )
    return out
