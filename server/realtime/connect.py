"""The connect sequence every live socket follows (PROTOCOLS.md P2), once.

Authenticate in the handshake (reject with 403 before accept), register
with the hub (live events are held from here on; 503 while the server
shuts down), read the log position, confirm the credential and load the
viewer's access, accept, replay from `last_event_id` (or tell the client
to resync), send `ready`, then go live and read the client's frames
within the size and rate limits. So nothing committed after the
handshake is missed, whatever the timing.

What differs between `/ws/agent`, `/ws/bot` and `/ws/widget` (who the
caller is, what it may see, which frames it may send, what else it is
told once live) is a `SocketPolicy`: server.realtime.endpoints for
agents and bots, server.realtime.widget_socket for visitors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.domain.errors import DomainError
from server.domain.integers import INT64_MAX
from server.queries.events import LogPosition, events_after_id, log_position
from server.queries.reading import read
from server.realtime.hub import Connection, Hub, HubClosing
from server.realtime.protocol import (
    MAX_FRAME_BYTES,
    PONG_FRAME,
    RESYNC_FRAME,
    BadFrame,
    ClientFrame,
    Ping,
    error_frame,
    parse_client_frame,
    ready_frame,
)
from server.realtime.ratelimit import TokenBucket
from server.realtime.transport import restarting_response
from server.realtime.visibility import Close, CloseCode
from server.runtime import Runtime
from server.wire.schema import Int, obj

FRAMES_PER_SECOND = 20.0
FRAME_BURST = 60.0
REPLAY_BATCH = 500

# The query parameters of every socket (/ws/agent, /ws/bot, /ws/widget),
# read by the same schema as REST's, before accept: a bad one is a 403.
SOCKET_QUERY = obj(
    last_event_id=Int(minimum=0, maximum=INT64_MAX, description="resume after this event (P2)")
)


class SocketPolicy(Protocol):
    """One kind of socket's part in the sequence; one instance a connection
    (it remembers who connected). Raising DomainError or BadFrame from
    `authenticate` or `confirm` refuses the handshake with 403."""

    @property
    def subprotocol(self) -> str | None:
        """The websocket subprotocol accepted (None: none)."""
        ...

    @property
    def replay_span(self) -> int | None:
        """A resume further back than this many events is a resync."""
        ...

    async def authenticate(self, ws: WebSocket, runtime: Runtime) -> int:
        """Check the handshake's credential (and Origin); the workspace id."""
        ...

    async def confirm(self, ws: WebSocket, runtime: Runtime) -> None:
        """Check the credential again, now that the log position is read."""
        ...

    async def load(self, runtime: Runtime, hub: Hub, conn: Connection) -> None:
        """Give `conn` its viewer and hooks (still before accept)."""
        ...

    def went_live(self, runtime: Runtime, conn: Connection) -> None:
        """After `ready`: what else the client is told from now on."""
        ...

    async def handle(self, runtime: Runtime, conn: Connection, frame: ClientFrame) -> None:
        """Answer a client frame other than ping (BadFrame: not allowed)."""
        ...

    def left(self, conn: Connection) -> None:
        """The socket is closing (also when refused after joining)."""
        ...


def resume_point(ws: WebSocket) -> int | None:
    # Only the declared parameters are read: anything else a client or a
    # proxy adds to a socket URL is left alone, as it always was. An empty
    # value is one not given (a fresh start).
    known = [
        (k, v) for k, v in ws.query_params.multi_items() if k in SOCKET_QUERY.fields and v != ""
    ]
    last_event_id: int | None = SOCKET_QUERY.parse_query(known).get("last_event_id")
    return last_event_id


async def serve_socket(ws: WebSocket, policy: SocketPolicy) -> None:
    runtime: Runtime = ws.app.state.runtime
    try:
        last_event_id = resume_point(ws)
        workspace_id = await policy.authenticate(ws, runtime)
    except (DomainError, BadFrame):
        await ws.close(code=CloseCode.POLICY)  # before accept: a 403 response
        return
    hub: Hub = ws.app.state.hub
    conn = Connection(ws, workspace_id, hub.limits)
    if not await join(ws, hub, conn):  # live events are held from here on
        return
    writer: asyncio.Task[None] | None = None
    try:
        # Read the log position, then everything that decides access. A
        # change committed after the position is replayed or held and
        # applied in order; one committed before it shows in what is read
        # below, including a credential revoked since the handshake.
        position = await read(runtime, log_position, conn.workspace_id)
        try:
            await policy.confirm(ws, runtime)
        except (DomainError, BadFrame):
            await ws.close(code=CloseCode.POLICY)
            return
        await policy.load(runtime, hub, conn)
        await ws.accept(subprotocol=policy.subprotocol)
        writer = asyncio.get_running_loop().create_task(conn.run_writer())
        resumed = await replay(runtime, conn, last_event_id, position, max_span=policy.replay_span)
        conn.send(
            ready_frame(conn.delivery.last_event_id, resumed=resumed and last_event_id is not None)
        )
        conn.go_live()
        policy.went_live(runtime, conn)
        await read_frames(ws, conn, lambda frame: _answer(runtime, policy, conn, frame))
    finally:
        policy.left(conn)
        await leave(hub, conn, writer)


