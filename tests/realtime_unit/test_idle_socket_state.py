"""What an idle socket carries (bench/RESULTS.md, B3): its Delivery holds
no deque until a frame or a held event waits, and lets it go once drained;
its wake-ups are `Flag`s (server.realtime.flag) that store nothing until
waited on, yet behave as asyncio.Event does; uvicorn's receive queue is
the slim `_Inbox` (server.serving)."""

from __future__ import annotations

import asyncio

import pytest

from server.realtime.delivery import TOO_SLOW_OUTBOX, WRITE, Delivery
from server.realtime.flag import Flag
from server.serving import _Inbox
from tests.realtime_unit.test_delivery import LIMITS, delivery, event


def test_an_idle_delivery_holds_no_queue() -> None:
    d = Delivery(LIMITS, origin="me")
    assert d._outbox is None and d._held is None
    assert d.outbox == () and d.held == 0


def test_the_outbox_exists_only_while_frames_wait() -> None:
    d = delivery()
    assert d.send("a") == WRITE and d.send("b") == WRITE
    assert list(d.outbox) == ["a", "b"] and d.outbox_bytes == 2
    assert d.take_writable() == "a"
    assert d._outbox is not None
    assert d.take_writable() == "b"
    assert d._outbox is None and d.outbox_bytes == 0
    assert d.take_writable() is None
    d.send("c")
    assert d.next_frame(1.0) == "c"
    assert d._outbox is None


def test_a_close_drops_the_outbox() -> None:
    d = delivery()
    d.send("a")
    d.request_close(TOO_SLOW_OUTBOX)
    assert d._outbox is None and d.outbox == ()


def test_held_events_are_let_go_once_delivered() -> None:
    d = delivery(live=False)
    d.offer(event(1), "f1")
    d.offer(event(2), "f2")
    assert d.held == 2
    d.go_live()
    assert d._held is None and d.held == 0
    assert list(d.outbox) == ["f1", "f2"]


async def test_a_flag_wakes_every_waiter_and_stores_nothing_idle() -> None:
    flag = Flag()
    assert not flag.is_set() and flag._waiters is None
    waits = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # each task starts waiting
    assert flag._waiters is not None and len(flag._waiters) == 3
    flag.set()
    assert await asyncio.gather(*waits) == [True, True, True]
    assert flag._waiters is None
    assert await flag.wait()  # set: at once
    flag.clear()
    assert not flag.is_set()


async def test_a_cancelled_wait_leaves_the_others_waiting() -> None:
    flag = Flag()
    first = asyncio.create_task(flag.wait())
    second = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not second.done()
    flag.set()
    assert await second
    assert flag._waiters is None


async def test_the_inbox_hands_events_over_in_order() -> None:
    inbox = _Inbox()
    assert inbox.empty()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not getter.done()
    inbox.put_nowait({"type": "websocket.connect"})
    inbox.put_nowait({"type": "websocket.receive", "text": "x"})
    assert await getter == {"type": "websocket.connect"}
    assert not inbox.empty()
    assert await inbox.get() == {"type": "websocket.receive", "text": "x"}
    assert inbox.empty()


async def test_a_cancelled_get_loses_nothing() -> None:
    inbox = _Inbox()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    inbox.put_nowait("later")
    assert await inbox.get() == "later"
