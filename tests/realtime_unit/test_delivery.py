"""One socket's delivery rules (server.realtime.delivery), driven with
synthetic events and times, without a socket: order, no duplicate, held
events during replay and an access reload, access changes, backpressure,
and the stall and close deadlines (PROTOCOLS.md P2)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from server.domain.json_types import JsonObject
from server.domain.wire_events import Signal, WireEvent
from server.realtime.delivery import (
    CLOSE,
    NOTHING,
    PRESENCE,
    REFRESH,
    WRITE,
    Delivery,
    Drop,
    Limits,
)
from server.realtime.protocol import event_frame
from server.realtime.visibility import Close, CloseCode, Viewer, VisitorScope

WS = 1
INBOX = 10
LIMITS = Limits(outbox_bytes=1000, held_events=3, send_timeout=10.0, close_timeout=5.0)


def agent(**kw: Any) -> Viewer:
    fields: dict[str, Any] = {
        "workspace_id": WS,
        "agent_id": 7,
        "is_admin": False,
        "inboxes": {INBOX},
        "sees_private": True,
        "session_id": 3,
    }
    return Viewer(**{**fields, **kw})


def visitor() -> Viewer:
    return Viewer(
        workspace_id=WS,
        agent_id=None,
        is_admin=False,
        inboxes=set(),
        sees_private=False,
        conversations={99},
        visitor=VisitorScope(5, 6, INBOX, 6),
    )


def event(
    event_id: int, kind: str = "message.created", inbox_id: int = INBOX, **data: Any
) -> WireEvent:
    payload: JsonObject = {"seq": event_id, **data}
    return WireEvent(
        event_id=event_id,
        ws_seq=event_id,
        type=kind,
        workspace_id=WS,
        inbox_id=inbox_id,
        conversation_id=99,
        private=False,
        created_at="2026-01-05T09:00:00+00:00",
        data=payload,
    )


def delivery(
    viewer: Viewer | None = None, limits: Limits = LIMITS, *, live: bool = True
) -> Delivery:
    d = Delivery(limits, origin="me")
    d.viewer = viewer if viewer is not None else agent()
    if live:
        d.go_live()
    return d


def offer(d: Delivery, *wires: WireEvent) -> int:
    effects = NOTHING
    for wire in wires:
        effects |= d.offer(wire, event_frame(wire))
    return effects


def sent_ids(d: Delivery, now: float = 0.0) -> list[int]:
    """Take every queued frame, as the writer does; the event ids sent."""
    ids = []
    while (frame := d.next_frame(now)) is not None:
        ids.append(json.loads(frame).get("event_id"))
    d.writer_idle()
    return ids


def test_live_events_go_out_in_order_once_each() -> None:
    d = delivery()
    assert offer(d, event(1), event(2)) == WRITE
    assert offer(d, event(2), event(1)) == NOTHING  # the bus repeated them
    offer(d, event(3))
    assert sent_ids(d) == [1, 2, 3]
    assert d.last_event_id == 3


def test_the_shared_frame_is_sent_as_is() -> None:
    d = delivery()
    wire = event(1)
    frame = event_frame(wire) + " "  # the channel's, serialized once for all
    d.offer(wire, frame)
    assert d.next_frame(0.0) is frame


def test_live_events_wait_for_the_replay_then_follow_it_in_order() -> None:
    d = delivery(live=False)
    d.last_event_id = 1  # the client resumes after event 1
    assert offer(d, event(3), event(4)) == NOTHING  # committed during the replay: held
    assert d.held == 2
    for wire in (event(1), event(2), event(3)):  # the log, read by the replay
        d.deliver(wire)
    assert sent_ids(d) == [2, 3]
    assert d.go_live() == WRITE
    assert sent_ids(d) == [4]  # 3 came with the replay: not twice
    assert d.held == 0


def test_too_many_held_events_is_too_slow() -> None:
    d = delivery(live=False)
    offer(d, event(1), event(2), event(3))
    assert d.close_request is None
    assert offer(d, event(4)) == CLOSE
    assert d.close_request == Close(CloseCode.TOO_SLOW, "too far behind; resume")


def test_ephemeral_signals_are_live_only_access_checked_and_never_echoed() -> None:
    d = delivery(live=False)
    typing = Signal(WS, INBOX, 99, False, "someone", {"type": "typing"})
    assert d.offer_ephemeral(typing, "typing") == NOTHING  # not live yet
    d.go_live()
    assert d.offer_ephemeral(dataclasses.replace(typing, origin="me"), "mine") == NOTHING
    assert d.offer_ephemeral(dataclasses.replace(typing, inbox_id=11), "other") == NOTHING
    assert d.offer_ephemeral(typing, "typing") == WRITE
    assert d.next_frame(0.0) == "typing"


def test_presence_goes_to_agents_and_tells_a_visitor_to_check_availability() -> None:
    assert delivery().offer_signal("presence", None, None) == WRITE
    assert delivery().offer_signal("viewing", 11, 42) == NOTHING  # an inbox it can't read
    d = delivery(visitor())
    assert d.offer_signal("presence", None, None) == PRESENCE
    assert d.next_frame(0.0) is None


def test_a_revocation_closes_and_nothing_after_it_is_sent() -> None:
    d = delivery()
    offer(d, event(1))
    assert offer(d, event(2, "session.ended", inbox_id=0, session_id=3, reason="logout")) == CLOSE
    assert d.close_request is not None
    assert d.close_request.code == CloseCode.UNAUTHENTICATED
    offer(d, event(3))
    assert sent_ids(d) == []  # what was queued is dropped with the close


def test_leaving_an_inbox_narrows_what_follows() -> None:
    d = delivery(agent(inboxes={INBOX, 11}))
    removed = dataclasses.replace(
        event(2, "inbox.member_removed", inbox_id=11), data={"agent_id": 7, "inbox_id": 11}
    )
    offer(d, event(1, inbox_id=11), removed, event(3, inbox_id=11), event(4))
    assert sent_ids(d) == [1, 4]
    assert d.last_event_id == 4


def test_a_merge_is_narrowed_to_the_inboxes_the_viewer_reads() -> None:
    d = delivery()
    moved = [{"id": 20, "inbox_id": INBOX}, {"id": 21, "inbox_id": 11}]
    wire = event(1, "contact.merged", survivor_id=6, merged_id=8, merge_id=3, conversations=moved)
    d.offer(wire, event_frame(wire))
    frame = d.next_frame(0.0)
    assert frame is not None
    assert json.loads(frame)["data"]["conversations"] == [{"id": 20, "inbox_id": INBOX}]


def test_a_role_change_holds_later_events_until_access_is_reloaded() -> None:
    d = delivery()
    promoted = event(1, "agent.updated", agent_id=7, role="admin", active=True)
    assert offer(d, promoted) & REFRESH
    assert offer(d, event(2, inbox_id=11), event(3)) == NOTHING  # held for the reload
    assert not d.has_room  # a replay waits for the reload too
    d.viewer = agent(is_admin=True, inboxes=None)  # what the database says now
    assert d.access_reloaded() == WRITE
    assert sent_ids(d) == [1, 2, 3]  # inbox 11's event: seen with the new access
    assert d.has_room


def test_one_frame_always_fits_an_empty_outbox() -> None:
    d = delivery()
    big = "x" * (LIMITS.outbox_bytes * 3)
    assert d.send(big) == WRITE
    assert d.close_request is None
    assert d.next_frame(0.0) is big


def test_an_outbox_past_its_limit_is_too_slow() -> None:
    d = delivery()
    assert d.send("x" * 600) == WRITE
    assert d.send("y" * 400) == WRITE  # exactly at the limit
    assert d.close_request is None
    assert d.send("z") == CLOSE
    assert d.close_request == Close(CloseCode.TOO_SLOW, "not reading fast enough; resume")
    assert not d.outbox and d.outbox_bytes == 0  # the close goes before them
    assert d.send("after") == NOTHING


def test_a_replay_waits_for_the_outbox_to_be_half_empty() -> None:
    d = delivery()
    d.send("a" * 300)
    d.send("b" * 201)  # 501 queued: over half of 1000
    assert not d.has_room
    d.next_frame(0.0)  # 201 left
    assert d.has_room
    d.request_close(Close(CloseCode.GOING_AWAY, "bye"))
    d.send("c" * 900)
    assert d.has_room  # closing: the replay stops rather than waits


def test_a_write_untaken_for_send_timeout_drops_the_connection() -> None:
    d = delivery()
    d.send("a")
    d.send("b")
    assert d.next_frame(100.0) == "a"
    assert d.overdue(109.9) is None
    assert d.next_frame(105.0) == "b"  # the first write went through
    assert d.overdue(114.9) is None
    assert d.overdue(115.0) == Drop("took nothing for 10.0 s")
    d.writer_idle()
    assert d.overdue(1000.0) is None  # idle: nothing waits on the client
    assert d.watch_interval == 5.0


def test_a_close_gets_close_timeout_to_be_written_and_as_long_to_be_answered() -> None:
    d = delivery()
    d.send("queued")
    d.request_close(Close(CloseCode.GOING_AWAY, "bye"))
    assert d.next_frame(0.0) is None  # the close goes first
    assert d.begin_close(50.0) == Close(CloseCode.GOING_AWAY, "bye")
    assert d.close_deadline == 55.0
    assert d.overdue(54.9) is None
    assert d.overdue(55.0) == Drop("did not close within 5.0 s")
    d.close_written(53.0)
    assert d.close_deadline == 58.0
    assert d.overdue(57.9) is None


def test_the_first_close_wins() -> None:
    d = delivery()
    assert d.request_close(Close(CloseCode.FORBIDDEN, "account deactivated")) == CLOSE
    assert d.request_close(Close(CloseCode.GOING_AWAY, "closing")) == CLOSE
    assert d.close_request == Close(CloseCode.FORBIDDEN, "account deactivated")


def test_a_visitor_gets_its_own_frames() -> None:
    d = delivery(visitor())
    d.project_event = lambda wire: None if wire.event_id == 1 else f"visitor {wire.event_id}"
    offer(d, event(1), event(2))
    assert d.next_frame(0.0) == "visitor 2"
    assert d.next_frame(0.0) is None


# -- writing straight onto the transport -------------------------------------


def test_frames_are_written_at_once_while_the_transport_takes_more() -> None:
    d = delivery()
    offer(d, event(1), event(2))
    assert [json.loads(f)["event_id"] for f in iter(d.take_writable, None)] == [1, 2]
    assert not d.waiting  # a synchronous write waits for nothing


def test_a_paused_transport_queues_frames_until_it_resumes_in_order() -> None:
    d = delivery()
    offer(d, event(1))
    assert d.take_writable() is not None
    d.writing_paused(100.0, buffered=100)
    assert offer(d, event(2), event(3)) == WRITE
    assert d.take_writable() is None  # queued, not written
    assert d.waiting
    d.writing_resumed()
    offer(d, event(4))
    assert [json.loads(f)["event_id"] for f in iter(d.take_writable, None)] == [2, 3, 4]
    assert not d.waiting


def test_what_the_paused_transport_holds_counts_towards_too_slow() -> None:
    d = delivery()
    d.writing_paused(0.0, buffered=700)
    assert d.send("x" * 300) == WRITE  # 1000: at the limit
    assert d.close_request is None
    assert d.send("y") == CLOSE
    assert d.close_request == Close(CloseCode.TOO_SLOW, "not reading fast enough; resume")


def test_one_frame_always_fits_when_nothing_is_pending() -> None:
    d = delivery()
    d.writing_paused(0.0, buffered=0)
    assert d.send("x" * (LIMITS.outbox_bytes * 3)) == WRITE
    assert d.close_request is None
    d = delivery()
    d.writing_paused(0.0, buffered=LIMITS.outbox_bytes * 3)  # one big frame, written
    assert d.send("y") == CLOSE  # and the client is not taking it


def test_a_replay_waits_for_the_paused_transport_to_drain() -> None:
    d = delivery()
    d.writing_paused(0.0, buffered=400)
    d.send("a" * 100)
    assert d.has_room  # 500: half the limit
    d.send("b")
    assert not d.has_room
    d.writing_resumed()
    assert d.has_room  # the 101 bytes queued are written on


def test_a_transport_paused_for_send_timeout_drops_the_connection() -> None:
    d = delivery()
    d.writing_paused(100.0, buffered=50)
    d.writing_paused(104.0, buffered=60)  # still paused: the clock runs on
    assert d.overdue(109.9) is None
    assert d.overdue(110.0) == Drop("took nothing for 10.0 s")
    d.writing_resumed()
    assert d.overdue(1000.0) is None


def test_a_close_behind_a_paused_transport_keeps_the_stall_clock() -> None:
    # The close frame can't get through a client that takes nothing either:
    # it is dropped at send_timeout from the pause, not close_timeout later.
    d = delivery()
    d.writing_paused(100.0, buffered=900)
    d.send("x" * 200)  # too slow
    assert d.close_request is not None
    d.begin_close(108.0)
    assert d.waiting
    assert d.overdue(109.9) is None
    assert d.overdue(110.0) == Drop("took nothing for 10.0 s")
