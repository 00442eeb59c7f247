"""The live hub of one process: websocket connections grouped by workspace,
fed from the bus, falling back to the event log whenever the bus loses
anything (PROTOCOLS.md P1, P2).

Ordering: every event carries `ws_seq`, contiguous per workspace. A
channel delivers strictly in ws_seq order; an event that arrives early
waits briefly for the missing one, which is then read from the log. A bus
subscription that lost messages, or a publish that never happened (Redis
was down), is repaired the same way: the channel reads what it missed
from the log. So the bus is only ever a fast path.

What each socket is sent, held or closed for is decided by its Delivery
(server.realtime.delivery, pure); a Connection here carries that out.

Fan-out in one pass: an event's frame is made once (`event_frame`), and
under `threadline serve` written to every socket that may see it straight
onto its transport, synchronously (server.realtime.transport,
DirectWrites): no task is woken per socket per event, and the fan-out
never awaits a socket. Only a socket whose transport paused writing (its
buffer past its limit: the client reads slower than events come) gets
its frames queued in its bounded outbox, written on when the transport
resumes. Under a server without direct writes, a writer task per socket
drains the outbox through ASGI instead.

Backpressure: a connection whose pending bytes (outbox, plus what its
transport held when it paused) pass the limit is closed with 4008
(TOO_SLOW) and resumes from its last_event_id, without slowing anyone
else. A replay, which reads the log at its own pace, waits for room
instead (`Connection.room`), so resuming a long gap never counts as too
slow.

Stalls: every write to a socket has a deadline. A client that takes
nothing for half `send_timeout` (its kernel buffers full: it stopped
reading, or its network is gone; measured from when its transport paused,
or its writer's send began) is closed with 4008 (TOO_SLOW): the close
frame waits behind what it has not taken, so a client that reads on gets
it and resumes. One that still takes nothing at `send_timeout` is dropped
at once (server.realtime.transport): no close frame could get through; it
reconnects and resumes. A close frame gets `close_timeout` to be written
and answered.

Shutdown (`Hub.shutdown`): every socket is closed with 1001, going away,
within a bound, and new connections are refused with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping

from starlette.websockets import WebSocket

from server.actions.context import perform
from server.actions.ephemeral import broadcast_ephemeral
from server.actions.requeue import do_record_presence
from server.bus.base import Subscription, workspace_topic
from server.domain.actors import system_actor
from server.domain.json_types import JsonValue
from server.domain.wire_events import Signal, WireEvent
from server.queries.events import event_seq_of, events_from_seq
from server.queries.reading import read
from server.realtime.delivery import CLOSE, PRESENCE, REFRESH, WRITE, Delivery, Limits
from server.realtime.flag import Flag
from server.realtime.presence import HEARTBEAT
from server.realtime.protocol import event_frame
from server.realtime.tracker import Outgoing, PresenceTracker
from server.realtime.transport import direct_writes, transport_abort
from server.realtime.visibility import Close, CloseCode
from server.runtime import Runtime

# Limits is defined with the delivery rules it sets and re-exported: the
# hub's users configure it here.
__all__ = ["Channel", "Connection", "Hub", "HubClosing", "Limits"]

log = logging.getLogger(__name__)

# Fields of a bus message that are for routing, not for clients.
_INTERNAL = {"ephemeral", "origin", "workspace_id"}


class Connection:
    """One websocket: the I/O around its Delivery (server.realtime.delivery),
    which decides what it is sent and when it closes. This moves the frames:
    straight onto the transport as they come while it takes more (or a
    writer task drains the outbox, without direct writes), a timer watches
    for stalled writes, an access reload runs as a task, and the writer
    task writes the close frame."""

    # One per socket, thousands a process: no __dict__ each, and Flags,
    # not asyncio.Events (server.realtime.flag).
    __slots__ = (
        "_abort",
        "_direct",
        "_inline",
        "_refreshing",
        "_room",
        "_wakeup",
        "_watchdog",
        "channel",
        "closed",
        "delivery",
        "limits",
        "on_presence",
        "refresh_access",
        "status",
        "viewing",
        "workspace_id",
        "ws",
    )

    def __init__(self, ws: WebSocket, workspace_id: int, limits: Limits) -> None:
        self.ws = ws
        self.workspace_id = workspace_id
        self.limits = limits
        self.delivery = Delivery(limits, uuid.uuid4().hex)
        # Presence of this socket's agent, and the conversation it shows.
        self.channel: Channel | None = None
        self.status = "online"
        self.viewing: tuple[int, int] | None = None  # (conversation_id, inbox_id)
        self._wakeup = Flag()
        self._room = Flag()
        self.closed = Flag()
        self.refresh_access: Callable[[Connection], Awaitable[None]] | None = None
        # A widget visitor's socket follows agents' presence.
        self.on_presence: Callable[[], None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._abort = transport_abort(ws)
        self._direct = direct_writes(ws)
        # Set while frames go straight to the transport: from when the
        # writer starts (after accept) until it stops.
        self._inline = False
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        """True once this connection is closing or its writer has stopped:
        nothing sent from now on reaches the client."""
        return self.delivery.close_request is not None or self.closed.is_set()

    # -- inputs, passed to the delivery; its effects carried out -------------

    def offer(self, wire: WireEvent, frame: str) -> None:
        """A live event from the channel (held while replaying)."""
        effects = self.delivery.offer(wire, frame)
        if effects == WRITE:  # the usual answer: the fan-out's path
            if self._inline:
                self._write_now()
            else:
                self._wakeup.set()
        elif effects:
            self._carry_out(effects)

    def offer_ephemeral(self, signal: Signal, frame: str) -> None:
        effects = self.delivery.offer_ephemeral(signal, frame)
        if effects == WRITE:
            if self._inline:
                self._write_now()
            else:
                self._wakeup.set()
        elif effects:
            self._carry_out(effects)

    def offer_signal(self, frame: str, inbox_id: int | None, conversation_id: int | None) -> None:
        self._carry_out(self.delivery.offer_signal(frame, inbox_id, conversation_id))

    def go_live(self) -> None:
        self._carry_out(self.delivery.go_live())

    def deliver(self, wire: WireEvent, frame: str | None = None) -> None:
        """A replayed event (or a live one, once live)."""
        self._carry_out(self.delivery.deliver(wire, frame))

    def send(self, frame: str) -> None:
        self._carry_out(self.delivery.send(frame))

    def request_close(self, close: Close) -> None:
        self._carry_out(self.delivery.request_close(close))

    def _carry_out(self, effects: int) -> None:
        if not effects:
            return
        if effects & WRITE:
            if self._inline:
                self._write_now()
            else:
                self._wakeup.set()
        if effects & CLOSE:
            self._wakeup.set()
            self._room.set()
        if effects & REFRESH:
            if self.refresh_access is None:
                self._carry_out(self.delivery.access_reloaded())
            else:
                loop = asyncio.get_running_loop()
                self._refreshing = loop.create_task(self._refresh(self.refresh_access))
        if effects & PRESENCE and self.on_presence is not None:
            self.on_presence()

    async def _refresh(self, reload: Callable[[Connection], Awaitable[None]]) -> None:
        try:
            await reload(self)
        except Exception:
            log.exception("reloading a connection's access failed")
            self.request_close(Close(CloseCode.GOING_AWAY, "could not reload access; resume"))
        finally:
            self._refreshing = None
            self._carry_out(self.delivery.access_reloaded())

    async def room(self) -> None:
        """Wait until the delivery has room for the next replayed event (or
        the connection is done): a replay calls this between events, so it
        paces itself by the client instead of overflowing the outbox. It
        also waits for an access reload the last event started."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        while not self.done and not self.delivery.has_room:
            self._room.clear()
            await self._room.wait()

    def abort(self) -> None:
        """Drop the connection now, whatever is still queued for it."""
        if self._abort is not None:
            self._abort()

    # -- writing straight onto the transport ---------------------------------

    def _write_now(self) -> None:
        """Write what the outbox holds onto the transport, in order, until
        it is empty or the transport pauses (the rest waits for it to
        resume). Synchronous: nothing else writes this socket meanwhile."""
        direct = self._direct
        assert direct is not None
        delivery = self.delivery
        while (frame := delivery.take_writable()) is not None:
            if not direct.send_text(frame):
                # Closing or gone: the reader sees the end and cleans up;
                # nothing is written or queued from now on.
                self._inline = False
                self.request_close(_LOST)
                return

    def _writing_paused(self) -> None:
        assert self._direct is not None
        self.delivery.writing_paused(asyncio.get_running_loop().time(), self._direct.buffered())
        self._arm_watchdog()

    def _writing_resumed(self) -> None:
        self.delivery.writing_resumed()
        if self._inline:
            self._write_now()
        self._room.set()  # a replay waiting for the transport to drain

    # -- the writer ---------------------------------------------------------

    def _watch_writes(self) -> None:
        """Armed while a write waits on the client: close the connection
        with 4008 once the delivery says it stalled, drop it once it
        waited too long."""
        self._watchdog = None
        if not self.delivery.waiting or self.closed.is_set():
            return  # idle: the next burst (or pause) arms it again
        now = asyncio.get_running_loop().time()
        drop = self.delivery.overdue(now)
        if drop is not None:
            log.info("dropping a websocket client that %s", drop.reason)
            self.abort()
            return
        # The timer may fire a hair early (asyncio runs what is due within
        # its clock's resolution): the half-timeout look must still count.
        self._carry_out(self.delivery.stalled(now + _TIMER_SLACK))
        self._arm_watchdog()

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(
                self.delivery.watch_interval, self._watch_writes
            )

    async def run_writer(self) -> None:
        """Once the socket is accepted: write the delivery's frames to it
        (directly, as they come, if the server allows; else from here)
        until a close is requested, then the close frame. Waiting on a
        client that stopped reading would keep it (and the server's
        shutdown) open for ever: the delivery's deadlines decide when it is
        dropped instead."""
        loop = asyncio.get_running_loop()
        delivery = self.delivery
        direct = self._direct
        if direct is not None:
            direct.watch_writing(self._writing_paused, self._writing_resumed)
            if direct.writing_paused:
                self._writing_paused()
            self._inline = True
            self._write_now()  # anything queued before the accept
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                if direct is None:
                    self._arm_watchdog()
                    while (frame := delivery.next_frame(loop.time())) is not None:
                        if delivery.has_room:
                            self._room.set()
                        await self.ws.send_text(frame)
                    delivery.writer_idle()
                if delivery.close_request is not None:
                    close = delivery.begin_close(loop.time())
                    deadline = delivery.close_deadline
                    assert deadline is not None
                    # asyncio.timeout, not wait_for: wait_for's inner task
                    # would hold the exception of a close to a client already
                    # gone, whose traceback holds that task: a reference
                    # cycle keeping the whole socket for the collector.
                    try:
                        async with asyncio.timeout_at(deadline):
                            await self.ws.close(close.code, close.reason)
                    except TimeoutError:
                        self.abort()  # no room even for the close frame
                        return
                    # The frame is queued; a client that neither reads it
                    # nor answers would hold the TCP close open: cut it then.
                    delivery.close_written(loop.time())
                    deadline = delivery.close_deadline
                    assert deadline is not None
                    loop.call_at(deadline, self.abort)
                    return
        except Exception:
            # The peer went away mid-send (or was dropped); the reader
            # notices and cleans up.
            log.debug("websocket writer stopped", exc_info=True)
        finally:
            self._inline = False
            if direct is not None:
                direct.watch_writing(None, None)
            delivery.writer_idle()
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            self.closed.set()
            self._room.set()


