"""Segment actions: admins create, change and delete (with events), and
the durable member refresh — entries reported once, leavers removed,
re-entry after leaving, two refreshes at once, paging past one chunk."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from server.actions import segments as segment_actions
from server.actions.contact_merges import do_merge_contacts
from server.actions.contacts import do_create_contact, do_update_contact
from server.actions.context import perform
from server.actions.segments import (
    do_create_segment,
    do_delete_segment,
    do_refresh_segment_members,
    do_update_segment,
)
from server.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_all, last_event_id, seed_workspace

PRO = {"conditions": [{"attribute": "plan", "op": "eq", "value": "pro"}]}


async def members(runtime: Runtime, segment_id: int) -> dict[int, object]:
    m = t.segment_members.c
    rows = await fetch_all(
        runtime, sa.select(m.contact_id, m.entered_at).where(m.segment_id == segment_id)
    )
    return {r.contact_id: r.entered_at for r in rows}


async def pro_contact(runtime: Runtime, ws: Workspace, name: str) -> int:
    cid: int = await perform(
        runtime, ws.admin, do_create_contact, name=name, attributes={"plan": "pro"}
    )
    return cid


async def test_create_update_delete_emit_and_store_the_clean_form(
    runtime: Runtime, ws: Workspace
) -> None:
    before = await last_event_id(runtime)
    segment_id = await perform(
        runtime,
        ws.admin,
        do_create_segment,
        name="  VIPs ",
        filter={"conditions": [{"label": "VIP"}, {"event": "x", "within": "4h"}]},
    )
    [row] = await fetch_all(runtime, sa.select(t.segments))
    assert (row.name, row.created_by_id, row.created_at) == ("VIPs", ws.admin_id, T0)
    assert row.filter == {
        "match": "all",
        "conditions": [{"label": "vip"}, {"event": "x", "within": "4h", "count": {"min": 1}}],
    }
    await perform(runtime, ws.admin, do_update_segment, segment_id=segment_id, name="VIPs")
    await perform(runtime, ws.admin, do_update_segment, segment_id=segment_id, filter=PRO)
    await perform(runtime, ws.admin, do_delete_segment, segment_id=segment_id)
    assert await events_since(runtime, before) == [
        ("segment.created", {"workspace_id": ws.id, "segment_id": segment_id, "name": "VIPs"}),
        ("segment.updated", {"workspace_id": ws.id, "segment_id": segment_id, "name": "VIPs"}),
        ("segment.deleted", {"workspace_id": ws.id, "segment_id": segment_id}),
    ]
    assert await fetch_all(runtime, sa.select(t.segments)) == []


async def test_only_admins_write_and_names_are_unique_per_workspace(
    runtime: Runtime, ws: Workspace
) -> None:
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_create_segment, name="Mine", filter=PRO)
    segment_id = await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=PRO)
    for action, kwargs in (
        (do_update_segment, {"name": "x"}),
        (do_delete_segment, {}),
    ):
        with pytest.raises(Forbidden):
            await perform(runtime, ws.agent, action, segment_id=segment_id, **kwargs)
    with pytest.raises(Conflict) as taken:
        await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=PRO)
    assert taken.value.field == "name"
    other_id = await perform(runtime, ws.admin, do_create_segment, name="Other", filter=PRO)
    with pytest.raises(Conflict):
        await perform(runtime, ws.admin, do_update_segment, segment_id=other_id, name="Pro")
    # Another workspace may use the name, and can't see ours.
    other = await seed_workspace(runtime, "Other Co")
    await perform(runtime, other.admin, do_create_segment, name="Pro", filter=PRO)
    with pytest.raises(NotFound):
        await perform(runtime, other.admin, do_delete_segment, segment_id=segment_id)
    with pytest.raises(InvalidInput) as bad:
        await perform(
            runtime,
            ws.admin,
            do_update_segment,
            segment_id=segment_id,
            filter={"conditions": [PRO, {"match": "sometimes", "conditions": []}]},
        )
    assert bad.value.field == "filter.conditions[1].match"


async def test_refresh_enters_once_removes_leavers_and_reenters(
    runtime: Runtime, ws: Workspace
) -> None:
    a, b = await pro_contact(runtime, ws, "A"), await pro_contact(runtime, ws, "B")
    segment_id = await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=PRO)
    refresh = do_refresh_segment_members
    assert await perform(runtime, ws.system, refresh, segment_id=segment_id) == [a, b]
    assert await members(runtime, segment_id) == {a: T0, b: T0}
    # Nothing changed, nobody enters.
    assert await perform(runtime, ws.system, refresh, segment_id=segment_id) == []

    runtime.clock.advance(hours=1)  # type: ignore[attr-defined]
    await perform(runtime, ws.admin, do_update_contact, contact_id=a, attributes={"plan": "free"})
    c = await pro_contact(runtime, ws, "C")
    assert await perform(runtime, ws.system, refresh, segment_id=segment_id) == [c]
    later = T0.replace(hour=T0.hour + 1)
    assert await members(runtime, segment_id) == {b: T0, c: later}

    # A comes back: it enters again, as of now.
    runtime.clock.advance(hours=1)  # type: ignore[attr-defined]
    await perform(runtime, ws.admin, do_update_contact, contact_id=a, attributes={"plan": "pro"})
    assert await perform(runtime, ws.system, refresh, segment_id=segment_id) == [a]
    assert (await members(runtime, segment_id))[a] == T0.replace(hour=T0.hour + 2)

    # Merged away: no longer a member.
    await perform(runtime, ws.admin, do_merge_contacts, contact_id=a, other_id=b)
    assert await perform(runtime, ws.system, refresh, segment_id=segment_id) == []
    assert set(await members(runtime, segment_id)) == {a, c}

    # Changing the filter keeps members; the next refresh diffs.
    await perform(
        runtime,
        ws.admin,
        do_update_segment,
        segment_id=segment_id,
        filter={"conditions": [{"attribute": "plan", "op": "exists"}]},
    )
    assert await perform(runtime, ws.system, refresh, segment_id=segment_id) == []


async def test_refresh_is_sealed_to_the_workspace(runtime: Runtime, ws: Workspace) -> None:
    other = await seed_workspace(runtime, "Other Co")
    ours = await pro_contact(runtime, ws, "Ours")
    await pro_contact(runtime, other, "Theirs")
    segment_id = await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=PRO)
    with pytest.raises(NotFound):
        await perform(runtime, other.system, do_refresh_segment_members, segment_id=segment_id)
    assert await perform(runtime, ws.system, do_refresh_segment_members, segment_id=segment_id) == [
        ours
    ]


async def test_two_refreshes_at_once_enter_each_contact_once(
    runtime: Runtime, ws: Workspace
) -> None:
    ids = [await pro_contact(runtime, ws, f"P{i}") for i in range(5)]
    segment_id = await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=PRO)
    first, second = await asyncio.gather(
        perform(runtime, ws.system, do_refresh_segment_members, segment_id=segment_id),
        perform(runtime, ws.system, do_refresh_segment_members, segment_id=segment_id),
    )
    assert sorted(first + second) == ids
    assert set(await members(runtime, segment_id)) == set(ids)


async def test_refresh_walks_more_than_one_chunk(
    runtime: Runtime, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_actions, "REFRESH_CHUNK", 2)
    ids = [await pro_contact(runtime, ws, f"P{i}") for i in range(5)]
    segment_id = await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=PRO)
    assert (
        await perform(runtime, ws.system, do_refresh_segment_members, segment_id=segment_id) == ids
    )
    for cid in ids[::2]:
        await perform(
            runtime, ws.admin, do_update_contact, contact_id=cid, attributes={"plan": None}
        )
    assert (
        await perform(runtime, ws.system, do_refresh_segment_members, segment_id=segment_id) == []
    )
    assert set(await members(runtime, segment_id)) == set(ids[1::2])
