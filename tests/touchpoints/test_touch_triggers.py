"""Triggers and exits in the transaction of the event: a tracked cart
starts its reminder with the tracking, the order cancels it, a reply ends
the chase for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import ActionContext, perform
from server.actions.conversations import do_change_conversation_status
from server.actions.messages import do_receive_message, do_send_message
from server.actions.touch_episodes import schedule_step, start_episode
from server.actions.touch_triggers import react_to_events
from server.actions.visitors import do_track_contact_event
from server.domain.events import MessageCreated
from server.domain.json_types import JsonValue
from server.domain.values import ConversationStatus, IdentityKind
from server.queries.records import Episode, load
from server.queries.touchpoints import touchpoint_row
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import (
    T0,
    Workspace,
    events_since,
    fetch_all,
    last_event_id,
    make_runtime,
    seed_workspace,
)
from tests.touchpoints.support import (
    cart_reminder,
    decisions_of,
    episodes_of,
    make_touchpoint,
    step,
)


async def track(runtime: Runtime, ws: Workspace, name: str, **properties: JsonValue) -> int:
    event_id: int = await perform(
        runtime,
        ws.system,
        do_track_contact_event,
        contact_id=ws.contact_id,
        name=name,
        properties=dict(properties),
    )
    return event_id


async def agent_says(runtime: Runtime, ws: Workspace, text: str, **kwargs: Any) -> int:
    result = await perform(
        runtime, ws.agent, do_send_message, conversation_id=ws.conversation_id, text=text, **kwargs
    )
    return result.message_id


async def customer_says(runtime: Runtime, ws: Workspace, text: str) -> int:
    result = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text=text,
    )
    assert result.conversation_id == ws.conversation_id
    return result.message_id


def chase(**overrides: Any) -> dict[str, Any]:
    """A chase for the customer's answer, 24 h after an agent's message."""
    body: dict[str, Any] = {
        "name": "No reply chase",
        "kind": "service",
        "trigger": {"kind": "no_customer_reply", "wait": "24h"},
        "steps": [step("1h")],
    }
    return body | overrides


# -- the cart ----------------------------------------------------------------


async def test_a_tracked_cart_starts_its_reminder_in_the_same_transaction(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    before = await last_event_id(runtime)
    tracked = await track(runtime, ws, "cart_updated", cart_id="c-17", total=42)
    [episode] = await episodes_of(runtime, tp)
    assert (episode.key, episode.contact_id, episode.state) == (
        "cart:c-17",
        ws.contact_id,
        "active",
    )
    assert episode.context == {
        "cart_id": "c-17",
        "total": 42,
        "event": "cart_updated",
        "contact_id": ws.contact_id,
        "contact_event_id": tracked,
    }
    [decision] = await decisions_of(runtime, tp)
    assert (decision.state, decision.due_at) == ("scheduled", T0 + timedelta(hours=4))
    # The tracking's own perform wrote them (the rollback test below shows
    # they share its transaction).
    assert [kind for kind, _ in await events_since(runtime, before)] == [
        "contact.event_tracked",
        "episode.started",
        "decision.scheduled",
    ]


class Boom(Exception):
    pass


async def _track_then_fail(ctx: ActionContext, *, contact_id: int) -> None:
    await do_track_contact_event(
        ctx, contact_id=contact_id, name="cart_updated", properties={"cart_id": "c-1"}
    )
    raise Boom


async def _reject_after_tracking(ctx: ActionContext, *, contact_id: int) -> None:
    """Tracks, then calls the reaction itself and fails after it: what the
    reaction wrote must go with the rollback."""
    await do_track_contact_event(
        ctx, contact_id=contact_id, name="cart_updated", properties={"cart_id": "c-2"}
    )
    await react_to_events(ctx)
    assert (await ctx.conn.scalar(sa.select(sa.func.count()).select_from(t.episodes))) == 1
    raise Boom


async def test_a_failing_action_takes_the_episode_with_it(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    with pytest.raises(Boom):
        await perform(runtime, ws.system, _track_then_fail, contact_id=ws.contact_id)
    with pytest.raises(Boom):
        await perform(runtime, ws.system, _reject_after_tracking, contact_id=ws.contact_id)
    assert await episodes_of(runtime, tp) == []
    assert await decisions_of(runtime, tp) == []
    assert await fetch_all(runtime, sa.select(t.contact_events)) == []


async def test_a_replayed_cart_starts_nothing_and_a_second_cart_starts_another(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    await track(runtime, ws, "cart_updated", cart_id="c-17")
    before = await last_event_id(runtime)
    await track(runtime, ws, "cart_updated", cart_id="c-17", total=50)
    assert [kind for kind, _ in await events_since(runtime, before)] == ["contact.event_tracked"]
    await track(runtime, ws, "cart_updated", cart_id="c-18")
    assert [e.key for e in await episodes_of(runtime, tp)] == ["cart:c-17", "cart:c-18"]
    assert len(await decisions_of(runtime, tp)) == 2


async def test_the_order_of_a_cart_cancels_its_reminder_only(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    await track(runtime, ws, "cart_updated", cart_id="c-17")
    await track(runtime, ws, "cart_updated", cart_id="c-18")
    before = await last_event_id(runtime)
    await track(runtime, ws, "order_placed", cart_id="c-17", total=42)
    first, second = await episodes_of(runtime, tp)
    assert (first.state, first.end_reason) == ("exited", "exit: order_placed")
    assert second.state == "active"
    cancelled, pending = await decisions_of(runtime, tp)
    assert (cancelled.state, cancelled.reason) == ("cancelled", "exit: order_placed")
    assert pending.state == "scheduled"
    events = await events_since(runtime, before)
    assert [kind for kind, _ in events] == [
        "contact.event_tracked",
        "decision.cancelled",
        "episode.ended",
    ]
    assert events[1][1]["reason"] == "exit: order_placed"


async def test_a_trigger_where_filters_the_properties(runtime: Runtime, ws: Workspace) -> None:
    trigger = {"kind": "contact_event", "name": "cart_updated", "where": {"store": "eu"}}
    tp = await make_touchpoint(runtime, ws, cart_reminder(trigger=trigger))
    await track(runtime, ws, "cart_updated", cart_id="c-1", store="us")
    assert await episodes_of(runtime, tp) == []
    await track(runtime, ws, "cart_updated", cart_id="c-1", store="eu")
    assert len(await episodes_of(runtime, tp)) == 1


async def test_a_draft_or_paused_touchpoint_starts_nothing(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder(), live=False)
    await track(runtime, ws, "cart_updated", cart_id="c-1")
    assert await episodes_of(runtime, tp) == []


async def test_the_goal_after_a_send_ends_the_episode_as_reached(
    runtime: Runtime, ws: Workspace
) -> None:
    goal = {"name": "order_placed", "within": "3d", "match": {"cart_id": "{cart_id}"}}
    tp = await make_touchpoint(runtime, ws, cart_reminder(goal=goal))
    await track(runtime, ws, "cart_updated", cart_id="c-1")
    await track(runtime, ws, "cart_updated", cart_id="c-2")
    # The first cart's reminder went out (as the claim worker records it).
    async with runtime.db.write() as conn:
        await conn.execute(
            t.decisions.update()
            .where(t.decisions.c.idempotency_key.like("ep1:%"))
            .values(state="sent", settled_at=T0 + timedelta(hours=4))
        )
    runtime.clock.advance(hours=5)  # type: ignore[attr-defined]
    await track(runtime, ws, "order_placed", cart_id="c-1")
    await track(runtime, ws, "order_placed", cart_id="c-2")
    first, second = await episodes_of(runtime, tp)
    assert (first.state, first.end_reason) == ("goal", "goal: order_placed")
    # Nothing was sent for the second cart: its order is an exit, not a goal.
    assert (second.state, second.end_reason) == ("exited", "exit: order_placed")


async def _finish(ctx: ActionContext, *, episode_id: int) -> None:
    """What the claim worker does when the last step settled."""
    row = (await ctx.conn.execute(sa.select(t.episodes).where(t.episodes.c.id == episode_id))).one()
    await schedule_step(ctx, episode=load(Episode, row), position=1, anchor=ctx.now)


async def test_the_goal_after_the_last_step_still_counts_within_its_window(
    runtime: Runtime, ws: Workspace
) -> None:
    goal = {"name": "order_placed", "within": "2d", "match": {"cart_id": "{cart_id}"}}
    tp = await make_touchpoint(runtime, ws, cart_reminder(goal=goal))
    for cart in ("c-1", "c-2"):
        await track(runtime, ws, "cart_updated", cart_id=cart)
    async with runtime.db.write() as conn:
        await conn.execute(
            t.decisions.update().values(state="sent", settled_at=T0 + timedelta(hours=4))
        )
    for episode in await episodes_of(runtime, tp):
        await perform(runtime, ws.system, _finish, episode_id=episode.id)
    assert [e.state for e in await episodes_of(runtime, tp)] == ["done", "done"]
    runtime.clock.advance(days=1)  # type: ignore[attr-defined]
    await track(runtime, ws, "order_placed", cart_id="c-1")
    runtime.clock.advance(days=2)  # type: ignore[attr-defined]
    await track(runtime, ws, "order_placed", cart_id="c-2")
    first, second = await episodes_of(runtime, tp)
    assert (first.state, first.end_reason) == ("goal", "goal: order_placed")
    # Three days after the send: past the window, the episode stays done.
    assert (second.state, second.end_reason) == ("done", "all steps done")


# -- replies -----------------------------------------------------------------


async def test_an_agent_message_starts_a_chase_that_the_reply_cancels(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, chase())
    message_id = await agent_says(runtime, ws, "Could you send the order number?")
    [episode] = await episodes_of(runtime, tp)
    assert (episode.key, episode.conversation_id) == (
        f"awaiting_reply:{message_id}",
        ws.conversation_id,
    )
    [decision] = await decisions_of(runtime, tp)
    # The trigger's 24 h wait, then the step's own hour.
    assert decision.due_at == T0 + timedelta(hours=25)
    assert (decision.kind, decision.state) == ("service", "scheduled")
    await customer_says(runtime, ws, "It is 1234")
    [episode] = await episodes_of(runtime, tp)
    assert (episode.state, episode.end_reason) == ("exited", "customer replied")
    [decision] = await decisions_of(runtime, tp)
    assert (decision.state, decision.reason) == ("cancelled", "customer replied")


async def test_a_newer_agent_message_supersedes_the_older_chase(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, chase())
    first = await agent_says(runtime, ws, "Could you send the order number?")
    second = await agent_says(runtime, ws, "Or a photo of the parcel?")
    older, newer = await episodes_of(runtime, tp)
    assert (older.key, older.state, older.end_reason) == (
        f"awaiting_reply:{first}",
        "exited",
        "superseded by a newer reply",
    )
    assert (newer.key, newer.state) == (f"awaiting_reply:{second}", "active")
    assert [d.state for d in await decisions_of(runtime, tp)] == ["cancelled", "scheduled"]


async def test_a_private_note_starts_no_chase(runtime: Runtime, ws: Workspace) -> None:
    tp = await make_touchpoint(runtime, ws, chase())
    await agent_says(runtime, ws, "Customer seems upset", private=True)
    assert await episodes_of(runtime, tp) == []


async def test_a_customer_message_waits_for_an_agent_until_one_answers(
    runtime: Runtime, ws: Workspace
) -> None:
    body = chase(name="We are on it", trigger={"kind": "no_agent_reply", "wait": "10m"})
    tp = await make_touchpoint(runtime, ws, body)
    message_id = await customer_says(runtime, ws, "Anyone there?")
    [episode] = await episodes_of(runtime, tp)
    assert episode.key == f"awaiting_agent:{message_id}"
    [decision] = await decisions_of(runtime, tp)
    assert decision.due_at == T0 + timedelta(minutes=70)
    await agent_says(runtime, ws, "Here!")
    [episode] = await episodes_of(runtime, tp)
    assert (episode.state, episode.end_reason) == ("exited", "agent replied")


async def _automatic_mail(ctx: ActionContext, *, ws: Workspace, auto: str) -> None:
    """The message.created of an inbound mail as inbound email records it."""
    await ctx.emit(
        MessageCreated(
            workspace_id=ws.id,
            message_id=10_000 if auto == "none" else 10_001,
            conversation_id=ws.conversation_id,
            inbox_id=ws.inbox_id,
            contact_id=ws.contact_id,
            seq=99,
            direction="inbound",
            sender_kind="contact",
            sender_id=ws.contact_id,
            private=False,
            text="I am out of office",
            html=None,
            created_at=ctx.now,
            email={"auto": auto},
        )
    )


async def test_an_automatic_reply_neither_starts_nor_ends_anything(
    runtime: Runtime, ws: Workspace
) -> None:
    waits = await make_touchpoint(
        runtime, ws, chase(name="Wait", trigger={"kind": "no_agent_reply", "wait": "10m"})
    )
    chases = await make_touchpoint(runtime, ws, chase())
    await agent_says(runtime, ws, "Could you send the order number?")
    for auto in ("auto_reply", "list"):
        await perform(runtime, ws.system, _automatic_mail, ws=ws, auto=auto)
    assert await episodes_of(runtime, waits) == []
    [episode] = await episodes_of(runtime, chases)
    assert episode.state == "active"
    # The same mail from a person does both.
    await perform(runtime, ws.system, _automatic_mail, ws=ws, auto="none")
    assert [e.key for e in await episodes_of(runtime, waits)] == ["awaiting_agent:10000"]
    [episode] = await episodes_of(runtime, chases)
    assert episode.state == "exited"


# -- conversations and contacts ------------------------------------------------


async def test_resolving_the_conversation_ends_its_episodes_and_starts_a_survey(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, chase(exit_rules=[{"kind": "conversation_resolved"}]))
    survey = await make_touchpoint(
        runtime,
        ws,
        {
            "name": "CSAT",
            "kind": "service",
            "trigger": {"kind": "event", "name": "conversation.resolved"},
            "steps": [step("1h")],
        },
    )
    await agent_says(runtime, ws, "Refund sent.")
    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=ws.conversation_id,
        status=ConversationStatus.RESOLVED,
    )
    [episode] = await episodes_of(runtime, tp)
    assert (episode.state, episode.end_reason) == ("exited", "conversation resolved")
    [csat] = await episodes_of(runtime, survey)
    assert (csat.key, csat.contact_id, csat.conversation_id) == (
        f"conversation:{ws.conversation_id}",
        ws.contact_id,
        ws.conversation_id,
    )


async def test_a_new_contact_gets_its_welcome(runtime: Runtime, ws: Workspace) -> None:
    welcome = await make_touchpoint(
        runtime,
        ws,
        {
            "name": "Welcome",
            "trigger": {"kind": "event", "name": "contact.created"},
            "episode_key": "welcome",
            "steps": [step("10m")],
        },
    )
    contact_id = await perform(runtime, ws.system, do_create_contact, name="Nia New")
    [episode] = await episodes_of(runtime, welcome)
    assert (episode.contact_id, episode.key) == (contact_id, "welcome")


async def _count_statements(runtime: Runtime) -> list[str]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", count)
    return seen


async def test_events_nothing_reacts_to_cost_no_query(runtime: Runtime, ws: Workspace) -> None:
    await make_touchpoint(runtime, ws, cart_reminder())
    seen = await _count_statements(runtime)
    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=ws.conversation_id,
        status=ConversationStatus.PENDING,
    )
    assert not any("touchpoints" in s or "episodes" in s for s in seen)
    await track(runtime, ws, "page_viewed", path="/")
    assert sum("FROM touchpoints" in s for s in seen) == 1


# -- concurrency ---------------------------------------------------------------


async def test_two_writers_tracking_the_same_cart_start_one_episode(
    runtime: Runtime, ws: Workspace
) -> None:
    tp = await make_touchpoint(runtime, ws, cart_reminder())
    await asyncio.gather(
        *(track(runtime, ws, "cart_updated", cart_id="c-17", n=i) for i in range(4))
    )
    [episode] = await episodes_of(runtime, tp)
    assert episode.key == "cart:c-17"
    assert len(await decisions_of(runtime, tp)) == 1
    assert len(await fetch_all(runtime, sa.select(t.contact_events))) == 4


@pytest.fixture
async def pg_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime on PostgreSQL only: SQLite's one writer can't hold two
    write transactions open at once, which is the point here."""
    server = request.getfixturevalue("pg_server")
    url = await server.create_database(template=request.getfixturevalue("migrated_pg_template"))
    rt = make_runtime(url, tmp_path / "data")
    yield rt
    await rt.close()


