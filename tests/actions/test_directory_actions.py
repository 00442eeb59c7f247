"""The directory's actions — agents, sessions, teams, inboxes, API tokens:
the rows each writes and the exact events each emits, and that a refused
action writes and emits nothing."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.agents import do_change_password, do_create_agent, do_update_agent
from server.actions.context import perform
from server.actions.conversations import do_assign_conversation
from server.actions.inboxes import (
    do_add_inbox_member,
    do_create_inbox,
    do_remove_inbox_member,
    do_update_inbox,
)
from server.actions.sessions import (
    NewSession,
    do_end_all_sessions,
    do_end_session,
    do_start_session,
)
from server.actions.teams import (
    do_add_team_member,
    do_create_team,
    do_delete_team,
    do_remove_team_member,
    do_update_team,
)
from server.actions.tokens import do_create_api_token, do_revoke_api_token
from server.clock import FrozenClock
from server.domain.actors import Actor, ActorKind
from server.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from server.domain.values import Availability, InboxKind, Role
from server.queries.auth import actor_for_api_token, actor_for_session
from server.runtime import Runtime
from server.storage import tables as t
from server.storage.secrets import hash_token, verify_password
from tests.support import (
    PASSWORD,
    T0,
    Workspace,
    events_since,
    last_event_id,
    seed_workspace,
)

LIFETIME = timedelta(days=14)
NEW_PASSWORD = "a different long password"


def frozen(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


def by_session(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """`session.ended` events in session order. server.actions.sessions.end_sessions
    selects the sessions without ORDER BY, so the order it emits them in is
    the database's choice; everything else about the list is compared exactly."""
    return sorted(events, key=lambda e: (e[0] != "session.ended", e[1].get("session_id", 0)))


