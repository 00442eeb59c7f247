"""The live hub of one process: websocket connections grouped by workspace,
fed from the bus, falling back to the event log whenever the bus loses
anything (PROTOCOLS.md P1, P2).

Ordering: every event carries `ws_seq`, contiguous per workspace. A
channel delivers strictly in ws_seq order; an event that arrives early
waits briefly for the missing one, which is then read from the log. A bus
subscription that lost messages, or a publish that never happened (Redis
was down), is repaired the same way: the channel reads what it missed
from the log. So the bus is only ever a fast path.

Backpressure: each connection has a bounded outbox drained by its own
writer task; the fan-out never awaits a socket. A connection whose outbox
overflows is closed with 4008 (TOO_SLOW) and resumes from its
last_event_id, without slowing anyone else. A replay, which reads the log
at its own pace, waits for room in the outbox instead (`Connection.room`),
so resuming a long gap never counts as too slow.

Stalls: every write to a socket has a deadline. A client that takes
nothing for `send_timeout` (its kernel buffers full: it stopped reading,
or its network is gone) is dropped at once, without a close frame, which
could not get through anyway (server.realtime.transport); it reconnects
and resumes. A close frame gets `close_timeout` to be written and answered.

Shutdown (`Hub.shutdown`): every socket is closed with 1001, going away,
within a bound, and new connections are refused with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from starlette.websockets import WebSocket

from server.actions.ephemeral import broadcast_ephemeral
from server.bus.base import Subscription, workspace_topic
from server.domain.json_types import JsonValue
from server.domain.wire_events import Signal, WireEvent
from server.queries.events import event_seq_of, events_from_seq
from server.queries.reading import read
from server.realtime.presence import HEARTBEAT
from server.realtime.protocol import event_frame
from server.realtime.tracker import Outgoing, PresenceTracker
from server.realtime.transport import transport_abort
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
from server.runtime import Runtime

log = logging.getLogger(__name__)

# Fields of a bus message that are for routing, not for clients.
_INTERNAL = {"ephemeral", "origin", "workspace_id"}


@dataclasses.dataclass(frozen=True)
class Limits:
    outbox_bytes: int = 4 * 1024 * 1024  # past this a client is TOO_SLOW
    held_events: int = 50_000  # live events held while a connection replays
    gap_wait: float = 0.2  # how long an early event waits for the missing one
    poll_interval: float = 2.0  # safety net: compare with the log this often
    close_timeout: float = 5.0  # a close frame that can't be written in time
    send_timeout: float = 10.0  # a frame the client leaves untaken this long: drop it
    catch_up_batch: int = 500


class Connection:
    """One websocket: its access, its outbox and its resume position."""

    def __init__(self, ws: WebSocket, workspace_id: int, limits: Limits) -> None:
        self.ws = ws
        self.workspace_id = workspace_id
        self.viewer: Viewer | None = None
        self.limits = limits
        self.last_event_id = 0
        # Tags ephemeral signals this connection sent, so they don't echo back.
        self.origin = uuid.uuid4().hex
        # Presence of this socket's agent, and the conversation it shows.
        self.channel: Channel | None = None
        self.status = "online"
        self.viewing: tuple[int, int] | None = None  # (conversation_id, inbox_id)
        self._outbox: deque[str] = deque()
        self._outbox_bytes = 0
        self._wakeup = asyncio.Event()
        self._live = False
        self._held: deque[tuple[WireEvent, str]] = deque()
        self._room = asyncio.Event()
        self.close_request: Close | None = None
        self.closed = asyncio.Event()
        self.refresh_access: Callable[[Connection], Awaitable[None]] | None = None
        # A widget visitor's socket sends its own, narrower frames (see
        # server.realtime.visitor_frames) and follows agents' presence.
        self.project_event: Callable[[WireEvent], str | None] | None = None
        self.project_signal: Callable[[Signal], str | None] | None = None
        self.on_presence: Callable[[], None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._abort = transport_abort(ws)
        # When the write in progress began (loop time), and its watchdog.
        self._write_started: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        """True once this connection is closing or its writer has stopped:
        nothing sent from now on reaches the client."""
        return self.close_request is not None or self.closed.is_set()

    # -- fed by the channel -------------------------------------------------

    def offer(self, wire: WireEvent, frame: str) -> None:
        """A live event from the channel. Held while the connection replays
        or reloads its access, then delivered in order."""
        if self._live and self._refreshing is None:
            self.deliver(wire, frame)
        elif len(self._held) >= self.limits.held_events:
            self.request_close(Close(CloseCode.TOO_SLOW, "too far behind; resume"))
        else:
            self._held.append((wire, frame))

    def offer_ephemeral(self, signal: Signal, frame: str) -> None:
        """Typing, presence, viewing: sent live only, never replayed, and
        access-checked like durable events."""
        viewer = self.viewer
        if not self._live or viewer is None or signal.origin == self.origin:
            return
        if not can_hear(
            viewer,
            signal.workspace_id,
            signal.inbox_id,
            signal.conversation_id,
            private=signal.private,
        ):
            return
        out = frame if self.project_signal is None else self.project_signal(signal)
        if out is not None:
            self.send(out)

    def offer_signal(self, frame: str, inbox_id: int | None, conversation_id: int | None) -> None:
        """A presence or viewing frame: for agents only, and a viewing
        frame only to those who may see its conversation's inbox."""
        viewer = self.viewer
        if not self._live or viewer is None:
            return
        if viewer.agent_id is None:
            if self.on_presence is not None:
                self.on_presence()
            return
        if can_hear(viewer, viewer.workspace_id, inbox_id, conversation_id):
            self.send(frame)

    def go_live(self) -> None:
        self._live = True
        self._flush()

    def _flush(self) -> None:
        while self._held and self._live and self._refreshing is None:
            self.deliver(*self._held.popleft())

    def deliver(self, wire: WireEvent, frame: str | None = None) -> None:
        """Apply the event's effect on access, then send it if this viewer
        may see it and has not had it yet."""
        viewer = self.viewer
        if viewer is None or self.close_request is not None:
            return
        if wire.event_id <= self.last_event_id:
            return
        self.last_event_id = wire.event_id
        decision = access_change(viewer, wire)
        if isinstance(decision, Close):
            self.request_close(decision)
            return
        if isinstance(decision, RefreshAccess) and self.refresh_access is not None:
            # Rare (a role change): reload access from the database. Later
            # events wait for it: held if live, and a replay awaits `room`.
            loop = asyncio.get_running_loop()
            self._refreshing = loop.create_task(self._refresh(self.refresh_access))
        if not can_see(viewer, wire):
            return
        if self.project_event is not None:
            out = self.project_event(wire)
            if out is not None:
                self.send(out)
            return
        shown = narrow(viewer, wire)
        if shown is not wire:  # this viewer gets less than the shared frame
            self.send(event_frame(shown))
        else:
            self.send(frame if frame is not None else event_frame(wire))

    async def _refresh(self, reload: Callable[[Connection], Awaitable[None]]) -> None:
        try:
            await reload(self)
        except Exception:
            log.exception("reloading a connection's access failed")
            self.request_close(Close(CloseCode.GOING_AWAY, "could not reload access; resume"))
        finally:
            self._refreshing = None
            self._flush()

    # -- the outbox ---------------------------------------------------------

    def send(self, frame: str) -> None:
        if self.close_request is not None:
            return
        # One frame always fits in an empty outbox, however big: otherwise
        # a client could never get past a large event, not even by resuming.
        if self._outbox and self._outbox_bytes + len(frame) > self.limits.outbox_bytes:
            self.request_close(Close(CloseCode.TOO_SLOW, "not reading fast enough; resume"))
            return
        self._outbox.append(frame)
        self._outbox_bytes += len(frame)
        self._wakeup.set()

    async def room(self) -> None:
        """Wait until the outbox is at most half full (or the connection is
        done). A replay calls this between events: it paces itself by the
        client instead of overflowing the outbox. It also waits for an
        access reload the last event started."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        while not self.done and self._outbox_bytes > self.limits.outbox_bytes // 2:
            self._room.clear()
            await self._room.wait()

    def request_close(self, close: Close) -> None:
        if self.close_request is None:
            self.close_request = close
            self._outbox.clear()
            self._outbox_bytes = 0
        self._wakeup.set()
        self._room.set()

    def abort(self) -> None:
        """Drop the connection now, whatever is still queued for it."""
        if self._abort is not None:
            self._abort()

    def _watch_writes(self) -> None:
        """Armed while the writer is busy (checks every half send_timeout):
        drop the connection once one write has waited send_timeout. A
        timer per connection, not per frame: one per frame costs the
        fan-out dearly (asyncio.timeout: ~25 us a frame)."""
        self._watchdog = None
        started = self._write_started
        if started is None or self.closed.is_set():
            return  # idle: the next burst arms it again
        if asyncio.get_running_loop().time() - started >= self.limits.send_timeout:
            log.info(
                "dropping a websocket client that took nothing for %s s", self.limits.send_timeout
            )
            self.abort()
            return
        self._arm_watchdog()

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(
                self.limits.send_timeout / 2, self._watch_writes
            )

    async def run_writer(self) -> None:
        """Drain the outbox to the socket until a close is requested. Every
        write has a deadline (send_timeout, close_timeout): past it the
        connection is dropped, since waiting on a client that stopped
        reading would keep it (and the server's shutdown) open for ever."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                self._arm_watchdog()
                while self._outbox and self.close_request is None:
                    frame = self._outbox.popleft()
                    self._outbox_bytes -= len(frame)
                    if self._outbox_bytes <= self.limits.outbox_bytes // 2:
                        self._room.set()
                    self._write_started = loop.time()
                    await self.ws.send_text(frame)
                self._write_started = None
                if self.close_request is not None:
                    close = self.close_request
                    try:
                        await asyncio.wait_for(
                            self.ws.close(close.code, close.reason), self.limits.close_timeout
                        )
                    except TimeoutError:
                        self.abort()  # no room even for the close frame
                        return
                    # The frame is queued; a client that neither reads it
                    # nor answers would hold the TCP close open: cut it then.
                    loop.call_later(self.limits.close_timeout, self.abort)
                    return
        except Exception:
            # The peer went away mid-send (or was dropped); the reader
            # notices and cleans up.
            log.debug("websocket writer stopped", exc_info=True)
        finally:
            self._write_started = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            self.closed.set()
            self._room.set()


class Channel:
    """The live feed of one workspace in this process."""

    def __init__(self, runtime: Runtime, workspace_id: int, limits: Limits, node: str) -> None:
        self.runtime = runtime
        self.workspace_id = workspace_id
        self.limits = limits
        self.connections: set[Connection] = set()
        self.tracker = PresenceTracker(node, self._announce)
        self.next_seq = 1
        self._early: dict[int, WireEvent] = {}
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._catching_up = asyncio.Lock()
        self._gap_timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        # Subscribe first, then read the position: anything committed after
        # the position was read arrives on the bus (or is caught up).
        self._subscription = await self.runtime.bus.subscribe(workspace_topic(self.workspace_id))
        self.next_seq = await read(self.runtime, event_seq_of, self.workspace_id) + 1
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen()),
            loop.create_task(self._poll()),
            loop.create_task(self._watch_losses()),
            loop.create_task(self._heartbeat()),
        ]

    async def stop(self) -> None:
        tasks = list(self._tasks)  # gap tasks remove themselves as they finish
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        if self._subscription is not None:
            await self._subscription.close()

    async def _listen(self) -> None:
        assert self._subscription is not None
        async for raw in self._subscription:
            try:
                message: JsonValue = json.loads(raw)
            except ValueError:
                message = None
            if not isinstance(message, Mapping):
                log.warning("dropping a malformed bus message")
                continue
            if message.get("type") in ("presence", "viewing"):
                self.signal(self.tracker.receive(message, self.runtime.clock.now()))
                continue
            if message.get("ephemeral"):
                signal = Signal.parse(message)
                if signal is None:
                    continue
                frame = json.dumps({k: v for k, v in message.items() if k not in _INTERNAL})
                for conn in tuple(self.connections):
                    conn.offer_ephemeral(signal, frame)
                continue
            event = WireEvent.parse(message)
            if event is not None:  # else no durable event (no ws_seq...): dropped
                self._accept(event)

    def signal(self, frames: list[Outgoing], only: Connection | None = None) -> None:
        for frame, inbox_id, conversation_id in frames:
            for conn in (only,) if only is not None else tuple(self.connections):
                conn.offer_signal(frame, inbox_id, conversation_id)

    def _announce(self, signal: dict[str, JsonValue]) -> None:
        """Send this node's presence news to every node (itself included)."""
        task = asyncio.get_running_loop().create_task(
            broadcast_ephemeral(self.runtime.bus, self.workspace_id, signal)
        )
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT.total_seconds())
            self.tracker.heartbeat()
            self.signal(self.tracker.expire(self.runtime.clock.now()))

    async def _watch_losses(self) -> None:
        """The bus dropped messages (overflow, Redis outage): read them from
        the log. Woken by the loss itself, not by the next message."""
        assert self._subscription is not None
        seen = 0
        while True:
            losses = await self._subscription.wait_lost(seen)
            if losses == seen:
                return  # the subscription closed
            seen = losses
            try:
                await self._catch_up()
            except Exception:
                log.exception("catch-up after a bus loss failed; the poll will retry")

    async def _poll(self) -> None:
        """The safety net for publishes that never reached the bus."""
        while True:
            await asyncio.sleep(self.limits.poll_interval)
            try:
                if await read(self.runtime, event_seq_of, self.workspace_id) >= self.next_seq:
                    await self._catch_up()
            except Exception:
                log.exception("catch-up from the event log failed; will retry")

    def _accept(self, wire: WireEvent) -> None:
        seq = wire.ws_seq
        if seq < self.next_seq:
            return  # already delivered (replayed or duplicated)
        if seq > self.next_seq:
            self._early[seq] = wire
            if self._gap_timer is None:
                self._gap_timer = asyncio.get_running_loop().call_later(
                    self.limits.gap_wait, self._on_gap_timeout
                )
            return
        self._dispatch(wire)
        while self.next_seq in self._early:
            self._dispatch(self._early.pop(self.next_seq))
        if not self._early and self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _on_gap_timeout(self) -> None:
        self._gap_timer = None
        task = asyncio.get_running_loop().create_task(self._catch_up())
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def _catch_up(self) -> None:
        """Deliver everything from next_seq on, from the log."""
        async with self._catching_up:
            while True:
                batch = await read(
                    self.runtime,
                    events_from_seq,
                    self.workspace_id,
                    self.next_seq,
                    self.limits.catch_up_batch,
                )
                for wire in batch:
                    self._accept(wire)
                if len(batch) < self.limits.catch_up_batch:
                    break
            if self._early and self._gap_timer is None:
                self._gap_timer = asyncio.get_running_loop().call_later(
                    self.limits.gap_wait, self._on_gap_timeout
                )

    def _dispatch(self, wire: WireEvent) -> None:
        self.next_seq = wire.ws_seq + 1
        frame = event_frame(wire)
        for conn in tuple(self.connections):
            conn.offer(wire, frame)


