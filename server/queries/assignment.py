"""What assignment reads (server.actions.assignment): the policy that
governs a conversation, the agents it may pick from with their load, and
the queue a policy serves."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.assignment import Agent, Policy, Waiting, parse_policy
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.values import Availability, ConversationStatus
from server.queries.access import access_conversation, access_inbox, access_team
from server.queries.api_shapes import iso
from server.queries.records import AssignmentPolicyRow, load
from server.storage import tables as t

# How much of a queue one drain looks at: the oldest waiting are served
# first, and a drain runs again whenever capacity frees up.
QUEUE_WINDOW = 200


@dataclasses.dataclass(frozen=True)
class ScopedPolicy:
    """A policy with the inbox or team it belongs to."""

    id: int
    inbox_id: int | None
    team_id: int | None
    policy: Policy

    @property
    def scope(self) -> str:
        return f"team {self.team_id}" if self.team_id is not None else f"inbox {self.inbox_id}"


def _scoped(row: Any) -> ScopedPolicy | None:
    record = load(AssignmentPolicyRow, row)
    try:
        policy = parse_policy(record.policy)
    except InvalidInput:
        return None  # written by a newer version, say: assign nothing by it
    return ScopedPolicy(record.id, record.inbox_id, record.team_id, policy)


async def policy_for(
    conn: AsyncConnection, *, inbox_id: int, team_id: int | None
) -> ScopedPolicy | None:
    """The policy a conversation follows: its team's if the team has one,
    else its inbox's."""
    p = t.assignment_policies.c
    wanted = p.inbox_id == inbox_id
    if team_id is not None:
        wanted = sa.or_(wanted, p.team_id == team_id)
    rows = (await conn.execute(sa.select(t.assignment_policies).where(wanted))).all()
    by_team = [r for r in rows if r.team_id is not None]
    chosen = by_team[0] if by_team else (rows[0] if rows else None)
    return None if chosen is None else _scoped(chosen)


async def policy_of_scope(
    conn: AsyncConnection, *, inbox_id: int | None, team_id: int | None
) -> ScopedPolicy | None:
    """The policy of exactly this inbox or this team."""
    p = t.assignment_policies.c
    where = p.inbox_id == inbox_id if inbox_id is not None else p.team_id == team_id
    row = (await conn.execute(sa.select(t.assignment_policies).where(where))).first()
    return None if row is None else _scoped(row)


async def policies_of_agents(
    conn: AsyncConnection, agent_ids: Collection[int]
) -> list[ScopedPolicy]:
    """The policies of every inbox and team these agents belong to."""
    p, im, tm = t.assignment_policies.c, t.inbox_members.c, t.team_members.c
    rows = await conn.execute(
        sa.select(t.assignment_policies)
        .where(
            sa.or_(
                p.inbox_id.in_(sa.select(im.inbox_id).where(im.agent_id.in_(agent_ids))),
                p.team_id.in_(sa.select(tm.team_id).where(tm.agent_id.in_(agent_ids))),
            )
        )
        .order_by(p.id)
    )
    return [s for s in (_scoped(r) for r in rows) if s is not None]


async def member_ids(conn: AsyncConnection, scoped: ScopedPolicy) -> list[int]:
    """The active agents of the policy's inbox or team."""
    a = t.agents.c
    if scoped.team_id is not None:
        members = sa.select(t.team_members.c.agent_id).where(
            t.team_members.c.team_id == scoped.team_id
        )
    else:
        members = sa.select(t.inbox_members.c.agent_id).where(
            t.inbox_members.c.inbox_id == scoped.inbox_id
        )
    ids = await conn.scalars(
        sa.select(a.id).where(a.id.in_(members), a.active.is_(True)).order_by(a.id)
    )
    return list(ids)