async def select_rows(runtime: Runtime, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    async with runtime.db.read() as conn:
        rows = await conn.execute(sa.select(table).where(*where))
        return [dict(r._mapping) for r in rows]


async def select_one(runtime: Runtime, table: sa.Table, *where: Any) -> dict[str, Any]:
    rows = await select_rows(runtime, table, *where)
    assert len(rows) == 1, rows
    return rows[0]


async def count(runtime: Runtime, table: sa.Table) -> int:
    async with runtime.db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def snapshot(runtime: Runtime) -> dict[str, int]:
    """Row counts of every table an action here writes, and the event log."""
    tables = [
        t.agents,
        t.sessions,
        t.api_tokens,
        t.teams,
        t.team_members,
        t.inboxes,
        t.inbox_members,
        t.events,
    ]
    return {table.name: await count(runtime, table) for table in tables}


async def start_session(runtime: Runtime, email: str, password: str = PASSWORD) -> NewSession:
    return await perform(
        runtime,
        Actor(kind=ActorKind.SYSTEM, workspace_id=0),
        do_start_session,
        email=email,
        password=password,
        lifetime=LIFETIME,
    )


def session_actor(session: NewSession, role: Role = Role.AGENT) -> Actor:
    return Actor(
        kind=ActorKind.AGENT,
        workspace_id=session.workspace_id,
        agent_id=session.agent_id,
        role=role,
        session_id=session.session_id,
    )


async def session_ids(runtime: Runtime, agent_id: int) -> set[int]:
    rows = await select_rows(runtime, t.sessions, t.sessions.c.agent_id == agent_id)
    return {r["id"] for r in rows}


# -- agents -----------------------------------------------------------------


async def test_create_agent_writes_the_agent_and_emits_agent_created(
    runtime: Runtime, ws: Workspace
) -> None:
    since = await last_event_id(runtime)
    agent_id = await perform(
        runtime,
        ws.admin,
        do_create_agent,
        email="  New.Person@Acme.TEST ",
        name="New Person",
        password=PASSWORD,
        role=Role.ADMIN,
        capacity=5,
    )
    row = await select_one(runtime, t.agents, t.agents.c.id == agent_id)
    assert {k: v for k, v in row.items() if k != "password_hash"} == {
        "id": agent_id,
        "workspace_id": ws.id,
        "email": "new.person@acme.test",
        "name": "New Person",
        "role": "admin",
        "availability": "offline",
        "capacity": 5,
        "active": True,
        "created_at": T0,
        "password_changed_at": T0,
        "connected": False,
        "left_at": None,
    }
    assert row["password_hash"] != PASSWORD
    assert verify_password(row["password_hash"], PASSWORD)
    assert await events_since(runtime, since) == [
        (
            "agent.created",
            {
                "workspace_id": ws.id,
                "agent_id": agent_id,
                "email": "new.person@acme.test",
                "name": "New Person",
                "role": "admin",
            },
        )
    ]


async def test_create_agent_defaults_to_the_agent_role(runtime: Runtime, ws: Workspace) -> None:
    agent_id = await perform(
        runtime, ws.admin, do_create_agent, email="plain@acme.test", name="P", password=PASSWORD
    )
    row = await select_one(runtime, t.agents, t.agents.c.id == agent_id)
    assert (row["role"], row["capacity"]) == ("agent", None)


@pytest.mark.parametrize(
    ("email", "password", "error", "field"),
    [
        ("AGENT@acme.test", PASSWORD, Conflict, "email"),  # taken, in any case
        ("fresh@acme.test", "short", InvalidInput, "password"),
        ("fresh@acme.test", "x" * 9, InvalidInput, "password"),
        ("not an email", PASSWORD, InvalidInput, "email"),
        ("nobody@localhost", PASSWORD, InvalidInput, "email"),
        ("@acme.test", PASSWORD, InvalidInput, "email"),
    ],
)
async def test_create_agent_refuses_bad_input_and_writes_nothing(
    runtime: Runtime,
    ws: Workspace,
    email: str,
    password: str,
    error: type[Exception],
    field: str,
) -> None:
    before = await snapshot(runtime)
    with pytest.raises(error) as raised:
        await perform(
            runtime, ws.admin, do_create_agent, email=email, name="Dup", password=password
        )
    assert getattr(raised.value, "field", None) == field
    assert await snapshot(runtime) == before


async def test_only_an_admin_creates_agents(runtime: Runtime, ws: Workspace) -> None:
    before = await snapshot(runtime)
    with pytest.raises(Forbidden):
        await perform(
            runtime,
            ws.agent,
            do_create_agent,
            email="sneaky@acme.test",
            name="Sneaky",
            password=PASSWORD,
            role=Role.ADMIN,
        )
    assert await snapshot(runtime) == before


async def test_admin_updates_an_agent_and_the_event_lists_the_changes(
    runtime: Runtime, ws: Workspace
) -> None:
    since = await last_event_id(runtime)
    await perform(
        runtime,
        ws.admin,
        do_update_agent,
        agent_id=ws.agent_id,
        name="Gus Renamed",
        role=Role.ADMIN,
        availability=Availability.BUSY,
        capacity=3,
    )
    row = await select_one(runtime, t.agents, t.agents.c.id == ws.agent_id)
    assert (row["name"], row["role"], row["availability"], row["capacity"], row["active"]) == (
        "Gus Renamed",
        "admin",
        "busy",
        3,
        True,
    )
    assert await events_since(runtime, since) == [
        (
            "agent.updated",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "changes": ["availability", "capacity", "name", "role"],
                "name": "Gus Renamed",
                "role": "admin",
                "availability": "busy",
                "capacity": 3,
                "active": True,
            },
        )
    ]

    # Clearing the capacity is a change of its own; repeating values is none.
    since = await last_event_id(runtime)
    await perform(runtime, ws.admin, do_update_agent, agent_id=ws.agent_id, clear_capacity=True)
    await perform(
        runtime, ws.admin, do_update_agent, agent_id=ws.agent_id, name="Gus Renamed", capacity=None
    )
    row = await select_one(runtime, t.agents, t.agents.c.id == ws.agent_id)
    assert row["capacity"] is None
    assert await events_since(runtime, since) == [
        (
            "agent.updated",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "changes": ["capacity"],
                "name": "Gus Renamed",
                "role": "admin",
                "availability": "busy",
                "capacity": None,
                "active": True,
            },
        )
    ]


async def test_an_agent_changes_its_own_name_and_availability(
    runtime: Runtime, ws: Workspace
) -> None:
    since = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_update_agent,
        agent_id=ws.agent_id,
        name="Gus",
        availability=Availability.ONLINE,
    )
    row = await select_one(runtime, t.agents, t.agents.c.id == ws.agent_id)
    assert (row["name"], row["availability"]) == ("Gus", "online")
    assert await events_since(runtime, since) == [
        (
            "agent.updated",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "changes": ["availability", "name"],
                "name": "Gus",
                "role": "agent",
                "availability": "online",
                "capacity": None,
                "active": True,
            },
        )
    ]


