"""Saved-filter actions (F4): the rows and exact events, sidebar order,
names unique per agent, queries checked by key, and that a filter is its
agent's alone; a refused action writes and emits nothing."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.saved_filters import (
    do_create_saved_filter,
    do_delete_saved_filter,
    do_update_saved_filter,
)
from server.domain.actors import Actor
from server.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.domain.saved_filters import MAX_PER_AGENT
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_all, last_event_id, seed_workspace


async def create(runtime: Runtime, actor: Actor, name: str = "Mine open", **kw: Any) -> int:
    kw.setdefault("query", {"status": ["open"], "mine": True})
    saved_filter_id: int = await perform(runtime, actor, do_create_saved_filter, name=name, **kw)
    return saved_filter_id


async def rows(runtime: Runtime) -> list[dict[str, Any]]:
    found = await fetch_all(runtime, sa.select(t.saved_filters).order_by(t.saved_filters.c.id))
    return [dict(r._mapping) for r in found]


async def refused(runtime: Runtime, kind: type[DomainError], field: str | None, call: Any) -> None:
    before = (await rows(runtime), await last_event_id(runtime))
    with pytest.raises(kind) as caught:
        await call()
    assert caught.value.field == field
    assert (await rows(runtime), await last_event_id(runtime)) == before


async def test_create_stores_the_clean_query_last_in_order(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    first = await create(
        runtime, ws.agent, " VIP waiting ", query={"label": " VIP ", "status": ["pending", "open"]}
    )
    second = await create(runtime, ws.agent, "Second")
    placed = await create(runtime, ws.agent, "Placed", position=0)
    assert await rows(runtime) == [
        {
            "id": first,
            "workspace_id": ws.id,
            "agent_id": ws.agent_id,
            "name": "VIP waiting",
            "query": {"label": "vip", "status": ["open", "pending"]},
            "position": 0,
            "created_at": T0,
            "updated_at": T0,
        },
        {
            "id": second,
            "workspace_id": ws.id,
            "agent_id": ws.agent_id,
            "name": "Second",
            "query": {"status": ["open"], "mine": True},
            "position": 1,
            "created_at": T0,
            "updated_at": T0,
        },
        {
            "id": placed,
            "workspace_id": ws.id,
            "agent_id": ws.agent_id,
            "name": "Placed",
            "query": {"status": ["open"], "mine": True},
            "position": 0,
            "created_at": T0,
            "updated_at": T0,
        },
    ]
    events = await events_since(runtime, before)
    assert events[0] == (
        "saved_filter.created",
        {
            "workspace_id": ws.id,
            "saved_filter_id": first,
            "agent_id": ws.agent_id,
            "name": "VIP waiting",
            "query": {"label": "vip", "status": ["open", "pending"]},
            "position": 0,
        },
    )
    assert [kind for kind, _ in events] == ["saved_filter.created"] * 3
    # Each agent's order starts afresh.
    admins = await create(runtime, ws.admin, "Admin's")
    assert (await rows(runtime))[-1]["id"] == admins
    assert (await rows(runtime))[-1]["position"] == 0


async def test_bad_input_is_refused_by_field(runtime: Runtime, ws: Workspace) -> None:
    await create(runtime, ws.agent, "Taken")
    cases: list[tuple[type[DomainError], str | None, dict[str, Any]]] = [
        (InvalidInput, "query.priority", {"query": {"priority": "high"}}),
        (InvalidInput, "query.status[0]", {"query": {"status": ["closed"]}}),
        (InvalidInput, "query.inbox_id", {"query": {"inbox_id": "1"}}),
        (InvalidInput, "name", {"name": " "}),
        (InvalidInput, "position", {"position": -1}),
        (Conflict, "name", {"name": " Taken "}),
    ]
    for kind, field, kw in cases:
        await refused(runtime, kind, field, lambda kw=kw: create(runtime, ws.agent, **kw))
    # Only an agent has a sidebar.
    await refused(runtime, Forbidden, None, lambda: create(runtime, ws.system))


async def test_names_are_unique_per_agent(runtime: Runtime, ws: Workspace) -> None:
    await create(runtime, ws.agent, "Urgent")
    await create(runtime, ws.admin, "Urgent")
    assert len(await rows(runtime)) == 2


async def test_a_filter_is_its_agents_alone(runtime: Runtime, ws: Workspace) -> None:
    mine = await create(runtime, ws.agent)
    other = await seed_workspace(runtime, "Other Co")
    for actor in (ws.admin, other.admin, ws.system):
        await refused(
            runtime,
            NotFound,
            None,
            lambda a=actor: perform(
                runtime, a, do_update_saved_filter, saved_filter_id=mine, name="Stolen"
            ),
        )
        await refused(
            runtime,
            NotFound,
            None,
            lambda a=actor: perform(runtime, a, do_delete_saved_filter, saved_filter_id=mine),
        )


async def test_update_and_delete(runtime: Runtime, ws: Workspace) -> None:
    saved_id = await create(runtime, ws.agent)
    await create(runtime, ws.agent, "Other")
    before = await last_event_id(runtime)
    # The same values, spelled otherwise: nothing changes, nothing is emitted.
    await perform(
        runtime,
        ws.agent,
        do_update_saved_filter,
        saved_filter_id=saved_id,
        name=" Mine open",
        query={"mine": True, "status": ["open"], "unassigned": False},
        position=0,
    )
    assert await events_since(runtime, before) == []
    await refused(
        runtime,
        Conflict,
        "name",
        lambda: perform(
            runtime, ws.agent, do_update_saved_filter, saved_filter_id=saved_id, name="Other"
        ),
    )
    await refused(
        runtime,
        InvalidInput,
        "query.mine",
        lambda: perform(
            runtime, ws.agent, do_update_saved_filter, saved_filter_id=saved_id, query={"mine": 1}
        ),
    )
    await perform(
        runtime,
        ws.agent,
        do_update_saved_filter,
        saved_filter_id=saved_id,
        query={"unassigned": True},
        position=5,
    )
    await perform(runtime, ws.agent, do_delete_saved_filter, saved_filter_id=saved_id)
    assert await events_since(runtime, before) == [
        (
            "saved_filter.updated",
            {
                "workspace_id": ws.id,
                "saved_filter_id": saved_id,
                "agent_id": ws.agent_id,
                "name": "Mine open",
                "query": {"unassigned": True},
                "position": 5,
                "changes": ["position", "query"],
            },
        ),
        (
            "saved_filter.deleted",
            {"workspace_id": ws.id, "saved_filter_id": saved_id, "agent_id": ws.agent_id},
        ),
    ]
    assert [r["name"] for r in await rows(runtime)] == ["Other"]


async def test_an_agent_holds_a_bounded_number(runtime: Runtime, ws: Workspace) -> None:
    for i in range(MAX_PER_AGENT):
        await create(runtime, ws.agent, f"f{i}")
    await refused(runtime, Conflict, None, lambda: create(runtime, ws.agent, "one more"))