async def _answer(
    runtime: Runtime, policy: SocketPolicy, conn: Connection, frame: ClientFrame
) -> None:
    if isinstance(frame, Ping):  # every socket's keep-alive
        conn.send(PONG_FRAME)
    else:
        await policy.handle(runtime, conn, frame)


async def join(ws: WebSocket, hub: Hub, conn: Connection) -> bool:
    """Register with the hub; False if the server is shutting down, after
    refusing the handshake with 503 (come back soon, to its successor)."""
    try:
        await hub.join(conn)
    except HubClosing:
        with contextlib.suppress(WebSocketDisconnect):  # the client is gone already
            await ws.send_denial_response(restarting_response())
        return False
    return True


async def leave(hub: Hub, conn: Connection, writer: asyncio.Task[None] | None) -> None:
    """Unregister the connection, then let its writer send the close frame
    (within the close timeout) and stop. A writer still stuck after that
    is on a client that takes nothing: the connection is dropped."""
    await hub.leave(conn)
    if writer is not None and not writer.done():
        conn.request_close(Close(CloseCode.GOING_AWAY, "closing"))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(writer), hub.limits.close_timeout)
        if not writer.done():
            conn.abort()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    conn.closed.set()  # also when it never had a writer (refused before accept)


async def replay(
    runtime: Runtime,
    conn: Connection,
    last_event_id: int | None,
    position: LogPosition,
    *,
    max_span: int | None = None,
) -> bool:
    """Send what the client missed since `last_event_id` (up to now: events
    after `position` are replayed here or held by the hub); False when it
    must resync instead. With `max_span`, a gap of more event ids than that
    is answered with a resync too: reloading is cheaper than scanning it."""
    if last_event_id is None:
        conn.delivery.last_event_id = position.last_event_id
        return True
    too_far = max_span is not None and position.last_event_id - last_event_id > max_span
    # Below the pruned mark the gap is partly gone; above the log's end the
    # id is not one of this workspace's (another workspace, a restored
    # database): resuming from it would silently skip events.
    if too_far or not position.pruned_through <= last_event_id <= position.last_event_id:
        conn.send(RESYNC_FRAME)
        conn.delivery.last_event_id = position.last_event_id
        return False
    cursor = last_event_id
    conn.delivery.last_event_id = last_event_id
    while True:
        batch = await read(runtime, events_after_id, conn.workspace_id, cursor, REPLAY_BATCH)
        for wire in batch:
            conn.deliver(wire)
            await conn.room()  # pace the replay by the client's reading
        if conn.done or len(batch) < REPLAY_BATCH:
            return True
        cursor = batch[-1].event_id


async def read_frames(
    ws: WebSocket, conn: Connection, handle: Callable[[ClientFrame], Awaitable[None]]
) -> None:
    """Read client frames until the socket closes, enforcing the frame size
    and rate limits; `handle` answers each parsed frame."""
    bucket = TokenBucket(FRAMES_PER_SECOND, FRAME_BURST, time.monotonic())
    while conn.delivery.close_request is None:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            size = len(data)
        else:
            size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_FRAME_BYTES:
            conn.request_close(
                Close(CloseCode.TOO_BIG, f"frames are limited to {MAX_FRAME_BYTES} bytes")
            )
            return
        if not bucket.take(time.monotonic()):
            conn.request_close(Close(CloseCode.POLICY, "too many frames; slow down"))
            return
        if text is None:
            text = data.decode("utf-8", errors="replace")
        try:
            await handle(parse_client_frame(text))
        except BadFrame as bad:
            conn.send(error_frame(bad))
        except DomainError as exc:
            conn.send(error_frame(BadFrame(exc.code, exc.message)))