@pytest.mark.parametrize(
    ("who", "target", "change"),
    [
        ("agent", "admin", {"name": "Renamed"}),
        ("agent", "agent", {"role": Role.ADMIN}),
        ("agent", "agent", {"capacity": 10}),
        ("agent", "agent", {"clear_capacity": True}),
        ("agent", "agent", {"active": False}),
        ("admin", "admin", {"active": False}),
        ("admin", "admin", {"role": Role.AGENT}),
    ],
)
async def test_update_agent_refusals_write_nothing(
    runtime: Runtime, ws: Workspace, who: str, target: str, change: dict[str, Any]
) -> None:
    actor = ws.admin if who == "admin" else ws.agent
    agent_id = ws.admin_id if target == "admin" else ws.agent_id
    before_row = await select_one(runtime, t.agents, t.agents.c.id == agent_id)
    before = await snapshot(runtime)
    with pytest.raises(Forbidden):
        await perform(runtime, actor, do_update_agent, agent_id=agent_id, **change)
    assert await select_one(runtime, t.agents, t.agents.c.id == agent_id) == before_row
    assert await snapshot(runtime) == before


async def test_update_agent_of_another_workspace_is_not_found(
    runtime: Runtime, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Other Co")
    before = await snapshot(runtime)
    with pytest.raises(NotFound):
        await perform(runtime, ws.admin, do_update_agent, agent_id=other.agent_id, name="X")
    assert await snapshot(runtime) == before


async def test_deactivating_an_agent_ends_its_sessions(runtime: Runtime, ws: Workspace) -> None:
    first = await start_session(runtime, ws.agent_email)
    second = await start_session(runtime, ws.agent_email)
    admin_session = await start_session(runtime, ws.admin_email)
    since = await last_event_id(runtime)
    await perform(runtime, ws.admin, do_update_agent, agent_id=ws.agent_id, active=False)
    row = await select_one(runtime, t.agents, t.agents.c.id == ws.agent_id)
    assert row["active"] is False
    assert await session_ids(runtime, ws.agent_id) == set()
    assert await session_ids(runtime, ws.admin_id) == {admin_session.session_id}
    emitted = await events_since(runtime, since)
    assert [emitted[0], *by_session(emitted[1:])] == [
        (
            "agent.updated",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "changes": ["active"],
                "name": "Gus Agent",
                "role": "agent",
                "availability": "offline",
                "capacity": None,
                "active": False,
            },
        ),
        *[
            (
                "session.ended",
                {
                    "workspace_id": ws.id,
                    "agent_id": ws.agent_id,
                    "session_id": s.session_id,
                    "reason": "deactivated",
                },
            )
            for s in sorted((first, second), key=lambda s: s.session_id)
        ],
    ]
    async with runtime.db.read() as conn:
        assert await actor_for_session(conn, first.token, runtime.clock.now()) is None
    with pytest.raises(Unauthenticated):
        await start_session(runtime, ws.agent_email)


async def test_changing_ones_password_ends_the_other_sessions(
    runtime: Runtime, ws: Workspace
) -> None:
    here = await start_session(runtime, ws.agent_email)
    elsewhere = await start_session(runtime, ws.agent_email)
    frozen(runtime).advance(hours=1)
    since = await last_event_id(runtime)
    await perform(
        runtime,
        session_actor(here),
        do_change_password,
        agent_id=ws.agent_id,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
    )
    row = await select_one(runtime, t.agents, t.agents.c.id == ws.agent_id)
    assert verify_password(row["password_hash"], NEW_PASSWORD)
    assert not verify_password(row["password_hash"], PASSWORD)
    assert row["password_changed_at"] == T0 + timedelta(hours=1)
    assert await session_ids(runtime, ws.agent_id) == {here.session_id}
    assert await events_since(runtime, since) == [
        ("agent.password_changed", {"workspace_id": ws.id, "agent_id": ws.agent_id}),
        (
            "session.ended",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "session_id": elsewhere.session_id,
                "reason": "password_changed",
            },
        ),
    ]
    with pytest.raises(Unauthenticated):
        await start_session(runtime, ws.agent_email, PASSWORD)
    await start_session(runtime, ws.agent_email, NEW_PASSWORD)


