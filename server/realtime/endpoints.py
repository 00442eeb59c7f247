"""`/ws/agent` and `/ws/bot`: an agent's or a bot's live socket.

The connect sequence is server.realtime.connect's; this is what it asks
of these sockets: the caller is authenticated as REST authenticates it
(a bot by its API token only), checked again once the socket's start
position is read, sees what it may read through REST, reports its
presence while connected, and may sync, type, view and set its status.
"""

from __future__ import annotations

import dataclasses
import json

from starlette.websockets import WebSocket

from server.actions.ephemeral import broadcast_ephemeral
from server.auth.callers import authenticate_websocket
from server.domain.actors import Actor
from server.queries.access import access_conversation, visible_inbox_ids, visible_team_ids
from server.queries.auth import actor_for_agent
from server.queries.conversations import list_messages
from server.queries.reading import read
from server.realtime.connect import serve_socket
from server.realtime.hub import Connection, Hub
from server.realtime.protocol import BadFrame, ClientFrame, Presence, Sync, Typing, Viewing
from server.realtime.visibility import Close, CloseCode, Viewer
from server.runtime import Runtime


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


async def _authenticate(ws: WebSocket, runtime: Runtime, *, bot: bool) -> Actor:
    actor = await authenticate_websocket(ws, runtime)
    if bot and actor.token_id is None:
        raise BadFrame("unauthenticated", "/ws/bot takes an API token")
    return actor


@dataclasses.dataclass
class AgentPolicy:
    """An agent's socket, or with `bot` a bot's (API tokens only)."""

    bot: bool
    subprotocol = None
    replay_span = None  # any gap the log still holds is replayed
    # Who is on the other end, as of now (a role change replaces it).
    actor: Actor = dataclasses.field(init=False)

    async def authenticate(self, ws: WebSocket, runtime: Runtime) -> int:
        self.actor = await _authenticate(ws, runtime, bot=self.bot)
        return self.actor.workspace_id

    async def confirm(self, ws: WebSocket, runtime: Runtime) -> None:
        self.actor = await _authenticate(ws, runtime, bot=self.bot)

    async def load(self, runtime: Runtime, hub: Hub, conn: Connection) -> None:
        conn.refresh_access = lambda c: _refresh(runtime, self, c)
        conn.delivery.viewer = await _viewer(runtime, self.actor, sees_private=True)

    def went_live(self, runtime: Runtime, conn: Connection) -> None:
        _present(conn, self.actor, status="online")
        if conn.channel is not None and self.actor.agent_id is not None:
            conn.channel.signal(conn.channel.tracker.snapshot(runtime.clock.now()), only=conn)

    def left(self, conn: Connection) -> None:
        _present(conn, self.actor, status=None)

    async def handle(self, runtime: Runtime, conn: Connection, frame: ClientFrame) -> None:
        if isinstance(frame, Sync):
            await _sync(runtime, self.actor, conn, frame)
        elif isinstance(frame, Typing):
            await _typing(runtime, self.actor, conn, frame)
        elif isinstance(frame, Presence):
            _present(conn, self.actor, status=frame.status)
        elif isinstance(frame, Viewing):
            await _viewing(runtime, self.actor, conn, frame)
        else:
            raise BadFrame("unsupported", "not supported on this socket")


def _present(conn: Connection, actor: Actor, *, status: str | None) -> None:
    """Tell the workspace's presence tracker about this socket (None: gone)."""
    if conn.channel is None or actor.agent_id is None:
        return
    if status is not None:
        conn.status = status
    viewing, inbox_id = conn.viewing or (None, None)
    conn.channel.tracker.socket_update(
        actor.agent_id, conn.delivery.origin, status=status, viewing=viewing, inbox_id=inbox_id
    )


async def _refresh(runtime: Runtime, caller: AgentPolicy, conn: Connection) -> None:
    """A role change: reload who this agent now is and what it may see."""
    fresh = await read(runtime, actor_for_agent, caller.actor)
    if fresh is None:
        conn.request_close(Close(CloseCode.FORBIDDEN, "account deactivated"))
        return
    caller.actor = fresh
    conn.delivery.viewer = await _viewer(runtime, fresh, sees_private=True)


async def _sync(runtime: Runtime, actor: Actor, conn: Connection, frame: Sync) -> None:
    page = await read(
        runtime, list_messages, actor, frame.conversation_id, after_seq=frame.after_seq, limit=100
    )
    conn.send(json.dumps({"type": "messages", "conversation_id": frame.conversation_id, **page}))


async def _typing(runtime: Runtime, actor: Actor, conn: Connection, frame: Typing) -> None:
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
            "origin": conn.delivery.origin,
        },
    )


async def _viewing(runtime: Runtime, actor: Actor, conn: Connection, frame: Viewing) -> None:
    if frame.conversation_id is None:
        conn.viewing = None
    else:
        row = await read(runtime, access_conversation, actor, frame.conversation_id)
        conn.viewing = (frame.conversation_id, row.inbox_id)
    _present(conn, actor, status=conn.status)


async def agent_socket(ws: WebSocket) -> None:
    await serve_socket(ws, AgentPolicy(bot=False))


async def bot_socket(ws: WebSocket) -> None:
    await serve_socket(ws, AgentPolicy(bot=True))
