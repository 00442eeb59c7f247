"""Creating, editing and switching touchpoints: admins only, names unique,
references checked, steps kept per version, archive cancels."""

from __future__ import annotations

import pytest

from server.actions.context import perform
from server.actions.touchpoints import (
    do_create_touchpoint,
    do_set_touchpoint_status,
    do_update_touchpoint,
)
from server.domain.errors import Conflict, Forbidden, InvalidInput
from server.domain.touchpoints import TouchpointSpec, TouchStatus, parse_touchpoint
from server.queries.touchpoints import (
    list_touchpoints,
    live_touchpoints,
    steps_of,
    touchpoint_detail,
    touchpoint_spec,
)
from server.runtime import Runtime
from tests.support import Workspace, events_since, last_event_id
from tests.touchpoints.support import (
    cart_reminder,
    decisions_of,
    episodes_of,
    make_touchpoint,
    start,
    step,
)


async def test_an_admin_creates_a_touchpoint_that_reads_back(
    runtime: Runtime, ws: Workspace
) -> None:
    spec = parse_touchpoint(cart_reminder(priority=70, holdout_percent=10))
    before = await last_event_id(runtime)
    tp = await perform(runtime, ws.admin, do_create_touchpoint, spec=spec, seed="abandoned_cart")
    async with runtime.db.read() as conn:
        row, read = await touchpoint_spec(conn, ws.id, tp)
    assert read == spec
    assert (row.status, row.version, row.seed) == ("draft", 1, "abandoned_cart")
    assert row.trigger_key == "contact_event:cart_updated"
    [(kind, payload)] = await events_since(runtime, before)
    assert kind == "touchpoint.created"
    assert (payload["touchpoint_id"], payload["status"], payload["seed"]) == (
        tp,
        "draft",
        "abandoned_cart",
    )


async def test_only_admins_write_touchpoints(runtime: Runtime, ws: Workspace) -> None:
    spec = parse_touchpoint(cart_reminder())
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_create_touchpoint, spec=spec)
    tp = await make_touchpoint(runtime, ws, cart_reminder(), live=False)
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_update_touchpoint, touchpoint_id=tp, spec=spec)
    with pytest.raises(Forbidden):
        await perform(
            runtime,
            ws.agent,
            do_set_touchpoint_status,
            touchpoint_id=tp,
            status=TouchStatus.LIVE,
        )


async def test_names_are_unique_in_the_workspace(runtime: Runtime, ws: Workspace) -> None:
    await make_touchpoint(runtime, ws, cart_reminder())
    other = await make_touchpoint(runtime, ws, cart_reminder(name="Other"))
    with pytest.raises(Conflict) as caught:
        await make_touchpoint(runtime, ws, cart_reminder())
    assert caught.value.field == "name"
    with pytest.raises(Conflict) as caught:
        await perform(
            runtime,
            ws.admin,
            do_update_touchpoint,
            touchpoint_id=other,
            spec=parse_touchpoint(cart_reminder()),
        )
    assert caught.value.field == "name"
    # Keeping its own name is no clash.
    await perform(
        runtime,
        ws.admin,
        do_update_touchpoint,
        touchpoint_id=other,
        spec=parse_touchpoint(cart_reminder(name="Other")),
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"inbox_id": 999_999}, "inbox_id"),
        # ws.inbox_id is the widget inbox: an email step can't go from it.
        ({"inbox_id": "widget"}, "steps[1].channel"),
        ({"inbox_id": "email", "steps": [step(channel="widget")]}, "steps[0].channel"),
        ({"entry_segment_id": 999_999}, "entry_segment_id"),
        ({"trigger": {"kind": "segment_entry", "segment_id": 999_999}}, "trigger.segment_id"),
    ],
)
async def test_references_must_exist_and_fit(
    runtime: Runtime, ws: Workspace, overrides: dict[str, object], field: str
) -> None:
    inboxes = {"widget": ws.inbox_id, "email": ws.other_inbox_id}
    if isinstance(overrides.get("inbox_id"), str):
        overrides = {**overrides, "inbox_id": inboxes[str(overrides["inbox_id"])]}
    steps = [step(channel="widget"), step(channel="email")]
    body = cart_reminder(**{"steps": steps, **overrides})
    with pytest.raises(InvalidInput) as caught:
        await perform(runtime, ws.admin, do_create_touchpoint, spec=parse_touchpoint(body))
    assert caught.value.field == field


async def test_a_matching_inbox_is_taken(runtime: Runtime, ws: Workspace) -> None:
    body = cart_reminder(inbox_id=ws.other_inbox_id, steps=[step(channel="email")])
    tp = await make_touchpoint(runtime, ws, body)
    async with runtime.db.read() as conn:
        row, _ = await touchpoint_spec(conn, ws.id, tp)
    assert row.inbox_id == ws.other_inbox_id