async def _start_together(
    ctx: ActionContext, *, barrier: asyncio.Barrier, touchpoint_id: int, contact_id: int
) -> int | None:
    touchpoint = await touchpoint_row(ctx.conn, ctx.actor.workspace_id, touchpoint_id)
    # Both transactions are open and have read everything before either
    # inserts: the UNIQUE key, not the order, decides.
    await barrier.wait()
    return await start_episode(
        ctx, touchpoint=touchpoint, contact_id=contact_id, facts={"cart_id": "c-17"}
    )


@pytest.mark.postgres
async def test_two_open_transactions_starting_one_episode_write_one_row(
    pg_runtime: Runtime,
) -> None:
    ws = await seed_workspace(pg_runtime)
    tp = await make_touchpoint(pg_runtime, ws, cart_reminder())
    barrier = asyncio.Barrier(2)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                perform(
                    pg_runtime,
                    ws.system,
                    _start_together,
                    barrier=barrier,
                    touchpoint_id=tp,
                    contact_id=ws.contact_id,
                )
                for _ in range(2)
            )
        ),
        timeout=30,
    )
    assert sum(r is not None for r in results) == 1
    assert len(await episodes_of(pg_runtime, tp)) == 1
    assert len(await decisions_of(pg_runtime, tp)) == 1
    started = [kind for kind, _ in await events_since(pg_runtime, 0) if kind == "episode.started"]
    assert started == ["episode.started"]
