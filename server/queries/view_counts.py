"""How many conversations each sidebar view holds (F4): Mine, Unassigned,
All, per inbox, per team and per label — for what the agent may see —
and each of the agent's saved filters.

Two grouped scans of the agent's visible conversations in the given
statuses instead of one count query per view: the sidebar asks for all
of them at once and after every change."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.json_types import JsonValue
from server.queries.access import inbox_filter, visible_inbox_ids
from server.queries.records import load
from server.queries.saved_filters import saved_filter_counts
from server.storage import tables as t


@dataclasses.dataclass(frozen=True, slots=True)
class _Group:
    """How many conversations share an inbox, a team and an assignee."""

    inbox_id: int
    team_id: int | None
    assignee_id: int | None
    n: int


async def conversation_counts(
    conn: AsyncConnection, actor: Actor, statuses: list[str]
) -> dict[str, JsonValue]:
    c = t.conversations.c
    visible = await visible_inbox_ids(conn, actor)
    scope = (
        c.workspace_id == actor.workspace_id,
        inbox_filter(c.inbox_id, visible),
        c.status.in_(statuses),
    )
    by_group: sa.Select[Any] = (
        sa.select(c.inbox_id, c.team_id, c.assignee_id, sa.func.count().label("n"))
        .where(*scope)
        .group_by(c.inbox_id, c.team_id, c.assignee_id)
    )
    groups = [load(_Group, r) for r in await conn.execute(by_group)]
    inboxes: Counter[int] = Counter()
    teams: Counter[int] = Counter()
    mine = unassigned = everything = 0
    for row in groups:
        everything += row.n
        inboxes[row.inbox_id] += row.n
        if row.team_id is not None:
            teams[row.team_id] += row.n
        if row.assignee_id is None:
            unassigned += row.n
        elif row.assignee_id == actor.agent_id:
            mine += row.n
    cl = t.conversation_labels.c
    labels: dict[str, int] = {
        r.label: r.n
        for r in await conn.execute(
            sa.select(cl.label, sa.func.count().label("n"))
            .join(t.conversations, c.id == cl.conversation_id)
            .where(*scope)
            .group_by(cl.label)
        )
    }
    return {
        "statuses": statuses,
        "mine": mine,
        "unassigned": unassigned,
        "all": everything,
        # JSON object keys are strings; ids stay numbers in the values' keys.
        "inboxes": {str(k): v for k, v in sorted(inboxes.items())},
        "teams": {str(k): v for k, v in sorted(teams.items())},
        "labels": dict(sorted(labels.items())),
        # The asker's saved filters count as their own list would: their
        # own statuses, not the ones asked for here.
        "saved_filters": await saved_filter_counts(conn, actor),
    }