async def test_an_admin_resets_another_agents_password_without_the_current_one(
    runtime: Runtime, ws: Workspace
) -> None:
    session = await start_session(runtime, ws.agent_email)
    since = await last_event_id(runtime)
    await perform(
        runtime,
        ws.admin,
        do_change_password,
        agent_id=ws.agent_id,
        current_password=None,
        new_password=NEW_PASSWORD,
    )
    assert await session_ids(runtime, ws.agent_id) == set()
    assert await events_since(runtime, since) == [
        ("agent.password_changed", {"workspace_id": ws.id, "agent_id": ws.agent_id}),
        (
            "session.ended",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "session_id": session.session_id,
                "reason": "password_changed",
            },
        ),
    ]


@pytest.mark.parametrize(
    ("who", "current", "new", "error", "field"),
    [
        ("self", "wrong password!", NEW_PASSWORD, InvalidInput, "current_password"),
        ("self", None, NEW_PASSWORD, InvalidInput, "current_password"),
        ("self", PASSWORD, "short", InvalidInput, "new_password"),
        ("admin", None, "short", InvalidInput, "new_password"),
        ("other agent", None, NEW_PASSWORD, Forbidden, None),
    ],
)
async def test_change_password_refusals_write_nothing(
    runtime: Runtime,
    ws: Workspace,
    who: str,
    current: str | None,
    new: str,
    error: type[Exception],
    field: str | None,
) -> None:
    session = await start_session(runtime, ws.agent_email)
    # "other agent": the plain agent trying to reset the admin's password.
    actor = {"self": session_actor(session), "admin": ws.admin, "other agent": ws.agent}[who]
    target = ws.admin_id if who == "other agent" else ws.agent_id
    before_row = await select_one(runtime, t.agents, t.agents.c.id == target)
    before = await snapshot(runtime)
    with pytest.raises(error) as raised:
        await perform(
            runtime,
            actor,
            do_change_password,
            agent_id=target,
            current_password=current,
            new_password=new,
        )
    if field is not None:
        assert getattr(raised.value, "field", None) == field
    assert await select_one(runtime, t.agents, t.agents.c.id == target) == before_row
    assert await snapshot(runtime) == before


# -- sessions ---------------------------------------------------------------


async def test_start_session_stores_only_hashes_and_emits_session_started(
    runtime: Runtime, ws: Workspace
) -> None:
    since = await last_event_id(runtime)
    session = await start_session(runtime, "  AGENT@Acme.test ")
    assert (session.agent_id, session.workspace_id) == (ws.agent_id, ws.id)
    row = await select_one(runtime, t.sessions, t.sessions.c.id == session.session_id)
    assert row == {
        "id": session.session_id,
        "workspace_id": ws.id,
        "agent_id": ws.agent_id,
        "token_hash": hash_token(session.token),
        "csrf_token": session.csrf_token,
        "created_at": T0,
        "expires_at": T0 + LIFETIME,
    }
    assert session.token not in row.values()
    assert await events_since(runtime, since) == [
        (
            "session.started",
            {"workspace_id": ws.id, "agent_id": ws.agent_id, "session_id": session.session_id},
        )
    ]
    async with runtime.db.read() as conn:
        found = await actor_for_session(conn, session.token, runtime.clock.now())
        assert found is not None
        assert found.actor == session_actor(session)
        expired = await actor_for_session(conn, session.token, T0 + LIFETIME)
        assert expired is None


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("agent@acme.test", "wrong password!"),
        ("agent@acme.test", ""),
        ("nobody@acme.test", PASSWORD),
    ],
)
async def test_start_session_with_bad_credentials_writes_nothing(
    runtime: Runtime, ws: Workspace, email: str, password: str
) -> None:
    before = await snapshot(runtime)
    with pytest.raises(Unauthenticated):
        await start_session(runtime, email, password)
    assert await snapshot(runtime) == before


async def test_end_session_ends_only_the_actors_session(runtime: Runtime, ws: Workspace) -> None:
    mine = await start_session(runtime, ws.agent_email)
    other = await start_session(runtime, ws.agent_email)
    since = await last_event_id(runtime)
    await perform(runtime, session_actor(mine), do_end_session, session_id=mine.session_id)
    assert await session_ids(runtime, ws.agent_id) == {other.session_id}
    assert await events_since(runtime, since) == [
        (
            "session.ended",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "session_id": mine.session_id,
                "reason": "logout",
            },
        )
    ]