class Hub:
    """All live connections of this process, by workspace."""

    def __init__(self, runtime: Runtime, limits: Limits | None = None) -> None:
        self.runtime = runtime
        self.limits = limits or Limits(send_timeout=runtime.settings.ws_send_timeout)
        self.channels: dict[int, Channel] = {}
        self._lock = asyncio.Lock()
        self.node = uuid.uuid4().hex  # this process, for presence
        self.closing = False  # shutting down: no new connections

    def any_online(self, workspace_id: int, agent_ids: set[int]) -> bool:
        """Whether one of `agent_ids` is online, as this process knows it
        (agents on other processes are known once their heartbeat arrived,
        which needs a live channel here: without one, nobody is known)."""
        channel = self.channels.get(workspace_id)
        if channel is None:
            return False
        board, now = channel.tracker.presence, self.runtime.clock.now()
        return any(board.status(agent_id, now) == "online" for agent_id in agent_ids)

    async def join(self, conn: Connection) -> Channel:
        """Register `conn` for live events of its workspace. Events that
        arrive before it goes live are held, so nothing between this call
        and the end of its replay is lost."""
        async with self._lock:
            if self.closing:
                raise HubClosing
            channel = self.channels.get(conn.workspace_id)
            if channel is None:
                channel = Channel(self.runtime, conn.workspace_id, self.limits, self.node)
                await channel.start()
                self.channels[conn.workspace_id] = channel
            if self.closing:  # began while this join waited for the bus
                raise HubClosing
            channel.connections.add(conn)
            conn.channel = channel
            return channel

    async def leave(self, conn: Connection) -> None:
        async with self._lock:
            channel = self.channels.get(conn.workspace_id)
            if channel is None:
                return
            channel.connections.discard(conn)
            if not channel.connections:
                del self.channels[conn.workspace_id]
                await channel.stop()

    async def shutdown(self, within: float) -> None:
        """The server is stopping: close every socket with 1001 (going
        away: reconnect and resume), and refuse new ones. Runs before the
        web server closes what is left itself (uvicorn would say 1012).
        Returns once every close frame is written, or after `within` s, when
        the connections still not closed are dropped."""
        # Not under the lock: a join holds it while the bus subscribes,
        # which may take seconds with Redis down; it sees `closing` after.
        self.closing = True
        conns = [conn for channel in self.channels.values() for conn in channel.connections]
        for conn in conns:
            conn.request_close(_GOING_AWAY)
        waits = [asyncio.ensure_future(conn.closed.wait()) for conn in conns]
        if waits:
            _, late = await asyncio.wait(waits, timeout=within)
            for wait in late:
                wait.cancel()
        for conn in conns:
            if not conn.closed.is_set():
                conn.abort()

    async def close(self) -> None:
        """Lifespan end: stop every channel (the sockets were closed by
        `shutdown`, or are asked to close now, under a server without it)."""
        async with self._lock:
            self.closing = True
            for channel in self.channels.values():
                for conn in channel.connections:
                    conn.request_close(_GOING_AWAY)
                await channel.stop()
            self.channels.clear()


class HubClosing(Exception):
    """The server is shutting down: the handshake is refused (503)."""


_GOING_AWAY = Close(CloseCode.GOING_AWAY, "server restarting; resume")