# Presence writes in flight (held so they are not collected mid-way).
_PRESENCE_WRITES: set[asyncio.Task[None]] = set()


class Channel:
    """The live feed of one workspace in this process."""

    def __init__(self, runtime: Runtime, workspace_id: int, limits: Limits, node: str) -> None:
        self.runtime = runtime
        self.workspace_id = workspace_id
        self.limits = limits
        self.connections: set[Connection] = set()
        self.tracker = PresenceTracker(node, self._announce)
        self._recorded: dict[int, bool] = {}  # the presence last written, by agent
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
        """Send this node's presence news to every node (itself included);
        an agent's first socket here opening or last one closing is also
        recorded for assignment (server.actions.requeue) — as leaving only
        when no other process holds a live socket of theirs."""
        agent_id = signal.get("agent_id")
        if signal.get("type") == "presence" and isinstance(agent_id, int):
            now = self.runtime.clock.now()
            elsewhere = any(
                a == agent_id and node != self.tracker.node and until > now
                for (a, node), (_, until) in self.tracker.presence.entries.items()
            )
            self._record_presence(agent_id, signal.get("status") != "offline" or elsewhere)
        task = asyncio.get_running_loop().create_task(
            broadcast_ephemeral(self.runtime.bus, self.workspace_id, signal)
        )
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    def _record_presence(self, agent_id: int, connected: bool) -> None:
        if self._recorded.get(agent_id) is connected:
            return  # a heartbeat, or online -> away: nothing new to write
        self._recorded[agent_id] = connected
        # Not one of the channel's tasks: the channel stops when its last
        # socket closes, and that closing is what must be written.
        task = asyncio.get_running_loop().create_task(self._write_presence(agent_id, connected))
        _PRESENCE_WRITES.add(task)
        task.add_done_callback(_PRESENCE_WRITES.discard)

    async def _write_presence(self, agent_id: int, connected: bool) -> None:
        try:
            await perform(
                self.runtime,
                system_actor(self.workspace_id),
                do_record_presence,
                agent_id=agent_id,
                connected=connected,
            )
        except Exception:
            # Assignment then sees stale presence until the next change;
            # the live feed itself is unaffected.
            log.exception("recording agent %s's presence failed", agent_id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT.total_seconds())
            self.tracker.heartbeat()
            now = self.runtime.clock.now()
            board = self.tracker.presence.entries
            expired = sorted({agent for (agent, _), (_, until) in board.items() if until <= now})
            self.signal(self.tracker.expire(now))
            # A process that died held these agents' last sockets: every
            # survivor records it (the write is idempotent).
            for agent_id in expired:
                if self.tracker.presence.status(agent_id, now) == "offline":
                    self._record_presence(agent_id, connected=False)

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
        # Connections joined and left so far (server.heap freezes on them).
        self.joined = 0
        self.left = 0

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
            self.joined += 1
            return channel

    async def leave(self, conn: Connection) -> None:
        async with self._lock:
            channel = self.channels.get(conn.workspace_id)
            if channel is None:
                return
            if conn in channel.connections:
                channel.connections.remove(conn)
                self.left += 1
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


_TIMER_SLACK = 0.001  # seconds
_GOING_AWAY = Close(CloseCode.GOING_AWAY, "server restarting; resume")
_LOST = Close(CloseCode.GOING_AWAY, "connection lost")