async def test_end_session_of_someone_else_is_not_found(runtime: Runtime, ws: Workspace) -> None:
    mine = await start_session(runtime, ws.agent_email)
    admins = await start_session(runtime, ws.admin_email)
    before = await snapshot(runtime)
    with pytest.raises(NotFound):
        await perform(runtime, session_actor(mine), do_end_session, session_id=admins.session_id)
    with pytest.raises(NotFound):  # a token-authenticated actor has no session
        await perform(runtime, ws.agent, do_end_session, session_id=mine.session_id)
    assert await snapshot(runtime) == before


async def test_end_all_sessions_ends_every_session_of_the_actor(
    runtime: Runtime, ws: Workspace
) -> None:
    sessions = [await start_session(runtime, ws.agent_email) for _ in range(3)]
    admin_session = await start_session(runtime, ws.admin_email)
    since = await last_event_id(runtime)
    ended = await perform(runtime, session_actor(sessions[0]), do_end_all_sessions)
    assert ended == 3
    assert await session_ids(runtime, ws.agent_id) == set()
    assert await session_ids(runtime, ws.admin_id) == {admin_session.session_id}
    assert by_session(await events_since(runtime, since)) == [
        (
            "session.ended",
            {
                "workspace_id": ws.id,
                "agent_id": ws.agent_id,
                "session_id": s.session_id,
                "reason": "logout_all",
            },
        )
        for s in sessions
    ]
    # Nothing left: a second call ends nothing and emits nothing.
    since = await last_event_id(runtime)
    assert await perform(runtime, session_actor(sessions[0]), do_end_all_sessions) == 0
    assert await events_since(runtime, since) == []
    with pytest.raises(Unauthenticated):
        await perform(runtime, ws.system, do_end_all_sessions)


# -- teams ------------------------------------------------------------------


async def test_create_team(runtime: Runtime, ws: Workspace) -> None:
    since = await last_event_id(runtime)
    team_id = await perform(
        runtime, ws.admin, do_create_team, name="Tier 2", description="Escalations"
    )
    assert await select_one(runtime, t.teams, t.teams.c.id == team_id) == {
        "id": team_id,
        "workspace_id": ws.id,
        "name": "Tier 2",
        "description": "Escalations",
        "created_at": T0,
    }
    assert await events_since(runtime, since) == [
        ("team.created", {"workspace_id": ws.id, "team_id": team_id, "name": "Tier 2"})
    ]


async def test_create_team_refusals_write_nothing(runtime: Runtime, ws: Workspace) -> None:
    await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    before = await snapshot(runtime)
    with pytest.raises(Conflict) as raised:
        await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    assert raised.value.field == "name"
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_create_team, name="Agents only")
    assert await snapshot(runtime) == before
    # Names are unique per workspace only.
    other = await seed_workspace(runtime, "Other Co")
    await perform(runtime, other.admin, do_create_team, name="Tier 2")


async def test_update_team(runtime: Runtime, ws: Workspace) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    await perform(runtime, ws.admin, do_create_team, name="Billing")
    since = await last_event_id(runtime)
    await perform(runtime, ws.admin, do_update_team, team_id=team_id, description="Hard cases")
    await perform(runtime, ws.admin, do_update_team, team_id=team_id, name="Tier 3")
    # Unchanged values are no change.
    await perform(runtime, ws.admin, do_update_team, team_id=team_id, name="Tier 3")
    row = await select_one(runtime, t.teams, t.teams.c.id == team_id)
    assert (row["name"], row["description"]) == ("Tier 3", "Hard cases")
    assert await events_since(runtime, since) == [
        (
            "team.updated",
            {
                "workspace_id": ws.id,
                "team_id": team_id,
                "name": "Tier 2",
                "description": "Hard cases",
            },
        ),
        (
            "team.updated",
            {
                "workspace_id": ws.id,
                "team_id": team_id,
                "name": "Tier 3",
                "description": "Hard cases",
            },
        ),
    ]
    before = await snapshot(runtime)
    with pytest.raises(Conflict):
        await perform(runtime, ws.admin, do_update_team, team_id=team_id, name="Billing")
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_update_team, team_id=team_id, name="Mine")
    with pytest.raises(NotFound):
        await perform(runtime, ws.admin, do_update_team, team_id=team_id + 1000, name="Gone")
    assert await snapshot(runtime) == before
    assert await select_one(runtime, t.teams, t.teams.c.id == team_id) == row