async def lock_agents(conn: AsyncConnection, agent_ids: Sequence[int]) -> None:
    """Lock the agents' rows, in id order, until commit: two assignments
    counting one agent's load wait for each other (PostgreSQL; SQLite has
    one writer), so capacity holds across processes."""
    if agent_ids:
        await conn.execute(
            sa.select(t.agents.c.id)
            .where(t.agents.c.id.in_(sorted(agent_ids)))
            .order_by(t.agents.c.id)
            .with_for_update()
        )


async def agents_with_load(
    conn: AsyncConnection, agent_ids: Sequence[int], *, window_start: datetime
) -> list[Agent]:
    """Each agent as assignment sees them: availability, presence,
    capacity, open conversations (by channel) and assignments since
    `window_start`."""
    if not agent_ids:
        return []
    a, c, i, s = t.agents.c, t.conversations.c, t.inboxes.c, t.assignments.c
    open_rows = await conn.execute(
        sa.select(c.assignee_id, i.kind, sa.func.count())
        .join(t.inboxes, i.id == c.inbox_id)
        .where(c.assignee_id.in_(agent_ids), c.status == ConversationStatus.OPEN.value)
        .group_by(c.assignee_id, i.kind)
    )
    by_channel: dict[int, dict[str, int]] = {}
    for agent_id, kind, count in open_rows:
        by_channel.setdefault(agent_id, {})[kind] = int(count)
    recent = {
        agent_id: (int(count), last)
        for agent_id, count, last in await conn.execute(
            sa.select(s.agent_id, sa.func.count(), sa.func.max(s.at))
            .where(s.agent_id.in_(agent_ids), s.at > window_start)
            .group_by(s.agent_id)
        )
    }
    agents = []
    for row in await conn.execute(
        sa.select(a.id, a.availability, a.connected, a.left_at, a.capacity)
        .where(a.id.in_(agent_ids))
        .order_by(a.id)
    ):
        channels = by_channel.get(row.id, {})
        count, last = recent.get(row.id, (0, None))
        agents.append(
            Agent(
                id=row.id,
                availability=Availability(row.availability),
                connected=bool(row.connected),
                left_at=row.left_at,
                capacity=row.capacity,
                open_total=sum(channels.values()),
                open_by_channel=channels,
                assigned_in_window=count,
                last_assigned_at=last,
            )
        )
    return agents


def _queue_of(scoped: ScopedPolicy) -> sa.ColumnElement[bool]:
    """The open, unassigned conversations a policy serves."""
    c = t.conversations.c
    waiting = sa.and_(
        c.status == ConversationStatus.OPEN.value,
        c.assignee_id.is_(None),
        c.merged_into_id.is_(None),
    )
    if scoped.team_id is not None:
        return sa.and_(waiting, c.team_id == scoped.team_id)
    # An inbox's policy serves its conversations without a team of their
    # own policy (those follow the team's).
    team_policies = sa.select(t.assignment_policies.c.team_id).where(
        t.assignment_policies.c.team_id.is_not(None)
    )
    return sa.and_(
        waiting,
        c.inbox_id == scoped.inbox_id,
        sa.or_(c.team_id.is_(None), c.team_id.not_in(team_policies)),
    )


@dataclasses.dataclass(frozen=True)
class Queued:
    """A waiting conversation with what an assignment of it writes."""

    waiting: Waiting
    workspace_id: int
    inbox_id: int
    team_id: int | None


async def queue(conn: AsyncConnection, scoped: ScopedPolicy) -> list[Queued]:
    """The policy's waiting conversations, oldest first, locked; rows
    another transaction holds are skipped (it is assigning them)."""
    c, i = t.conversations.c, t.inboxes.c
    rows = await conn.execute(
        sa.select(
            c.id,
            c.workspace_id,
            c.inbox_id,
            c.team_id,
            i.kind,
            c.priority,
            c.waiting_since,
            c.created_at,
        )
        .join(t.inboxes, i.id == c.inbox_id)
        .where(_queue_of(scoped))
        .order_by(sa.func.coalesce(c.waiting_since, c.created_at), c.id)
        .limit(QUEUE_WINDOW)
        .with_for_update(skip_locked=True, of=t.conversations)
    )
    return [
        Queued(
            Waiting(
                id=row.id,
                channel=row.kind,
                priority=row.priority,
                waiting_since=row.waiting_since or row.created_at,
            ),
            row.workspace_id,
            row.inbox_id,
            row.team_id,
        )
        for row in rows
    ]


