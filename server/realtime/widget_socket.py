"""`/ws/widget`: a visitor's live chat (FEATURES.md F8, PROTOCOLS.md P2/P3).

The visitor session token travels as the second websocket subprotocol
(`new WebSocket(url, ["threadline.widget", token])`): in the handshake,
like every credential, but never in a URL that access logs keep. The
`Origin` must be Threadline's own (the widget iframe) or one of the
inbox's allowed sites; otherwise the handshake is refused (403).

After that it is the agent socket's protocol, narrowed: the same join →
position → access → replay → ready → live sequence (server.realtime.connect,
with `VisitorPolicy` below), so nothing is missed or repeated, but the
visitor only hears about its own conversations' public messages, their
status, the agents' read position and agents typing
(server.realtime.visitor_frames), plus whether any agent who can answer
is online.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from server.actions.context import perform
from server.actions.ephemeral import broadcast_ephemeral
from server.actions.reads import do_mark_read_by_visitor
from server.auth.visitors import visitor_session
from server.domain.actors import system_actor
from server.domain.errors import NotFound
from server.queries.reading import read
from server.queries.visitor_live import (
    inbox_agent_ids,
    visitor_conversation_ids,
    visitor_session_by_id,
)
from server.queries.visitors import VisitorSession
from server.realtime.connect import serve_socket
from server.realtime.hub import Connection, Hub
from server.realtime.protocol import RESYNC_FRAME, BadFrame, ClientFrame, Read, Typing
from server.realtime.visibility import Close, CloseCode, Viewer, VisitorScope
from server.realtime.visitor_frames import (
    availability_frame,
    visitor_event_frame,
    visitor_signal_frame,
)
from server.runtime import Runtime

log = logging.getLogger(__name__)

SUBPROTOCOL = "threadline.widget"
# A visitor's resume scans the workspace's log for its few events; past
# this many events it reloads its conversation over REST instead, so that
# nobody can make the server scan the whole log with `last_event_id=0`.
VISITOR_REPLAY_SPAN = 5_000


def _token(ws: WebSocket) -> str | None:
    # Its length is checked by visitor_session, as for REST's header.
    offered = list(ws.scope.get("subprotocols") or ())
    if len(offered) != 2 or offered[0] != SUBPROTOCOL:
        return None
    return str(offered[1])


async def _session(ws: WebSocket, runtime: Runtime) -> VisitorSession:
    session = await visitor_session(ws, runtime, _token(ws))
    if session is None:
        raise NotFound("widget session not found")
    return session


async def _viewer(runtime: Runtime, session: VisitorSession) -> Viewer:
    conversations = await read(runtime, visitor_conversation_ids, session)
    return Viewer(
        workspace_id=session.workspace_id,
        agent_id=None,
        is_admin=False,
        inboxes=set(),
        sees_private=False,
        conversations=conversations,
        visitor=VisitorScope(
            session.session_id, session.contact_id, session.inbox_id, session.proven_contact_id
        ),
    )


class _Availability:
    """Whether an agent who can answer in the inbox is online, sent to the
    visitor when it changes (the widget shows the offline form when not)."""

    def __init__(self, hub: Hub, conn: Connection, agent_ids: set[int]) -> None:
        self.hub, self.conn, self.agent_ids = hub, conn, agent_ids
        self.last: bool | None = None

    def check(self) -> None:
        online = self.hub.any_online(self.conn.workspace_id, self.agent_ids)
        if online != self.last:
            self.last = online
            self.conn.send(availability_frame(online))


class VisitorPolicy:
    """A visitor's socket: its session token and Origin in the handshake,
    its own conversations' public side only, and agents' availability."""

    subprotocol = SUBPROTOCOL

    def __init__(self) -> None:
        self.session: VisitorSession | None = None
        self.availability: _Availability | None = None

    @property
    def replay_span(self) -> int:
        return VISITOR_REPLAY_SPAN

    async def authenticate(self, ws: WebSocket, runtime: Runtime) -> int:
        self.session = await _session(ws, runtime)
        return self.session.workspace_id

    async def confirm(self, ws: WebSocket, runtime: Runtime) -> None:
        """A visitor's session is checked in the handshake only."""

    async def load(self, runtime: Runtime, hub: Hub, conn: Connection) -> None:
        session = self.session
        assert session is not None  # authenticated
        conn.delivery.viewer = await _viewer(runtime, session)
        conn.delivery.project_event = visitor_event_frame
        conn.delivery.project_signal = visitor_signal_frame
        conn.refresh_access = lambda c: _reload(runtime, session.session_id, c)
        self.availability = _Availability(
            hub, conn, await read(runtime, inbox_agent_ids, session.workspace_id, session.inbox_id)
        )

    def went_live(self, runtime: Runtime, conn: Connection) -> None:
        assert self.availability is not None  # loaded
        self.availability.check()
        conn.on_presence = self.availability.check

    async def handle(self, runtime: Runtime, conn: Connection, frame: ClientFrame) -> None:
        await _handle(runtime, conn, frame)

    def left(self, conn: Connection) -> None:
        pass


async def widget_socket(ws: WebSocket) -> None:
    await serve_socket(ws, VisitorPolicy())


async def _reload(runtime: Runtime, session_id: int, conn: Connection) -> None:
    """The session was identified as another contact, or a merge changed
    its contact's conversations (server.realtime.visibility): follow the
    conversations it has now, and tell the widget to reload its state."""
    session = await read(runtime, visitor_session_by_id, session_id)
    if session is None:
        conn.request_close(Close(CloseCode.UNAUTHENTICATED, "widget session ended"))
        return
    conn.delivery.viewer = await _viewer(runtime, session)
    conn.send(RESYNC_FRAME)


async def _handle(runtime: Runtime, conn: Connection, frame: ClientFrame) -> None:
    viewer = conn.delivery.viewer
    assert viewer is not None and viewer.visitor is not None and viewer.conversations is not None
    scope = viewer.visitor
    if isinstance(frame, Typing):
        if frame.conversation_id not in viewer.conversations:
            raise BadFrame("not_found", "conversation not found")
        await broadcast_ephemeral(
            runtime.bus,
            viewer.workspace_id,
            {
                "type": "typing",
                "conversation_id": frame.conversation_id,
                "inbox_id": scope.inbox_id,
                "contact_id": scope.contact_id,
                "agent_id": None,
                "typing": frame.typing,
                "origin": conn.delivery.origin,
            },
        )
    elif isinstance(frame, Read):
        await perform(
            runtime,
            system_actor(viewer.workspace_id),
            do_mark_read_by_visitor,
            session_id=scope.session_id,
            conversation_id=frame.conversation_id,
            seq=frame.seq,
        )
    else:
        raise BadFrame("unsupported", "not supported on this socket")