async def test_delete_team_clears_it_from_conversations(runtime: Runtime, ws: Workspace) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    await perform(runtime, ws.admin, do_add_team_member, team_id=team_id, agent_id=ws.agent_id)
    await perform(
        runtime,
        ws.admin,
        do_assign_conversation,
        conversation_id=ws.conversation_id,
        team_id=team_id,
    )
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_delete_team, team_id=team_id)
    since = await last_event_id(runtime)
    await perform(runtime, ws.admin, do_delete_team, team_id=team_id)
    assert await select_rows(runtime, t.teams, t.teams.c.id == team_id) == []
    assert await select_rows(runtime, t.team_members, t.team_members.c.team_id == team_id) == []
    conversation = await select_one(
        runtime, t.conversations, t.conversations.c.id == ws.conversation_id
    )
    assert conversation["team_id"] is None
    assert await events_since(runtime, since) == [
        ("team.deleted", {"workspace_id": ws.id, "team_id": team_id})
    ]
    with pytest.raises(NotFound):
        await perform(runtime, ws.admin, do_delete_team, team_id=team_id)


async def test_team_membership(runtime: Runtime, ws: Workspace) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    since = await last_event_id(runtime)
    assert await perform(
        runtime, ws.admin, do_add_team_member, team_id=team_id, agent_id=ws.agent_id
    )
    assert not await perform(
        runtime, ws.admin, do_add_team_member, team_id=team_id, agent_id=ws.agent_id
    )
    assert await select_rows(runtime, t.team_members, t.team_members.c.team_id == team_id) == [
        {"team_id": team_id, "agent_id": ws.agent_id, "workspace_id": ws.id}
    ]
    assert await perform(
        runtime, ws.admin, do_remove_team_member, team_id=team_id, agent_id=ws.agent_id
    )
    assert not await perform(
        runtime, ws.admin, do_remove_team_member, team_id=team_id, agent_id=ws.agent_id
    )
    assert await select_rows(runtime, t.team_members, t.team_members.c.team_id == team_id) == []
    payload = {"workspace_id": ws.id, "team_id": team_id, "agent_id": ws.agent_id}
    assert await events_since(runtime, since) == [
        ("team.member_added", payload),
        ("team.member_removed", payload),
    ]


async def test_team_membership_refusals_write_nothing(runtime: Runtime, ws: Workspace) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    await perform(runtime, ws.admin, do_add_team_member, team_id=team_id, agent_id=ws.admin_id)
    other = await seed_workspace(runtime, "Other Co")
    before = await snapshot(runtime)
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_add_team_member, team_id=team_id, agent_id=ws.agent_id)
    with pytest.raises(Forbidden):
        await perform(
            runtime, ws.agent, do_remove_team_member, team_id=team_id, agent_id=ws.admin_id
        )
    with pytest.raises(NotFound):  # an agent of another workspace
        await perform(
            runtime, ws.admin, do_add_team_member, team_id=team_id, agent_id=other.agent_id
        )
    with pytest.raises(NotFound):  # the team, seen from another workspace
        await perform(
            runtime, other.admin, do_add_team_member, team_id=team_id, agent_id=other.agent_id
        )
    assert await snapshot(runtime) == before


# -- inboxes ----------------------------------------------------------------


async def test_create_widget_inbox_stores_its_secret_encrypted(
    runtime: Runtime, ws: Workspace
) -> None:
    since = await last_event_id(runtime)
    new = await perform(
        runtime,
        ws.admin,
        do_create_inbox,
        name="Shop chat",
        kind=InboxKind.WIDGET,
        settings={"color": "#0af", "greeting": "Hi!"},
        box=runtime.secrets,
    )
    assert new.secret is not None and len(new.secret) == 64
    row = await select_one(runtime, t.inboxes, t.inboxes.c.id == new.inbox_id)
    encrypted = row.pop("secret_encrypted")
    assert row == {
        "id": new.inbox_id,
        "workspace_id": ws.id,
        "name": "Shop chat",
        "kind": "widget",
        "public_token": new.public_token,
        "settings": {"color": "#0af", "greeting": "Hi!"},
        "created_at": T0,
    }
    assert new.secret not in encrypted
    assert runtime.secrets.decrypt(encrypted) == new.secret
    assert await events_since(runtime, since) == [
        (
            "inbox.created",
            {
                "workspace_id": ws.id,
                "inbox_id": new.inbox_id,
                "name": "Shop chat",
                "kind": "widget",
            },
        )
    ]


