"""`/ws/agent` and `/ws/bot`: thin shells around the hub.

Connect: authenticate in the handshake (reject with 403 before accept),
register with the hub (live events are held from here on), load the
viewer's access, replay from `last_event_id` (or tell the client to
resync), send `ready`, then go live. So nothing committed after the
handshake is missed, whatever the timing (PROTOCOLS.md P2).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from server.actions.ephemeral import broadcast_ephemeral
from server.auth.callers import authenticate_websocket
from server.domain.actors import Actor
from server.domain.errors import DomainError
from server.domain.integers import INT64_MAX
from server.queries.access import access_conversation, visible_inbox_ids, visible_team_ids
from server.queries.auth import actor_for_agent
from server.queries.conversations import list_messages
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
    Presence,
    Sync,
    Typing,
    Viewing,
    error_frame,
    parse_client_frame,
    ready_frame,
)
from server.realtime.ratelimit import TokenBucket
from server.realtime.transport import restarting_response
from server.realtime.visibility import Close, CloseCode, Viewer
from server.runtime import Runtime
from server.wire.schema import Int, obj

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 20.0
FRAME_BURST = 60.0
REPLAY_BATCH = 500


def _hub(ws: WebSocket) -> Hub:
    hub: Hub = ws.app.state.hub
    return hub


# The query parameters of every socket (/ws/agent, /ws/bot, /ws/widget),
# read by the same schema as REST's, before accept: a bad one is a 403.
SOCKET_QUERY = obj(
    last_event_id=Int(minimum=0, maximum=INT64_MAX, description="resume after this event (P2)")
)


def resume_point(ws: WebSocket) -> int | None:
    # Only the declared parameters are read: anything else a client or a
    # proxy adds to a socket URL is left alone, as it always was. An empty
    # value is one not given (a fresh start).
    known = [
        (k, v) for k, v in ws.query_params.multi_items() if k in SOCKET_QUERY.fields and v != ""
    ]
    last_event_id: int | None = SOCKET_QUERY.parse_query(known).get("last_event_id")
    return last_event_id


async def _viewer(runtime: Runtime, actor: Actor, *, sees_private: bool) -> Viewer:
    inboxes = await read(runtime, visible_inbox_ids, actor)
    teams = await read(runtime, visible_team_ids, actor)
    return Viewer(
        workspace_id=actor.workspace_id,
        agent_id=actor.agent_id,
        is_admin=actor.is_admin,
        inboxes=None if inboxes is None else set(inboxes),
        sees_private=sees_private,
        session_id=actor.session_id,
        token_id=actor.token_id,
        teams=None if teams is None else set(teams),
    )


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
        conn.last_event_id = position.last_event_id
        return True
    too_far = max_span is not None and position.last_event_id - last_event_id > max_span
    # Below the pruned mark the gap is partly gone; above the log's end the
    # id is not one of this workspace's (another workspace, a restored
    # database): resuming from it would silently skip events.
    if too_far or not position.pruned_through <= last_event_id <= position.last_event_id:
        conn.send(RESYNC_FRAME)
        conn.last_event_id = position.last_event_id
        return False
    cursor = last_event_id
    conn.last_event_id = last_event_id
    while True:
        batch = await read(runtime, events_after_id, conn.workspace_id, cursor, REPLAY_BATCH)
        for wire in batch:
            conn.deliver(wire)
            await conn.room()  # pace the replay by the client's reading
        if conn.done or len(batch) < REPLAY_BATCH:
            return True
        cursor = batch[-1]["event_id"]


@dataclasses.dataclass
class _Caller:
    """Who is on the other end, as of now (a role change replaces it)."""

    actor: Actor


async def _authenticate(ws: WebSocket, runtime: Runtime, *, bot: bool) -> Actor:
    actor = await authenticate_websocket(ws, runtime)
    if bot and actor.token_id is None:
        raise BadFrame("unauthenticated", "/ws/bot takes an API token")
    return actor


async def serve_socket(ws: WebSocket, *, bot: bool) -> None:
    runtime: Runtime = ws.app.state.runtime
    try:
        last_event_id = resume_point(ws)
        actor = await _authenticate(ws, runtime, bot=bot)
    except (DomainError, BadFrame):
        await ws.close(code=CloseCode.POLICY)  # before accept: a 403 response
        return
    hub = _hub(ws)
    conn = Connection(ws, actor.workspace_id, hub.limits)
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
            actor = await _authenticate(ws, runtime, bot=bot)
        except (DomainError, BadFrame):
            await ws.close(code=CloseCode.POLICY)
            return
        caller = _Caller(actor)
        conn.refresh_access = lambda c: _refresh(runtime, caller, c)
        conn.viewer = await _viewer(runtime, actor, sees_private=True)
        await ws.accept()
        writer = asyncio.get_running_loop().create_task(conn.run_writer())
        resumed = await replay(runtime, conn, last_event_id, position)
        conn.send(ready_frame(conn.last_event_id, resumed=resumed and last_event_id is not None))
        conn.go_live()
        _present(conn, actor, status="online")
        if conn.channel is not None and actor.agent_id is not None:
            conn.channel.signal(conn.channel.tracker.snapshot(runtime.clock.now()), only=conn)
        await read_frames(ws, conn, lambda frame: _handle(runtime, caller.actor, conn, frame))
    finally:
        _present(conn, actor, status=None)
        await leave(hub, conn, writer)


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


def _present(conn: Connection, actor: Actor, *, status: str | None) -> None:
    """Tell the workspace's presence tracker about this socket (None: gone)."""
    if conn.channel is None or actor.agent_id is None:
        return
    if status is not None:
        conn.status = status
    viewing, inbox_id = conn.viewing or (None, None)
    conn.channel.tracker.socket_update(
        actor.agent_id, conn.origin, status=status, viewing=viewing, inbox_id=inbox_id
    )