async def test_templates_are_checked_before_anything_is_written(
    runtime: Runtime, ws: Workspace
) -> None:
    seen: list[TouchpointSpec] = []

    def refuse(spec: TouchpointSpec) -> None:
        seen.append(spec)
        raise InvalidInput("steps[0].variants[0].body: line 1: bad tag", field="x")

    spec = parse_touchpoint(cart_reminder())
    with pytest.raises(InvalidInput):
        await perform(runtime, ws.admin, do_create_touchpoint, spec=spec, validate_templates=refuse)
    assert seen == [spec]
    async with runtime.db.read() as conn:
        assert await list_touchpoints(conn, ws.id) == []


async def test_an_edit_is_a_new_version_beside_the_old_steps(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder(steps=[step("1h"), step("2h")]))
    new_spec = parse_touchpoint(cart_reminder(name="Cart v2", steps=[step("3h")]))
    before = await last_event_id(runtime)
    version = await perform(
        runtime, ws.admin, do_update_touchpoint, touchpoint_id=tp, spec=new_spec
    )
    assert version == 2
    async with runtime.db.read() as conn:
        row, spec = await touchpoint_spec(conn, ws.id, tp)
        old, new = await steps_of(conn, tp, 1), await steps_of(conn, tp, 2)
    assert spec == new_spec
    assert (row.version, row.status, row.name) == (2, "live", "Cart v2")
    assert [s.delay for s in old] == [{"after": "1h"}, {"after": "2h"}]
    assert [s.delay for s in new] == [{"after": "3h"}]
    [(kind, payload)] = await events_since(runtime, before)
    assert (kind, payload["version"], payload["name"]) == ("touchpoint.updated", 2, "Cart v2")


async def test_live_touchpoints_are_found_by_trigger_key(runtime: Runtime, ws: Workspace) -> None:
    cart = await make_touchpoint(runtime, ws, cart_reminder())
    await make_touchpoint(runtime, ws, cart_reminder(name="Draft"), live=False)
    order = await make_touchpoint(
        runtime,
        ws,
        cart_reminder(
            name="Thanks", trigger={"kind": "contact_event", "name": "order_placed"}, exit_rules=[]
        ),
    )
    async with runtime.db.read() as conn:
        found = await live_touchpoints(
            conn, ws.id, ["contact_event:cart_updated", "contact_event:order_placed"]
        )
        assert [tp.id for tp in found] == [cart, order]
        assert await live_touchpoints(conn, ws.id, ["event:contact.created"]) == []
        assert await live_touchpoints(conn, ws.id + 1, ["contact_event:cart_updated"]) == []


async def test_archiving_ends_episodes_and_cancels_their_decisions(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    await start(runtime, ws, tp, {"cart_id": "c-1"})
    await start(runtime, ws, tp, {"cart_id": "c-2"})
    before = await last_event_id(runtime)
    await perform(
        runtime, ws.admin, do_set_touchpoint_status, touchpoint_id=tp, status=TouchStatus.ARCHIVED
    )
    assert {(e.state, e.end_reason) for e in await episodes_of(runtime, tp)} == {
        ("exited", "touchpoint archived")
    }
    assert {(d.state, d.reason) for d in await decisions_of(runtime, tp)} == {
        ("cancelled", "touchpoint archived")
    }
    kinds = sorted(kind for kind, _ in await events_since(runtime, before))
    assert kinds == ["decision.cancelled"] * 2 + ["episode.ended"] * 2 + ["touchpoint.updated"]


async def test_pausing_leaves_decisions_pending(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    await start(runtime, ws, tp, {"cart_id": "c-1"})
    await perform(
        runtime, ws.admin, do_set_touchpoint_status, touchpoint_id=tp, status=TouchStatus.PAUSED
    )
    [decision] = await decisions_of(runtime, tp)
    assert decision.state == "scheduled"
    [episode] = await episodes_of(runtime, tp)
    assert episode.state == "active"
    async with runtime.db.read() as conn:
        assert await live_touchpoints(conn, ws.id, ["contact_event:cart_updated"]) == []


async def test_list_and_detail_count_decisions_by_state_and_reason(
    runtime: Runtime, ws: Workspace
) -> None:
    birthday = {"delay": {"relative_to": "birthday", "offset_days": 0, "at_local": "09:00"}}
    tp = await make_touchpoint(runtime, ws, cart_reminder(steps=[{**step(), **birthday}, step()]))
    idle = await make_touchpoint(runtime, ws, cart_reminder(name="Idle"))
    await start(runtime, ws, tp, {"cart_id": "c-1"})
    await start(runtime, ws, tp, {"cart_id": "c-2"})
    async with runtime.db.read() as conn:
        listed = await list_touchpoints(conn, ws.id)
        detail = await touchpoint_detail(conn, ws.id, tp)
    assert [item["id"] for item in listed] == [idle, tp]
    counts = {
        "states": {"scheduled": 2, "skipped": 2},
        "skipped": {"no birthday on the contact": 2},
    }
    assert listed[1]["counts"] == counts
    assert listed[0]["counts"] == {"states": {}, "skipped": {}}
    assert detail["counts"] == counts
    assert detail["status"] == "live"
