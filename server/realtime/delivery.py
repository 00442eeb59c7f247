"""What one live socket is sent, and when it must close or be dropped
(PROTOCOLS.md P2), as a pure state machine: no asyncio, no sockets.

A `Delivery` takes inputs (a live event, a replayed one, a signal, the
end of the replay, an access reload done, a frame taken by the writer)
and the time as a number, and answers with frames to write (its outbox,
taken with `next_frame`) and effects for the I/O shell
(server.realtime.hub.Connection) to carry out: write the outbox, start
an access reload, check the visitor's availability. Its timeouts are
decided from the `now` it is given (`overdue`). So every delivery rule
is tested without a socket (tests/realtime_unit/test_delivery.py),
whichever way the shell writes: straight onto the transport as the
fan-out offers each event (`take_writable`, while the transport takes
more), or from a writer task (`next_frame`).

The rules:
- Order and no duplicate: events are sent in the order offered, each once
  (an event id at or below `last_event_id` is skipped).
- Access per event: an event's effect on access (server.realtime.visibility)
  is applied before it is checked; a revocation closes, a role change
  holds every later event until the access is reloaded.
- Held during replay: live events wait until `go_live`, then follow the
  replay in order; more than `held_events` of them is TOO_SLOW.
- Backpressure: one frame always fits when nothing is pending, however
  big (else a client could never get past a large event, not even by
  resuming); past `outbox_bytes` pending the client is TOO_SLOW (4008:
  it resumes with last_event_id). Pending is the outbox plus what the
  transport still buffered when it paused writing (`writing_paused`). A
  replay waits for that to be at most half the limit instead
  (`has_room`), so resuming is never too slow.
- Stalls: a write waiting half `send_timeout`, or a transport paused that
  long, closes the connection with TOO_SLOW (`stalled`): a client that
  takes its data after all finds 4008 at the end of it, and resumes. One
  waiting the whole `send_timeout` is dropped (even while a close waits
  behind it: no close frame gets through a client that takes nothing); a
  close frame gets `close_timeout` to be written, and the client as long
  again to answer it.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence

from server.domain.wire_events import Signal, WireEvent
from server.realtime.protocol import event_frame
from server.realtime.visibility import (
    Close,
    CloseCode,
    RefreshAccess,
    Viewer,
    access_change,
    can_hear,
    can_see,
    narrow,
)

# Effects, or-ed together, for the shell to carry out. Plain ints: the
# fan-out computes one per socket per event.
NOTHING = 0
WRITE = 1  # the outbox has frames: write them now, or wake the writer
CLOSE = 2  # a close is requested: wake the writer, and a replay waiting for room
REFRESH = 4  # reload the viewer's access (then call `access_reloaded`)
PRESENCE = 8  # a visitor's socket: check whether an agent is available

TOO_SLOW_HELD = Close(CloseCode.TOO_SLOW, "too far behind; resume")
TOO_SLOW_OUTBOX = Close(CloseCode.TOO_SLOW, "not reading fast enough; resume")
TOO_SLOW_STALLED = Close(CloseCode.TOO_SLOW, "took nothing for a while; resume")


@dataclasses.dataclass(frozen=True)
class Limits:
    outbox_bytes: int = 4 * 1024 * 1024  # past this a client is TOO_SLOW
    held_events: int = 50_000  # live events held while a connection replays
    gap_wait: float = 0.2  # how long an early event waits for the missing one
    poll_interval: float = 2.0  # safety net: compare with the log this often
    close_timeout: float = 5.0  # a close frame that can't be written in time
    send_timeout: float = 10.0  # a frame the client leaves untaken this long: drop it
    catch_up_batch: int = 500


@dataclasses.dataclass(frozen=True)
class Drop:
    """Cut the connection now, without a close frame (none would get
    through): the client reconnects and resumes."""

    reason: str


class Delivery:
    """One socket's delivery state: its access, resume position, held
    events, outbox and close decision."""

    # One per socket, thousands a process: no __dict__ each.
    __slots__ = (
        "_held",
        "_outbox",
        "buffered",
        "close_request",
        "close_started",
        "last_event_id",
        "limits",
        "live",
        "origin",
        "outbox_bytes",
        "paused_since",
        "project_event",
        "project_signal",
        "refreshing",
        "viewer",
        "write_started",
    )

    def __init__(self, limits: Limits, origin: str) -> None:
        self.limits = limits
        # Tags ephemeral signals this socket sent, so they don't echo back.
        self.origin = origin
        self.viewer: Viewer | None = None
        self.last_event_id = 0
        # A widget visitor's socket sends its own, narrower frames
        # (server.realtime.visitor_frames); None: None sent.
        self.project_event: Callable[[WireEvent], str | None] | None = None
        self.project_signal: Callable[[Signal], str | None] | None = None
        self.live = False
        self.refreshing = False  # an access reload is under way
        self.close_request: Close | None = None
        # Both queues exist only while they hold something: an idle socket
        # (most of them, most of the time) carries no deque (~760 bytes
        # each), and the collector has two objects fewer to walk per socket.
        self._outbox: deque[str] | None = None
        self.outbox_bytes = 0
        self._held: deque[tuple[WireEvent, str | None]] | None = None
        # When the write in progress began; when the close began (or its
        # frame was written), for `overdue`.
        self.write_started: float | None = None
        self.close_started: float | None = None
        # Since when the transport takes no more (its buffer is past its
        # limit), and how much it held then: what is written directly
        # counts as pending until the transport resumes.
        self.paused_since: float | None = None
        self.buffered = 0

    # -- events and signals -------------------------------------------------

    def offer(self, wire: WireEvent, frame: str) -> int:
        """A live event, with its shared frame. Held while the socket
        replays or reloads its access, then delivered in order."""
        if self.live and not self.refreshing:
            return self.deliver(wire, frame)
        held = self._held
        if held is None:
            held = self._held = deque()
        if len(held) >= self.limits.held_events:
            return self.request_close(TOO_SLOW_HELD)
        held.append((wire, frame))
        return NOTHING

    @property
    def held(self) -> int:
        return 0 if self._held is None else len(self._held)

    def deliver(self, wire: WireEvent, frame: str | None = None) -> int:
        """Apply the event's effect on access, then send it if this viewer
        may see it and has not had it yet (a replayed event: no frame)."""
        viewer = self.viewer
        if viewer is None or self.close_request is not None:
            return NOTHING
        if wire.event_id <= self.last_event_id:
            return NOTHING
        self.last_event_id = wire.event_id
        effects = NOTHING
        decision = access_change(viewer, wire)
        if isinstance(decision, Close):
            return self.request_close(decision)
        if isinstance(decision, RefreshAccess):
            # Rare (a role change): later events wait for the reload, held
            # if live; a replay waits for it before its next event.
            self.refreshing = True
            effects = REFRESH
        if not can_see(viewer, wire):
            return effects
        if self.project_event is not None:
            out = self.project_event(wire)
            return effects if out is None else effects | self.send(out)
        shown = narrow(viewer, wire)
        if shown is not wire:  # this viewer gets less than the shared frame
            return effects | self.send(event_frame(shown))
        return effects | self.send(frame if frame is not None else event_frame(wire))

    def go_live(self) -> int:
        """The replay is done: deliver what was held, from now on at once."""
        self.live = True
        return self._flush()

    def access_reloaded(self) -> int:
        """The access reload is over (the viewer replaced, or a close
        requested): deliver what it held."""
        self.refreshing = False
        return self._flush()

    def _flush(self) -> int:
        effects = NOTHING
        held = self._held
        while held and self.live and not self.refreshing:
            effects |= self.deliver(*held.popleft())
        if not held:
            self._held = None
        return effects

    def offer_ephemeral(self, signal: Signal, frame: str) -> int:
        """Typing, presence, viewing: sent live only, never replayed, and
        access-checked like durable events."""
        viewer = self.viewer
        if not self.live or viewer is None or signal.origin == self.origin:
            return NOTHING
        if not can_hear(
            viewer,
            signal.workspace_id,
            signal.inbox_id,
            signal.conversation_id,
            private=signal.private,
        ):
            return NOTHING
        out = frame if self.project_signal is None else self.project_signal(signal)
        return NOTHING if out is None else self.send(out)

    def offer_signal(self, frame: str, inbox_id: int | None, conversation_id: int | None) -> int:
        """A presence or viewing frame: for agents only, and a viewing
        frame only to those who may see its conversation's inbox. A
        visitor's socket is told to check agents' availability instead."""
        viewer = self.viewer
        if not self.live or viewer is None:
            return NOTHING
        if viewer.agent_id is None:
            return PRESENCE
        if can_hear(viewer, viewer.workspace_id, inbox_id, conversation_id):
            return self.send(frame)
        return NOTHING

    # -- the outbox ---------------------------------------------------------

    @property
    def outbox(self) -> Sequence[str]:
        """The frames queued, oldest first."""
        return () if self._outbox is None else self._outbox

    def send(self, frame: str) -> int:
        """Queue a frame (any: events, ready, pong, errors)."""
        if self.close_request is not None:
            return NOTHING
        pending = self.outbox_bytes + self.buffered
        if pending and pending + len(frame) > self.limits.outbox_bytes:
            return self.request_close(TOO_SLOW_OUTBOX)
        outbox = self._outbox
        if outbox is None:
            outbox = self._outbox = deque()
        outbox.append(frame)
        self.outbox_bytes += len(frame)
        return WRITE

    def request_close(self, close: Close) -> int:
        """Close with `close` (the first request wins); what is still queued
        is not sent."""
        if self.close_request is None:
            self.close_request = close
            self._outbox = None
            self.outbox_bytes = 0
        return CLOSE

    @property
    def has_room(self) -> bool:
        """Whether a replay may offer its next event: the outbox is at most
        half full, the transport's buffer counted (or closing: the replay
        stops) and no reload is pending."""
        if self.close_request is not None:
            return True
        pending = self.outbox_bytes + self.buffered
        return not self.refreshing and pending <= self.limits.outbox_bytes // 2

    def next_frame(self, now: float) -> str | None:
        """The frame to write now (the write starts at `now`); None when the
        outbox is empty (as it is once a close is requested)."""
        frame = self._take()
        if frame is not None:
            self.write_started = now
        return frame

    def writer_idle(self) -> None:
        """The writer wrote everything it took: no write is waiting."""
        self.write_started = None

    # -- writing straight onto the transport ----------------------------------

    def take_writable(self) -> str | None:
        """The next frame to write onto the transport at once: while it
        takes more (not paused), in order; None otherwise. A synchronous
        write waits for nothing, so no stall clock starts here."""
        if self.paused_since is not None:
            return None
        return self._take()

    def _take(self) -> str | None:
        """The outbox's next frame; the deque goes once it is empty."""
        outbox = self._outbox
        if outbox is None:
            return None
        frame = outbox.popleft()
        self.outbox_bytes -= len(frame)
        if not outbox:
            self._outbox = None
        return frame

    def writing_paused(self, now: float, buffered: int) -> None:
        """The transport's buffer went past its limit at `now`, holding
        `buffered` bytes: later frames queue, and the stall clock runs.
        Nothing more is written until it resumes, so `buffered` only
        shrinks meanwhile: counting it whole errs on the safe side."""
        if self.paused_since is None:
            self.paused_since = now
        self.buffered = buffered

    def writing_resumed(self) -> None:
        """The transport drained below its low mark: write on (what it
        still holds is a fraction of its limit, not counted)."""
        self.paused_since = None
        self.buffered = 0

    @property
    def waiting(self) -> bool:
        """Whether something waits on the client: a write the writer took,
        or a transport that paused (the stall watchdog runs meanwhile)."""
        return self.write_started is not None or self.paused_since is not None

    # -- closing and timeouts -----------------------------------------------

    def begin_close(self, now: float) -> Close:
        """The writer starts writing the close frame (a close is requested)."""
        assert self.close_request is not None
        self.write_started = None
        self.close_started = now
        return self.close_request

    def close_written(self, now: float) -> None:
        """The close frame is out: the client gets close_timeout to answer."""
        self.close_started = now

    @property
    def close_deadline(self) -> float | None:
        started = self.close_started
        return None if started is None else started + self.limits.close_timeout

    def stalled(self, now: float) -> int:
        """Close with TOO_SLOW once a write waited, or the transport stayed
        paused, half send_timeout: the close frame queues behind what the
        client has not taken, so if it takes it after all it gets 4008
        (and resumes) rather than a dropped connection at send_timeout."""
        if self.close_request is not None:
            return NOTHING
        for started in (self.write_started, self.paused_since):
            if started is not None and now - started >= self.limits.send_timeout / 2:
                return self.request_close(TOO_SLOW_STALLED)
        return NOTHING

    def overdue(self, now: float) -> Drop | None:
        """Whether to drop the connection at `now`: a write waited, or the
        transport stayed paused, send_timeout (the client takes nothing: it
        stopped reading, or its network is gone), or the close took longer
        than close_timeout."""
        for started in (self.write_started, self.paused_since):
            if started is not None and now - started >= self.limits.send_timeout:
                return Drop(f"took nothing for {self.limits.send_timeout} s")
        deadline = self.close_deadline
        if deadline is not None and now >= deadline:
            return Drop(f"did not close within {self.limits.close_timeout} s")
        return None

    @property
    def watch_interval(self) -> float:
        """How often a busy writer is checked for a stall: half send_timeout,
        so a stall is found between send_timeout and 1.5 times it. A timer
        per socket, not one per frame (that costs the fan-out dearly)."""
        return self.limits.send_timeout / 2