async def test_create_email_inbox_has_no_secret(runtime: Runtime, ws: Workspace) -> None:
    new = await perform(
        runtime,
        ws.admin,
        do_create_inbox,
        name="Support mail",
        kind=InboxKind.EMAIL,
        settings={},
        box=runtime.secrets,
    )
    assert new.secret is None
    row = await select_one(runtime, t.inboxes, t.inboxes.c.id == new.inbox_id)
    assert (row["kind"], row["secret_encrypted"], row["settings"]) == ("email", None, {})


async def test_only_an_admin_creates_inboxes(runtime: Runtime, ws: Workspace) -> None:
    before = await snapshot(runtime)
    with pytest.raises(Forbidden):
        await perform(
            runtime,
            ws.agent,
            do_create_inbox,
            name="Mine",
            kind=InboxKind.API,
            settings={},
            box=runtime.secrets,
        )
    assert await snapshot(runtime) == before


async def test_update_inbox_merges_settings(runtime: Runtime, ws: Workspace) -> None:
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.inbox_id,
        settings={"color": "#000", "greeting": "Hi"},
    )
    since = await last_event_id(runtime)
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.inbox_id,
        name="Website chat",
        settings={"color": "#fff", "greeting": None, "locale": "de"},
    )
    # No change: nothing emitted.
    await perform(
        runtime, ws.admin, do_update_inbox, inbox_id=ws.inbox_id, name="Website chat", settings={}
    )
    row = await select_one(runtime, t.inboxes, t.inboxes.c.id == ws.inbox_id)
    assert (row["name"], row["settings"]) == (
        "Website chat",
        {"color": "#fff", "locale": "de"},
    )
    assert await events_since(runtime, since) == [
        (
            "inbox.updated",
            {
                "workspace_id": ws.id,
                "inbox_id": ws.inbox_id,
                "name": "Website chat",
                "changes": ["name", "settings"],
            },
        )
    ]


async def test_update_inbox_refusals_write_nothing(runtime: Runtime, ws: Workspace) -> None:
    before = await snapshot(runtime)
    with pytest.raises(Forbidden):  # a member, but not an admin
        await perform(runtime, ws.agent, do_update_inbox, inbox_id=ws.inbox_id, name="Mine")
    with pytest.raises(NotFound):  # not even a member
        await perform(runtime, ws.agent, do_update_inbox, inbox_id=ws.other_inbox_id, name="M")
    assert await snapshot(runtime) == before


async def test_inbox_membership(runtime: Runtime, ws: Workspace) -> None:
    since = await last_event_id(runtime)
    inbox = ws.other_inbox_id
    assert await perform(
        runtime, ws.admin, do_add_inbox_member, inbox_id=inbox, agent_id=ws.agent_id
    )
    assert not await perform(
        runtime, ws.admin, do_add_inbox_member, inbox_id=inbox, agent_id=ws.agent_id
    )
    assert await select_rows(runtime, t.inbox_members, t.inbox_members.c.inbox_id == inbox) == [
        {"inbox_id": inbox, "agent_id": ws.agent_id, "workspace_id": ws.id}
    ]
    assert await perform(
        runtime, ws.admin, do_remove_inbox_member, inbox_id=inbox, agent_id=ws.agent_id
    )
    assert not await perform(
        runtime, ws.admin, do_remove_inbox_member, inbox_id=inbox, agent_id=ws.agent_id
    )
    assert await select_rows(runtime, t.inbox_members, t.inbox_members.c.inbox_id == inbox) == []
    payload = {"workspace_id": ws.id, "inbox_id": inbox, "agent_id": ws.agent_id}
    assert await events_since(runtime, since) == [
        ("inbox.member_added", payload),
        ("inbox.member_removed", payload),
    ]


async def test_inbox_membership_refusals_write_nothing(runtime: Runtime, ws: Workspace) -> None:
    other = await seed_workspace(runtime, "Other Co")
    before = await snapshot(runtime)
    with pytest.raises(Forbidden):  # a member may not add others
        await perform(
            runtime, ws.agent, do_add_inbox_member, inbox_id=ws.inbox_id, agent_id=ws.admin_id
        )
    with pytest.raises(Forbidden):  # ... nor remove itself
        await perform(
            runtime, ws.agent, do_remove_inbox_member, inbox_id=ws.inbox_id, agent_id=ws.agent_id
        )
    with pytest.raises(NotFound):  # an inbox it can't see
        await perform(
            runtime,
            ws.agent,
            do_add_inbox_member,
            inbox_id=ws.other_inbox_id,
            agent_id=ws.agent_id,
        )
    with pytest.raises(NotFound):  # an agent of another workspace
        await perform(
            runtime, ws.admin, do_add_inbox_member, inbox_id=ws.inbox_id, agent_id=other.agent_id
        )
    with pytest.raises(NotFound):  # the inbox, seen from another workspace
        await perform(
            runtime,
            other.admin,
            do_remove_inbox_member,
            inbox_id=ws.inbox_id,
            agent_id=ws.agent_id,
        )
    assert await snapshot(runtime) == before


