"""The guards of the claim, each with data that would be sent without it,
in SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.email_bounces import do_unsubscribe_email, suppress_address
from server.actions.messages import do_receive_message
from server.domain.values import IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, fetch_all
from tests.touchpoints.claim_support import (
    clock,
    contact,
    decision,
    decisions_of,
    email_step,
    ledger,
    make_touchpoint,
    process,
    settings,
    start,
    widget_step,
)


async def _consent(runtime: Runtime, ws: Workspace, cid: int, topic: str, state: str) -> None:
    async with runtime.db.write() as conn:
        await conn.execute(
            t.consents.insert().values(
                workspace_id=ws.id,
                contact_id=cid,
                channel="email",
                topic=topic,
                state=state,
                source="test",
                at=runtime.clock.now(),
            )
        )


async def _messages_of(runtime: Runtime, cid: int) -> list[Any]:
    return await fetch_all(runtime, sa.select(t.messages).where(t.messages.c.contact_id == cid))


async def test_a_decision_later_than_its_max_lateness_expires_with_how_late(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, steps=[email_step(), email_step()])
    cid = await contact(runtime, ws, "ann@shop.test")
    now = runtime.clock.now()
    late = await start(runtime, tp, cid, due_at=now - timedelta(hours=7, minutes=12))
    in_time = await start(runtime, tp, cid, key="cart:2", due_at=now - timedelta(hours=5))

    batch = await process(runtime)

    row = await decision(runtime, late.decision_id)
    assert (row.state, row.reason) == ("expired", "late by 7 h 12 min; at most 6 h")
    assert (await decision(runtime, in_time.decision_id)).state == "sending"
    assert batch.count("expired") == 1
    # The sequence goes on after an expired step.
    assert [d.state for d in await decisions_of(runtime, late.episode_id)] == [
        "expired",
        "scheduled",
    ]


async def test_the_holdout_is_skipped_but_walks_the_same_sequence(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, steps=[email_step(), email_step()])
    cid = await contact(runtime, ws, "ann@shop.test")
    started = await start(runtime, tp, cid, arm="holdout")

    await process(runtime)

    first, second = await decisions_of(runtime, started.episode_id)
    assert (first.state, first.reason) == ("skipped", "holdout")
    assert second.state == "scheduled"
    assert await _messages_of(runtime, cid) == []
    assert await fetch_all(runtime, sa.select(t.touch_ledger)) == []


@pytest.mark.parametrize(
    ("kind", "mode", "consent", "expected"),
    [
        ("marketing", "opt_out", None, ("sending", None)),
        ("marketing", "opt_out", "withdrawn", ("skipped", "unsubscribed")),
        ("marketing", "opt_in", None, ("skipped", "no marketing consent")),
        ("marketing", "opt_in", "granted", ("sending", None)),
        ("service", "opt_in", None, ("sending", None)),
        ("service", "opt_out", "withdrawn", ("skipped", "unsubscribed")),
        ("transactional", "opt_in", "withdrawn", ("sending", None)),
    ],
)
async def test_consent_by_kind_and_the_workspace_mode(
    runtime: Runtime,
    ws: Workspace,
    kind: str,
    mode: str,
    consent: str | None,
    expected: tuple[str, str | None],
) -> None:
    await settings(runtime, ws, {"consent": mode})
    tp = await make_touchpoint(runtime, ws, kind=kind)
    cid = await contact(runtime, ws, "ann@shop.test")
    if consent is not None:
        await _consent(runtime, ws, cid, kind, "granted")
        clock(runtime).advance(seconds=1)
        await _consent(runtime, ws, cid, kind, consent)
    started = await start(runtime, tp, cid)

    await process(runtime)

    row = await decision(runtime, started.decision_id)
    assert (row.state, row.reason) == expected


async def test_unreachable_addresses_are_skipped_with_why(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws)
    nobody = await contact(runtime, ws, None)
    bounced = await contact(runtime, ws, "gone@shop.test")
    unsubscribed = await contact(runtime, ws, "quiet@shop.test")
    await perform(
        runtime,
        ws.system,
        suppress_address,
        inbox_id=None,
        address="gone@shop.test",
        reason="permanent bounce: 550 no such user",
    )
    await perform(runtime, ws.system, do_unsubscribe_email, address="quiet@shop.test")
    ids = [(await start(runtime, tp, c)).decision_id for c in (nobody, bounced, unsubscribed)]

    await process(runtime)

    rows = [await decision(runtime, i) for i in ids]
    assert [(r.state, r.reason) for r in rows] == [
        ("skipped", "no email address"),
        ("skipped", "suppressed: permanent bounce: 550 no such user"),
        ("skipped", "unsubscribed"),
    ]


async def test_caps_count_touches_of_every_touchpoint_and_channel(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    # Another touchpoint reached the contact in the widget 14 hours ago.
    await ledger(runtime, ws, cid, kind="marketing", channel="widget", ago=timedelta(hours=14))
    tp = await make_touchpoint(runtime, ws, max_lateness=24 * 3600)
    started = await start(runtime, tp, cid)

    await process(runtime)

    row = await decision(runtime, started.decision_id)
    # 1 per 16 h: the window reopens 16 h after the earlier touch.
    assert (row.state, row.reason) == ("deferred", "frequency cap")
    assert row.run_at == runtime.clock.now() + timedelta(hours=2)
    # A service touch has caps of its own.
    service = await make_touchpoint(runtime, ws, name="Chase", kind="service")
    chase = await start(runtime, service, cid, key="chase:1")
    await process(runtime)
    assert (await decision(runtime, chase.decision_id)).state == "sending"
    # When the window reopens the deferred touch goes.
    clock(runtime).advance(hours=2)
    await process(runtime)
    assert (await decision(runtime, started.decision_id)).state == "sending"


async def test_the_weekly_cap_and_a_cap_past_the_max_lateness_skips(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    for days, channel in ((1, "email"), (3, "widget"), (5, "email")):
        await ledger(runtime, ws, cid, kind="marketing", channel=channel, ago=timedelta(days=days))
    tp = await make_touchpoint(runtime, ws)  # at most 6 h late
    started = await start(runtime, tp, cid)

    await process(runtime)

    # 3 per 7 days: it reopens in 2 days, long after the 6 h it may wait.
    row = await decision(runtime, started.decision_id)
    assert (row.state, row.reason) == ("skipped", "frequency cap")


async def test_competing_decisions_go_by_priority_not_row_order(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    low = await make_touchpoint(runtime, ws, name="Newsletter", priority=10)
    high = await make_touchpoint(runtime, ws, name="Cart", priority=90)
    now = runtime.clock.now()
    # The low-priority one is older and due earlier: row order favours it.
    first = await start(runtime, low, cid, key="n:1", due_at=now - timedelta(minutes=5))
    second = await start(runtime, high, cid, key="cart:1", due_at=now - timedelta(minutes=1))

    await process(runtime)

    assert (await decision(runtime, second.decision_id)).state == "sending"
    loser = await decision(runtime, first.decision_id)
    # The cap stays closed 16 h, past what it may wait: skipped.
    assert (loser.state, loser.reason) == ("skipped", "frequency cap")


@pytest.mark.parametrize(
    ("now", "zone", "quiet"),
    [
        # New York switched to EDT (UTC-4) on 8 March: 11:30 UTC is 07:30 there.
        (datetime(2026, 3, 9, 11, 30, tzinfo=UTC), "America/New_York", True),
        (datetime(2026, 3, 9, 12, 30, tzinfo=UTC), "America/New_York", False),
        # Berlin keeps CET (UTC+1) until 29 March: 06:30 UTC is 07:30 there...
        (datetime(2026, 3, 27, 6, 30, tzinfo=UTC), "Europe/Berlin", True),
        # ...and after the switch to CEST (UTC+2) the same UTC time is 08:30.
        (datetime(2026, 3, 30, 6, 30, tzinfo=UTC), "Europe/Berlin", False),
    ],
)
async def test_quiet_hours_in_the_contacts_zone_across_dst(
    runtime: Runtime, ws: Workspace, now: datetime, zone: str, quiet: bool
) -> None:
    clock(runtime).advance(seconds=(now - runtime.clock.now()).total_seconds())
    cid = await contact(runtime, ws, "ann@shop.test", attributes={"timezone": zone})
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, cid)

    await process(runtime)

    row = await decision(runtime, started.decision_id)
    if not quiet:
        assert row.state == "sending"
        return
    assert (row.state, row.reason) == ("deferred", "quiet hours")
    # To 08:00 local (with at most an hour's jitter), not 08:00 UTC.
    local_end = datetime.combine(now.date(), datetime.min.time().replace(hour=8))
    end = local_end.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert end <= row.run_at < end + timedelta(hours=1)
    # Not counted as lateness: at the window's end it goes.
    clock(runtime).advance(seconds=(row.run_at - runtime.clock.now()).total_seconds())
    await process(runtime)
    assert (await decision(runtime, started.decision_id)).state == "sending"


async def test_a_step_that_waits_for_business_hours_is_deferred_to_the_opening(
    runtime: Runtime, ws: Workspace
) -> None:
    async with runtime.db.write() as conn:
        await conn.execute(
            t.inboxes.update()
            .where(t.inboxes.c.id == ws.other_inbox_id)
            .values(
                settings={
                    "business_hours": {
                        "timezone": "UTC",
                        "weekly": {"mon": [["10:00", "17:00"]]},
                    }
                }
            )
        )
    cid = await contact(runtime, ws, "ann@shop.test")
    tp = await make_touchpoint(runtime, ws, kind="service", steps=[email_step(business_hours=True)])
    started = await start(runtime, tp, cid)  # Monday 09:00 UTC

    await process(runtime)

    row = await decision(runtime, started.decision_id)
    assert (row.state, row.reason) == ("deferred", "business hours")
    assert row.run_at == runtime.clock.now() + timedelta(hours=1)


async def test_paused_touchpoints_wait_and_archived_ones_cancel(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    paused = await make_touchpoint(runtime, ws, name="Paused", status="paused")
    archived = await make_touchpoint(runtime, ws, name="Archived", status="archived")
    waiting = await start(runtime, paused, cid, key="p")
    gone = await start(runtime, archived, cid, key="a")

    batch = await process(runtime)

    assert batch.claimed == 1
    assert (await decision(runtime, waiting.decision_id)).state == "scheduled"
    row = await decision(runtime, gone.decision_id)
    assert (row.state, row.reason) == ("cancelled", "touchpoint archived")


async def test_an_order_the_hook_missed_cancels_the_cart_reminder_in_the_claim(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    tp = await make_touchpoint(
        runtime,
        ws,
        exit_rules=[
            {"kind": "contact_event", "name": "order_placed", "match": {"cart_id": "{cart_id}"}}
        ],
    )
    other_cart = await start(runtime, tp, cid, key="cart:2", context={"cart_id": "2"})
    this_cart = await start(runtime, tp, cid, key="cart:1", context={"cart_id": "1"})
    # The order commits while the reminder is due (written here without
    # the trigger hook, which would have cancelled it: the claim checks
    # again).
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contact_events.insert().values(
                workspace_id=ws.id,
                contact_id=cid,
                name="order_placed",
                properties={"cart_id": "1", "total": 30},
                created_at=runtime.clock.now(),
            )
        )

    await process(runtime)

    row = await decision(runtime, this_cart.decision_id)
    assert (row.state, row.reason) == ("cancelled", "order_placed")
    episode = (
        await fetch_all(
            runtime, sa.select(t.episodes).where(t.episodes.c.id == this_cart.episode_id)
        )
    )[0]
    assert (episode.state, episode.end_reason) == ("exited", "order_placed")
    assert (await decision(runtime, other_cart.decision_id)).state == "sending"


async def test_a_customer_reply_ends_a_chase_in_the_claim(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(
        runtime,
        ws,
        kind="service",
        inbox_id=ws.inbox_id,
        steps=[widget_step()],
        trigger={"kind": "no_customer_reply", "wait": 3600},
    )
    m = t.messages.c
    [first] = await fetch_all(
        runtime, sa.select(m.id).where(m.conversation_id == ws.conversation_id)
    )
    started = await start(
        runtime,
        tp,
        ws.contact_id,
        key=f"awaiting_reply:{first.id}",
        context={"message_id": first.id},
        conversation_id=ws.conversation_id,
        entered_at=runtime.clock.now() - timedelta(minutes=1),
    )
    await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text="Found it, thanks",
    )

    await process(runtime)

    row = await decision(runtime, started.decision_id)
    assert (row.state, row.reason) == ("cancelled", "customer replied")


async def test_widget_touches_need_a_session_and_are_sent_at_once(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, inbox_id=ws.inbox_id, steps=[widget_step()])
    visitor = await contact(runtime, ws, None, name="Vic")
    stranger = await contact(runtime, ws, None, name="Stan")
    async with runtime.db.write() as conn:
        await conn.execute(
            t.visitor_sessions.insert().values(
                workspace_id=ws.id,
                inbox_id=ws.inbox_id,
                contact_id=visitor,
                proven_contact_id=visitor,
                token_hash=secrets.token_hex(32),
                verified=False,
                created_at=runtime.clock.now(),
                last_seen_at=runtime.clock.now(),
            )
        )
    reached = await start(runtime, tp, visitor, key="v")
    unreached = await start(runtime, tp, stranger, key="s")

    batch = await process(runtime)

    row = await decision(runtime, reached.decision_id)
    assert row.state == "sent" and row.channel_message_id == str(row.message_id)
    [msg] = await _messages_of(runtime, visitor)
    assert msg.text == "Need help with Vic's cart?" and msg.inbox_id == ws.inbox_id
    skipped = await decision(runtime, unreached.decision_id)
    assert (skipped.state, skipped.reason) == ("skipped", "no widget session")
    assert batch.count("sent") == 1 and batch.count("skipped") == 1


async def test_a_template_error_fails_that_decision_and_the_batch_goes_on(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test")
    broken = await make_touchpoint(
        runtime, ws, name="Broken", steps=[email_step(body="{{ contact.name | no_such_filter }}")]
    )
    fine = await make_touchpoint(runtime, ws, name="Fine", kind="transactional")
    bad = await start(runtime, broken, cid, key="b")
    good = await start(runtime, fine, cid, key="g")

    batch = await process(runtime)

    row = await decision(runtime, bad.decision_id)
    assert row.state == "failed" and row.reason.startswith("template: ")
    assert (await decision(runtime, good.decision_id)).state == "sending"
    assert batch.count("failed") == 1


@pytest.mark.postgres
async def test_postgres_an_exit_holding_the_episode_leaves_the_decision_for_later(
    runtime: Runtime, ws: Workspace
) -> None:
    if runtime.db.dialect != "postgresql":
        return
    cid = await contact(runtime, ws, "ann@shop.test")
    tp = await make_touchpoint(runtime, ws)
    started = await start(runtime, tp, cid)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def order_placed() -> None:
        # The order's transaction ends the episode and cancels its step,
        # but has not committed yet when the claim runs.
        async with runtime.db.write() as conn:
            await conn.execute(
                t.episodes.update()
                .where(t.episodes.c.id == started.episode_id)
                .values(state="exited", end_reason="order placed")
            )
            await conn.execute(
                t.decisions.update()
                .where(t.decisions.c.id == started.decision_id)
                .values(state="cancelled", reason="order placed")
            )
            holding.set()
            await release.wait()

    task = asyncio.create_task(order_placed())
    await holding.wait()
    batch = await process(runtime)
    release.set()
    await task

    assert batch.claimed == 0
    row = await decision(runtime, started.decision_id)
    assert (row.state, row.reason) == ("cancelled", "order placed")
    assert await _messages_of(runtime, cid) == []
