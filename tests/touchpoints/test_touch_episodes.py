"""Episodes and their decisions: started once per business object, the
first step decided with them, steps decided once, ended once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.actions.contacts import do_create_contact, do_update_contact
from server.actions.context import ActionContext, perform
from server.actions.segments import do_create_segment, do_delete_segment
from server.actions.touch_episodes import end_episode, schedule_step
from server.actions.touch_settings import do_update_touch_settings
from server.actions.touchpoints import do_set_touchpoint_status, do_update_touchpoint
from server.domain.errors import Conflict
from server.domain.touch_guards import bucket_of, in_holdout
from server.domain.touchpoints import EpisodeState, TouchStatus, parse_touchpoint
from server.queries.records import Episode, load
from server.queries.touch_contacts import contact_zone
from server.queries.touchpoints import steps_of
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_one, last_event_id
from tests.touchpoints.support import (
    cart_reminder,
    decisions_of,
    episodes_of,
    make_touchpoint,
    start,
    started,
    step,
)


async def test_an_episode_starts_with_its_first_decision(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    before = await last_event_id(runtime)
    episode_id = await start(runtime, ws, tp, {"cart_id": "c-17", "items": [1, 2]})
    assert episode_id is not None
    [episode] = await episodes_of(runtime, tp)
    assert (episode.key, episode.state, episode.version) == ("cart:c-17", "active", 1)
    assert episode.context == {"cart_id": "c-17", "items": [1, 2]}
    [decision] = await decisions_of(runtime, tp)
    assert decision.episode_id == episode_id
    assert (decision.state, decision.position, decision.channel) == ("scheduled", 0, "email")
    assert (decision.kind, decision.priority) == ("marketing", 50)
    assert decision.due_at == decision.run_at == T0 + timedelta(hours=4)
    assert decision.idempotency_key == f"ep{episode_id}:step0"
    types = [kind for kind, _ in await events_since(runtime, before)]
    assert types == ["episode.started", "decision.scheduled"]


async def test_the_same_key_starts_nothing_twice(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    assert await start(runtime, ws, tp, {"cart_id": "c-17"}) is not None
    before = await last_event_id(runtime)
    assert await start(runtime, ws, tp, {"cart_id": "c-17"}) is None
    assert await events_since(runtime, before) == []
    assert await start(runtime, ws, tp, {"cart_id": "c-18"}) is not None
    assert [e.key for e in await episodes_of(runtime, tp)] == ["cart:c-17", "cart:c-18"]
    assert len(await decisions_of(runtime, tp)) == 2


async def test_a_key_without_its_value_starts_nothing(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    assert await start(runtime, ws, tp, {"other": 1}) is None
    assert await start(runtime, ws, tp, {"cart_id": ""}) is None
    assert await episodes_of(runtime, tp) == []


async def test_reentry_once_is_one_episode_ever(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder(reentry="once"))
    assert await start(runtime, ws, tp, {"cart_id": "c-1"}) is not None
    assert await start(runtime, ws, tp, {"cart_id": "c-2"}) is None
    assert [e.key for e in await episodes_of(runtime, tp)] == ["once"]


async def test_reentry_cooldown_waits_since_the_last_entry(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder(reentry="cooldown", cooldown="2d"))
    assert await start(runtime, ws, tp, {"cart_id": "c-1"}) is not None
    runtime.clock.advance(days=1)  # type: ignore[attr-defined]
    assert await start(runtime, ws, tp, {"cart_id": "c-2"}) is None
    runtime.clock.advance(days=1, seconds=1)  # type: ignore[attr-defined]
    assert await start(runtime, ws, tp, {"cart_id": "c-3"}) is not None
    assert [e.key for e in await episodes_of(runtime, tp)] == ["cart:c-1", "cart:c-3"]


async def test_the_arm_is_sticky_per_contact(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder(holdout_percent=50))
    contacts = [ws.contact_id]
    for i in range(7):
        contacts.append(await perform(runtime, ws.system, do_create_contact, name=f"C{i}"))
    for contact_id in contacts:
        for cart in ("a", "b"):
            await start(runtime, ws, tp, {"cart_id": f"{contact_id}{cart}"}, contact_id=contact_id)
    episodes = await episodes_of(runtime, tp)
    assert len(episodes) == 16
    for episode in episodes:
        bucket = bucket_of(tp, episode.contact_id)
        expected = "holdout" if in_holdout(bucket, 50) else "treatment"
        assert (episode.bucket, episode.arm) == (bucket, expected)
    # Both arms occur among eight contacts (fixed ids, so this is fixed too),
    # and a holdout episode still gets its decision: it is skipped when due.
    assert {e.arm for e in episodes} == {"holdout", "treatment"}
    assert len(await decisions_of(runtime, tp)) == 16


async def _schedule(ctx: ActionContext, *, episode_id: int, position: int) -> int | None:
    row = (await ctx.conn.execute(sa.select(t.episodes).where(t.episodes.c.id == episode_id))).one()
    return await schedule_step(ctx, episode=load(Episode, row), position=position, anchor=ctx.now)


async def _end(ctx: ActionContext, *, episode_id: int, reason: str) -> bool:
    return await end_episode(ctx, episode_id=episode_id, state=EpisodeState.EXITED, reason=reason)


async def test_a_step_is_decided_once(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder(steps=[step("1h"), step("1d")]))
    episode_id = await started(runtime, ws, tp, {"cart_id": "c-1"})
    first = await perform(runtime, ws.system, _schedule, episode_id=episode_id, position=1)
    before = await last_event_id(runtime)
    again = await perform(runtime, ws.system, _schedule, episode_id=episode_id, position=1)
    assert first == again is not None
    assert await events_since(runtime, before) == []
    decisions = await decisions_of(runtime, tp)
    assert [d.position for d in decisions] == [0, 1]
    assert decisions[1].due_at == T0 + timedelta(days=1)


async def test_past_the_last_step_the_episode_is_done(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    episode_id = await started(runtime, ws, tp, {"cart_id": "c-1"})
    assert await perform(runtime, ws.system, _schedule, episode_id=episode_id, position=1) is None
    [episode] = await episodes_of(runtime, tp)
    assert (episode.state, episode.end_reason) == ("done", "all steps done")


async def test_a_missing_date_skips_the_step_and_decides_the_next(
    runtime: Runtime, ws: Workspace
) -> None:
    birthday = {"delay": {"relative_to": "birthday", "offset_days": 0, "at_local": "09:00"}}
    steps = [{**step(), **birthday}, step("2h")]
    tp = await make_touchpoint(runtime, ws, cart_reminder(steps=steps))
    await start(runtime, ws, tp, {"cart_id": "c-1"})
    skipped, scheduled = await decisions_of(runtime, tp)
    assert (skipped.position, skipped.state, skipped.reason) == (
        0,
        "skipped",
        "no birthday on the contact",
    )
    assert (scheduled.position, scheduled.state) == (1, "scheduled")
    assert scheduled.due_at == T0 + timedelta(hours=2)


async def test_a_date_step_is_due_on_the_day_in_the_contacts_zone(
    runtime: Runtime, ws: Workspace
) -> None:
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"birthday": "1990-01-20", "timezone": "America/New_York"},
    )
    birthday = {"delay": {"relative_to": "birthday", "offset_days": -1, "at_local": "09:00"}}
    tp = await make_touchpoint(runtime, ws, cart_reminder(steps=[{**step(), **birthday}]))
    await start(runtime, ws, tp, {"cart_id": "c-1"})
    [decision] = await decisions_of(runtime, tp)
    # 09:00 in New York on 19 January (EST, UTC-5).
    assert decision.due_at == T0.replace(day=19, hour=14)


async def test_the_zone_comes_from_the_contact_then_the_widget_then_the_workspace(
    runtime: Runtime, ws: Workspace
) -> None:
    async def zone() -> str:
        async with runtime.db.read() as conn:
            return str(await contact_zone(conn, ws.id, ws.contact_id))

    assert await zone() == "UTC"
    # The workspace's zone is the one admins set on the touchpoint settings.
    await perform(runtime, ws.admin, do_update_touch_settings, changes={"timezone": "Europe/Paris"})
    assert await zone() == "Europe/Paris"
    async with runtime.db.write() as conn:
        await conn.execute(
            t.visitor_sessions.insert().values(
                workspace_id=ws.id,
                inbox_id=ws.inbox_id,
                contact_id=ws.contact_id,
                proven_contact_id=ws.contact_id,
                token_hash="0" * 64,
                verified=False,
                created_at=T0,
                last_seen_at=T0,
                timezone="Asia/Tokyo",
            )
        )
    assert await zone() == "Asia/Tokyo"
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"timezone": "Not/AZone"},
    )
    assert await zone() == "Asia/Tokyo"
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"timezone": "America/Chicago"},
    )
    assert await zone() == "America/Chicago"


async def test_an_episode_ends_once_and_cancels_what_it_had_pending(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    episode_id = await start(runtime, ws, tp, {"cart_id": "c-1"})
    assert episode_id is not None
    before = await last_event_id(runtime)
    assert await perform(runtime, ws.system, _end, episode_id=episode_id, reason="order placed")
    assert not await perform(runtime, ws.system, _end, episode_id=episode_id, reason="again")
    [episode] = await episodes_of(runtime, tp)
    assert (episode.state, episode.end_reason, episode.ended_at) == ("exited", "order placed", T0)
    [decision] = await decisions_of(runtime, tp)
    assert (decision.state, decision.reason) == ("cancelled", "order placed")
    events = await events_since(runtime, before)
    assert [kind for kind, _ in events] == ["decision.cancelled", "episode.ended"]
    assert events[0][1]["reason"] == "order placed"
    assert events[1][1]["state"] == "exited"


async def test_an_edit_does_not_change_an_episode_already_started(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder(steps=[step("1h"), step("1d")]))
    old = await started(runtime, ws, tp, {"cart_id": "c-1"})
    version = await perform(
        runtime,
        ws.admin,
        do_update_touchpoint,
        touchpoint_id=tp,
        spec=parse_touchpoint(cart_reminder(steps=[step("5m", channel="email")])),
    )
    assert version == 2
    new = await started(runtime, ws, tp, {"cart_id": "c-2"})
    await perform(runtime, ws.system, _schedule, episode_id=old, position=1)
    await perform(runtime, ws.system, _schedule, episode_id=new, position=1)
    async with runtime.db.read() as conn:
        v1, v2 = await steps_of(conn, tp, 1), await steps_of(conn, tp, 2)
    assert len(v1) == 2 and len(v2) == 1
    by_episode = {(d.episode_id, d.position): d for d in await decisions_of(runtime, tp)}
    assert by_episode[(old, 0)].step_id == v1[0].id
    assert by_episode[(old, 0)].due_at == T0 + timedelta(hours=1)
    # The old episode goes on with version 1's second step...
    assert by_episode[(old, 1)].step_id == v1[1].id
    # ...the new one started under version 2, which has one step: done.
    assert by_episode[(new, 0)].step_id == v2[0].id
    assert by_episode[(new, 0)].due_at == T0 + timedelta(minutes=5)
    assert (new, 1) not in by_episode
    episode = await fetch_one(
        runtime, sa.select(t.episodes.c.state, t.episodes.c.version).where(t.episodes.c.id == new)
    )
    assert (episode.state, episode.version) == ("done", 2)


async def test_only_contacts_in_the_entry_segment_enter(runtime: Runtime, ws: Workspace) -> None:
    pro = {"conditions": [{"attribute": "plan", "op": "eq", "value": "pro"}]}
    segment_id = await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=pro)
    tp = await make_touchpoint(runtime, ws, cart_reminder(entry_segment_id=segment_id))
    assert await start(runtime, ws, tp, {"cart_id": "c-1"}) is None
    assert await episodes_of(runtime, tp) == []
    # Membership is read as the contact is now, not as last refreshed.
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"plan": "pro"},
    )
    assert await start(runtime, ws, tp, {"cart_id": "c-2"}) is not None
    assert [e.key for e in await episodes_of(runtime, tp)] == ["cart:c-2"]


async def test_a_segment_a_touchpoint_uses_is_not_deleted(runtime: Runtime, ws: Workspace) -> None:
    pro = {"conditions": [{"attribute": "plan", "op": "eq", "value": "pro"}]}
    entry = await perform(runtime, ws.admin, do_create_segment, name="Pro", filter=pro)
    target = await perform(
        runtime, ws.admin, do_create_segment, name="All", filter={"conditions": []}
    )
    tp = await make_touchpoint(runtime, ws, cart_reminder(entry_segment_id=entry))
    broadcast = {
        "name": "Holiday",
        "trigger": {"kind": "broadcast", "segment_id": target, "at_local": "2031-12-20T10:00"},
        "steps": [step(0)],
    }
    holiday = await make_touchpoint(runtime, ws, broadcast, live=False)
    for segment_id, name in ((entry, "Abandoned cart"), (target, "Holiday")):
        with pytest.raises(Conflict, match=f"'{name}'") as refused:
            await perform(runtime, ws.admin, do_delete_segment, segment_id=segment_id)
        assert refused.value.field == "segment_id"
    for touchpoint_id in (tp, holiday):
        await perform(
            runtime,
            ws.admin,
            do_set_touchpoint_status,
            touchpoint_id=touchpoint_id,
            status=TouchStatus.ARCHIVED,
        )
    await perform(runtime, ws.admin, do_delete_segment, segment_id=entry)
    await perform(runtime, ws.admin, do_delete_segment, segment_id=target)
