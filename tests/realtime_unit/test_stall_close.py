"""A socket that takes nothing is closed with 4008 at half the send
timeout, before it is dropped at the full one (server.realtime.delivery,
`stalled` and `overdue`)."""

from __future__ import annotations

from server.realtime.delivery import CLOSE, NOTHING, TOO_SLOW_STALLED, Drop
from server.realtime.visibility import CloseCode
from tests.realtime_unit.test_delivery import delivery


def test_a_transport_paused_half_the_send_timeout_is_closed_with_4008() -> None:
    d = delivery()  # send_timeout 10 s
    d.writing_paused(100.0, buffered=50)
    assert d.stalled(104.9) == NOTHING
    assert d.close_request is None
    assert d.stalled(105.0) == CLOSE
    assert d.close_request == TOO_SLOW_STALLED
    assert d.close_request.code == CloseCode.TOO_SLOW
    assert d.outbox == ()  # the close frame is what goes out next
    # The close frame gets through only if the client reads on: else the
    # stall clock still drops it at the full send timeout.
    d.begin_close(105.0)
    assert d.overdue(109.9) is None
    assert d.overdue(110.0) == Drop("took nothing for 10.0 s")


def test_a_write_waiting_half_the_send_timeout_is_closed_with_4008() -> None:
    d = delivery()
    d.send("a")
    assert d.next_frame(200.0) == "a"
    assert d.stalled(204.0) == NOTHING
    assert d.stalled(205.0) == CLOSE
    assert d.close_request == TOO_SLOW_STALLED


def test_a_client_that_takes_its_frames_in_time_is_not_closed() -> None:
    d = delivery()
    d.writing_paused(100.0, buffered=50)
    d.writing_resumed()
    assert d.stalled(1000.0) == NOTHING
    d.send("a")
    d.next_frame(1000.0)
    d.writer_idle()
    assert d.stalled(2000.0) == NOTHING
    assert d.close_request is None


def test_a_close_already_requested_wins() -> None:
    d = delivery()
    d.writing_paused(100.0, buffered=900)
    d.send("x" * 200)  # over the outbox limit: closed for that
    first = d.close_request
    assert first is not None
    assert d.stalled(106.0) == NOTHING
    assert d.close_request is first
