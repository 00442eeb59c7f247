"""Macro actions (F6): the rows create / update / delete write, the exact
events they emit, who may do each in each scope, the references a save
checks, and that a refused action writes and emits nothing."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.agents import do_create_agent, do_update_agent
from server.actions.canned_responses import do_create_canned_response
from server.actions.context import perform
from server.actions.macros import do_create_macro, do_delete_macro, do_update_macro
from server.actions.teams import do_create_team
from server.clock import FrozenClock
from server.domain.actors import Actor
from server.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.domain.macros import MAX_PER_AUDIENCE, MacroScope
from server.domain.values import CannedScope
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import (
    PASSWORD,
    T0,
    Workspace,
    events_since,
    fetch_one,
    last_event_id,
    seed_workspace,
)

STEPS: list[dict[str, Any]] = [
    {"type": "add_label", "label": " Refund "},
    {"type": "set_priority", "priority": "high"},
    {"type": "resolve"},
]


async def macro_row(runtime: Runtime, macro_id: int) -> sa.Row[Any]:
    return await fetch_one(runtime, sa.select(t.macros).where(t.macros.c.id == macro_id))


async def snapshot(runtime: Runtime) -> tuple[int, int]:
    async with runtime.db.read() as conn:
        rows = await conn.scalar(sa.select(sa.func.count()).select_from(t.macros))
    return int(rows or 0), await last_event_id(runtime)


async def create(runtime: Runtime, actor: Actor, **kwargs: Any) -> int:
    fields: dict[str, Any] = {"scope": MacroScope.WORKSPACE, "name": "Refund", "actions": STEPS}
    macro_id: int = await perform(runtime, actor, do_create_macro, **{**fields, **kwargs})
    return macro_id


async def refused(runtime: Runtime, kind: type[DomainError], field: str | None, call: Any) -> None:
    """`call()` is refused with `kind` naming `field`, writing nothing."""
    before = await snapshot(runtime)
    with pytest.raises(kind) as caught:
        await call()
    assert caught.value.field == field
    assert await snapshot(runtime) == before


async def canned(runtime: Runtime, actor: Actor, shortcut: str, **audience: Any) -> int:
    audience.setdefault("scope", CannedScope.WORKSPACE)
    canned_id: int = await perform(
        runtime,
        actor,
        do_create_canned_response,
        shortcut=shortcut,
        title="T",
        body="Hi",
        **audience,
    )
    return canned_id


# -- create -----------------------------------------------------------------


async def test_admin_creates_a_workspace_macro(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    macro_id = await create(runtime, ws.admin, name="  Refund and close ")
    row = await macro_row(runtime, macro_id)
    assert dict(row._mapping) == {
        "id": macro_id,
        "workspace_id": ws.id,
        "scope": "workspace",
        "agent_id": None,
        "owner_key": "workspace",
        "name": "Refund and close",
        "actions": [
            {"type": "add_label", "label": "refund"},
            {"type": "set_priority", "priority": "high"},
            {"type": "resolve"},
        ],
        "usage_count": 0,
        "created_by": ws.admin_id,
        "created_at": T0,
        "updated_at": T0,
    }
    assert await events_since(runtime, before) == [
        (
            "macro.created",
            {
                "workspace_id": ws.id,
                "macro_id": macro_id,
                "scope": "workspace",
                "agent_id": None,
                "name": "Refund and close",
            },
        )
    ]


async def test_a_personal_macro_is_its_agents(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    macro_id = await create(runtime, ws.agent, scope=MacroScope.PERSONAL)
    row = await macro_row(runtime, macro_id)
    assert (row.scope, row.agent_id, row.owner_key) == (
        "personal",
        ws.agent_id,
        f"agent:{ws.agent_id}",
    )
    [(kind, data)] = await events_since(runtime, before)
    assert (kind, data["scope"], data["agent_id"]) == ("macro.created", "personal", ws.agent_id)


async def test_who_may_write_each_scope(runtime: Runtime, ws: Workspace) -> None:
    shared = await create(runtime, ws.admin, name="Shared")
    mine = await create(runtime, ws.agent, scope=MacroScope.PERSONAL, name="Mine")
    # Only admins write workspace macros (agents run them).
    await refused(runtime, Forbidden, None, lambda: create(runtime, ws.agent, name="X"))
    await refused(
        runtime,
        Forbidden,
        None,
        lambda: perform(runtime, ws.agent, do_update_macro, macro_id=shared, name="Y"),
    )
    await refused(
        runtime,
        Forbidden,
        None,
        lambda: perform(runtime, ws.agent, do_delete_macro, macro_id=shared),
    )
    # A personal macro is its owner's alone: admins can't see it either.
    await refused(
        runtime,
        NotFound,
        None,
        lambda: perform(runtime, ws.admin, do_update_macro, macro_id=mine, name="Z"),
    )
    await refused(
        runtime, NotFound, None, lambda: perform(runtime, ws.admin, do_delete_macro, macro_id=mine)
    )
    # The system has no personal macros.
    await refused(
        runtime,
        Forbidden,
        "scope",
        lambda: create(runtime, ws.system, scope=MacroScope.PERSONAL, name="S"),
    )
    # Another workspace sees neither.
    other = await seed_workspace(runtime, "Other Co")
    for macro_id in (shared, mine):
        await refused(
            runtime,
            NotFound,
            None,
            lambda m=macro_id: perform(runtime, other.admin, do_delete_macro, macro_id=m),
        )
    # The owner changes and deletes its own.
    await perform(runtime, ws.agent, do_update_macro, macro_id=mine, name="Mine too")
    await perform(runtime, ws.agent, do_delete_macro, macro_id=mine)


async def test_bad_steps_are_refused_by_field(runtime: Runtime, ws: Workspace) -> None:
    steps = [*STEPS, {"type": "snooze", "minutes": 0}]
    await refused(
        runtime,
        InvalidInput,
        "actions[3].minutes",
        lambda: create(runtime, ws.admin, actions=steps),
    )
    await refused(runtime, InvalidInput, "actions", lambda: create(runtime, ws.admin, actions=[]))
    await refused(runtime, InvalidInput, "name", lambda: create(runtime, ws.admin, name=" "))


async def test_references_must_be_usable_by_the_audience(runtime: Runtime, ws: Workspace) -> None:
    team = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    shared = await canned(runtime, ws.admin, "shared")
    inbox_only = await canned(
        runtime, ws.admin, "site", scope=CannedScope.INBOX, inbox_id=ws.inbox_id
    )
    admins_own = await canned(runtime, ws.admin, "own", scope=CannedScope.PERSONAL)
    agents_own = await canned(runtime, ws.agent, "agents-own", scope=CannedScope.PERSONAL)
    gone = await perform(
        runtime, ws.system, do_create_agent, email="gone@acme.test", name="Gone", password=PASSWORD
    )
    await perform(runtime, ws.admin, do_update_agent, agent_id=gone, active=False)
    other = await seed_workspace(runtime, "Other Co")
    foreign_team = await perform(runtime, other.admin, do_create_team, name="Theirs")

    def step(kind: str, **value: Any) -> list[dict[str, Any]]:
        return [{"type": "resolve"}, {"type": kind, **value}]

    cases: list[tuple[Actor, MacroScope, list[dict[str, Any]], str]] = [
        # Every agent runs a workspace macro: only workspace responses.
        (
            ws.admin,
            MacroScope.WORKSPACE,
            step("send_canned_response", canned_response_id=inbox_only),
            "actions[1].canned_response_id",
        ),
        (
            ws.admin,
            MacroScope.WORKSPACE,
            step("send_canned_response", canned_response_id=admins_own),
            "actions[1].canned_response_id",
        ),
        (
            ws.admin,
            MacroScope.WORKSPACE,
            step("send_canned_response", canned_response_id=agents_own),
            "actions[1].canned_response_id",
        ),
        (
            ws.admin,
            MacroScope.WORKSPACE,
            step("send_canned_response", canned_response_id=10**9),
            "actions[1].canned_response_id",
        ),
        # A personal macro: what its owner can read.
        (
            ws.agent,
            MacroScope.PERSONAL,
            step("send_canned_response", canned_response_id=admins_own),
            "actions[1].canned_response_id",
        ),
        (
            ws.admin,
            MacroScope.WORKSPACE,
            step("assign_team", team_id=foreign_team),
            "actions[1].team_id",
        ),
        (
            ws.admin,
            MacroScope.WORKSPACE,
            step("assign_agent", agent_id=gone),
            "actions[1].agent_id",
        ),
        (
            ws.admin,
            MacroScope.WORKSPACE,
            step("assign_agent", agent_id=other.agent_id),
            "actions[1].agent_id",
        ),
    ]
    for actor, scope, steps, field in cases:
        await refused(
            runtime,
            InvalidInput,
            field,
            lambda a=actor, s=scope, st=steps: create(runtime, a, scope=s, actions=st),
        )
    # What each audience may use is accepted.
    await create(
        runtime,
        ws.admin,
        actions=[
            {"type": "send_canned_response", "canned_response_id": shared},
            {"type": "assign_team", "team_id": team},
            {"type": "assign_agent", "agent_id": ws.agent_id},
            {"type": "assign_agent", "agent_id": "me"},
            {"type": "assign_team", "team_id": None},
        ],
    )
    await create(
        runtime,
        ws.agent,
        scope=MacroScope.PERSONAL,
        actions=[
            {"type": "send_canned_response", "canned_response_id": agents_own},
            {"type": "send_canned_response", "canned_response_id": inbox_only},
        ],
    )


async def test_names_are_unique_per_audience(runtime: Runtime, ws: Workspace) -> None:
    await create(runtime, ws.admin, name="Refund")
    await refused(runtime, Conflict, "name", lambda: create(runtime, ws.admin, name=" Refund"))
    # Another audience may use the name.
    await create(runtime, ws.agent, scope=MacroScope.PERSONAL, name="Refund")
    await create(runtime, ws.admin, scope=MacroScope.PERSONAL, name="Refund")
    await refused(
        runtime,
        Conflict,
        "name",
        lambda: create(runtime, ws.agent, scope=MacroScope.PERSONAL, name="Refund"),
    )


async def test_an_audience_holds_a_bounded_number(runtime: Runtime, ws: Workspace) -> None:
    for i in range(MAX_PER_AUDIENCE):
        await create(runtime, ws.agent, scope=MacroScope.PERSONAL, name=f"m{i}")
    await refused(
        runtime,
        Conflict,
        None,
        lambda: create(runtime, ws.agent, scope=MacroScope.PERSONAL, name="one more"),
    )
    await create(runtime, ws.admin, name="the workspace has room")


# -- update and delete --------------------------------------------------------


async def test_update_changes_what_is_given(runtime: Runtime, ws: Workspace) -> None:
    macro_id = await create(runtime, ws.admin)
    await create(runtime, ws.admin, name="Taken")
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(minutes=5)
    before = await last_event_id(runtime)
    # The same values (spelled differently) change nothing and emit nothing.
    await perform(
        runtime,
        ws.admin,
        do_update_macro,
        macro_id=macro_id,
        name=" Refund ",
        actions=[{"type": "add_label", "label": "REFUND"}, *STEPS[1:]],
    )
    assert await events_since(runtime, before) == []
    await refused(
        runtime,
        Conflict,
        "name",
        lambda: perform(runtime, ws.admin, do_update_macro, macro_id=macro_id, name="Taken"),
    )
    await refused(
        runtime,
        InvalidInput,
        "actions[0].team_id",
        lambda: perform(
            runtime,
            ws.admin,
            do_update_macro,
            macro_id=macro_id,
            actions=[{"type": "assign_team", "team_id": 10**9}],
        ),
    )
    await perform(
        runtime, ws.admin, do_update_macro, macro_id=macro_id, actions=[{"type": "reopen"}]
    )
    row = await macro_row(runtime, macro_id)
    assert (row.name, row.actions, row.created_at, row.updated_at) == (
        "Refund",
        [{"type": "reopen"}],
        T0,
        runtime.clock.now(),
    )
    assert await events_since(runtime, before) == [
        (
            "macro.updated",
            {
                "workspace_id": ws.id,
                "macro_id": macro_id,
                "scope": "workspace",
                "agent_id": None,
                "name": "Refund",
                "changes": ["actions"],
            },
        )
    ]


async def test_delete(runtime: Runtime, ws: Workspace) -> None:
    macro_id = await create(runtime, ws.agent, scope=MacroScope.PERSONAL)
    before = await last_event_id(runtime)
    await perform(runtime, ws.agent, do_delete_macro, macro_id=macro_id)
    assert await snapshot(runtime) == (0, before + 1)
    assert await events_since(runtime, before) == [
        (
            "macro.deleted",
            {
                "workspace_id": ws.id,
                "macro_id": macro_id,
                "scope": "personal",
                "agent_id": ws.agent_id,
            },
        )
    ]
    await refused(
        runtime,
        NotFound,
        None,
        lambda: perform(runtime, ws.agent, do_delete_macro, macro_id=macro_id),
    )