async def _refresh(runtime: Runtime, caller: _Caller, conn: Connection) -> None:
    """A role change: reload who this agent now is and what it may see."""
    fresh = await read(runtime, actor_for_agent, caller.actor)
    if fresh is None:
        conn.request_close(Close(CloseCode.FORBIDDEN, "account deactivated"))
        return
    caller.actor = fresh
    conn.viewer = await _viewer(runtime, fresh, sees_private=True)


async def read_frames(
    ws: WebSocket, conn: Connection, handle: Callable[[ClientFrame], Awaitable[None]]
) -> None:
    """Read client frames until the socket closes, enforcing the frame size
    and rate limits; `handle` answers each parsed frame."""
    bucket = TokenBucket(FRAMES_PER_SECOND, FRAME_BURST, time.monotonic())
    while conn.close_request is None:
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


async def _handle(runtime: Runtime, actor: Actor, conn: Connection, frame: Any) -> None:
    if isinstance(frame, Ping):
        conn.send(PONG_FRAME)
    elif isinstance(frame, Sync):
        page = await read(
            runtime,
            list_messages,
            actor,
            frame.conversation_id,
            after_seq=frame.after_seq,
            limit=100,
        )
        conn.send(
            json.dumps({"type": "messages", "conversation_id": frame.conversation_id, **page})
        )
    elif isinstance(frame, Typing):
        row = await read(runtime, access_conversation, actor, frame.conversation_id)
        await broadcast_ephemeral(
            runtime.bus,
            actor.workspace_id,
            {
                "type": "typing",
                "conversation_id": frame.conversation_id,
                "inbox_id": row.inbox_id,
                "agent_id": actor.agent_id,
                "typing": frame.typing,
                "private": frame.private,
                "origin": conn.origin,
            },
        )
    elif isinstance(frame, Presence):
        _present(conn, actor, status=frame.status)
    elif isinstance(frame, Viewing):
        if frame.conversation_id is None:
            conn.viewing = None
        else:
            row = await read(runtime, access_conversation, actor, frame.conversation_id)
            conn.viewing = (frame.conversation_id, row.inbox_id)
        _present(conn, actor, status=conn.status)
    else:
        raise BadFrame("unsupported", "not supported on this socket")


async def agent_socket(ws: WebSocket) -> None:
    await serve_socket(ws, bot=False)


async def bot_socket(ws: WebSocket) -> None:
    await serve_socket(ws, bot=True)