# A conversation's assignment record is read newest first and bounded:
# one line per assignment, and a conversation is rarely assigned more
# than a handful of times.
MAX_ASSIGNMENTS = 200
# How server.actions.assignment words a reason: "<mode> in inbox 3".
_SCOPE_IN_REASON = re.compile(r" in (inbox|team) (\d+)$")


async def assignment_policy_view(
    conn: AsyncConnection, actor: Actor, *, inbox_id: int | None = None, team_id: int | None = None
) -> JsonValue:
    """The stored policy of an inbox (for its members and admins) or a
    team (for every agent), or None when it has none; NotFound when the
    caller may not see the inbox or team."""
    if inbox_id is not None:
        await access_inbox(conn, actor, inbox_id)
    elif team_id is not None:
        await access_team(conn, actor, team_id)
    else:
        raise InvalidInput("name an inbox or a team", field="inbox_id")
    p = t.assignment_policies.c
    where = p.inbox_id == inbox_id if inbox_id is not None else p.team_id == team_id
    stored: JsonValue = await conn.scalar(sa.select(p.policy).where(where))
    return stored


async def conversation_assignments(
    conn: AsyncConnection, actor: Actor, conversation_id: int
) -> dict[str, JsonValue]:
    """Who a conversation was assigned to, newest first, and why — the
    lines it shows ("assigned to Ann by round robin in inbox Website").
    The reason names the inbox or team as it is called now."""
    await access_conversation(conn, actor, conversation_id)
    s, a = t.assignments.c, t.agents.c
    rows = (
        await conn.execute(
            sa.select(s.id, s.agent_id, a.name.label("agent_name"), s.policy_id, s.reason, s.at)
            .join(t.agents, a.id == s.agent_id)
            .where(s.conversation_id == conversation_id)
            .order_by(s.at.desc(), s.id.desc())
            .limit(MAX_ASSIGNMENTS)
        )
    ).all()
    names = await _scope_names(conn, actor, [r.reason for r in rows])
    return {
        "items": [
            {
                "id": r.id,
                "agent_id": r.agent_id,
                "agent_name": r.agent_name,
                "policy_id": r.policy_id,
                "reason": _named(r.reason, names),
                "at": iso(r.at),
            }
            for r in rows
        ]
    }


async def _scope_names(
    conn: AsyncConnection, actor: Actor, reasons: Sequence[str]
) -> dict[tuple[str, int], str]:
    """The current names of the inboxes and teams the reasons mention, in
    the actor's workspace."""
    wanted: dict[str, set[int]] = {"inbox": set(), "team": set()}
    for reason in reasons:
        found = _SCOPE_IN_REASON.search(reason)
        if found is not None:
            wanted[found[1]].add(int(found[2]))
    names: dict[tuple[str, int], str] = {}
    for kind, table in (("inbox", t.inboxes), ("team", t.teams)):
        if wanted[kind]:
            rows = await conn.execute(
                sa.select(table.c.id, table.c.name).where(
                    table.c.id.in_(wanted[kind]), table.c.workspace_id == actor.workspace_id
                )
            )
            names.update({(kind, row.id): row.name for row in rows})
    return names


def _named(reason: str, names: dict[tuple[str, int], str]) -> str:
    found = _SCOPE_IN_REASON.search(reason)
    if found is None or (found[1], int(found[2])) not in names:
        return reason
    return f"{reason[: found.start()]} in {found[1]} {names[(found[1], int(found[2]))]}"