# -- API tokens -------------------------------------------------------------


async def test_create_api_token_stores_only_its_hash(runtime: Runtime, ws: Workspace) -> None:
    since = await last_event_id(runtime)
    new = await perform(runtime, ws.agent, do_create_api_token, name="CI script")
    assert new.token.startswith("tlp_")
    assert new.prefix == new.token[:10]
    row = await select_one(runtime, t.api_tokens, t.api_tokens.c.id == new.token_id)
    assert row == {
        "id": new.token_id,
        "workspace_id": ws.id,
        "agent_id": ws.agent_id,
        "name": "CI script",
        "token_hash": hash_token(new.token),
        "prefix": new.prefix,
        "created_at": T0,
        "last_used_at": None,
        "revoked_at": None,
    }
    assert new.token not in row.values()
    assert await events_since(runtime, since) == [
        (
            "api_token.created",
            {
                "workspace_id": ws.id,
                "token_id": new.token_id,
                "agent_id": ws.agent_id,
                "name": "CI script",
            },
        )
    ]
    async with runtime.db.read() as conn:
        assert await actor_for_api_token(conn, new.token) == dataclasses.replace(
            ws.agent, token_id=new.token_id
        )


async def test_the_system_owns_no_tokens(runtime: Runtime, ws: Workspace) -> None:
    before = await snapshot(runtime)
    with pytest.raises(Unauthenticated):
        await perform(runtime, ws.system, do_create_api_token, name="system")
    assert await snapshot(runtime) == before


async def test_revoked_token_no_longer_authenticates(runtime: Runtime, ws: Workspace) -> None:
    new = await perform(runtime, ws.agent, do_create_api_token, name="CI script")
    frozen(runtime).advance(minutes=5)
    since = await last_event_id(runtime)
    await perform(runtime, ws.agent, do_revoke_api_token, token_id=new.token_id)
    row = await select_one(runtime, t.api_tokens, t.api_tokens.c.id == new.token_id)
    assert row["revoked_at"] == T0 + timedelta(minutes=5)
    assert await events_since(runtime, since) == [
        (
            "api_token.revoked",
            {"workspace_id": ws.id, "token_id": new.token_id, "agent_id": ws.agent_id},
        )
    ]
    async with runtime.db.read() as conn:
        assert await actor_for_api_token(conn, new.token) is None
    # Revoking again is a no-op: no write, no event.
    frozen(runtime).advance(minutes=5)
    before = await snapshot(runtime)
    await perform(runtime, ws.agent, do_revoke_api_token, token_id=new.token_id)
    assert await snapshot(runtime) == before
    assert await select_one(runtime, t.api_tokens, t.api_tokens.c.id == new.token_id) == row


async def test_who_may_revoke_a_token(runtime: Runtime, ws: Workspace) -> None:
    admin_token = await perform(runtime, ws.admin, do_create_api_token, name="admin")
    agent_token = await perform(runtime, ws.agent, do_create_api_token, name="agent")
    other = await seed_workspace(runtime, "Other Co")
    before = await snapshot(runtime)
    with pytest.raises(NotFound):  # another agent's token is invisible to a plain agent
        await perform(runtime, ws.agent, do_revoke_api_token, token_id=admin_token.token_id)
    with pytest.raises(NotFound):  # and to another workspace's admin
        await perform(runtime, other.admin, do_revoke_api_token, token_id=agent_token.token_id)
    assert await snapshot(runtime) == before
    since = await last_event_id(runtime)
    await perform(runtime, ws.admin, do_revoke_api_token, token_id=agent_token.token_id)
    assert await events_since(runtime, since) == [
        (
            "api_token.revoked",
            {"workspace_id": ws.id, "token_id": agent_token.token_id, "agent_id": ws.agent_id},
        )
    ]
    async with runtime.db.read() as conn:
        assert await actor_for_api_token(conn, agent_token.token) is None
        assert await actor_for_api_token(conn, admin_token.token) is not None
