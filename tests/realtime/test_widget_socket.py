"""`/ws/widget` on a real uvicorn server: the visitor's handshake, what a
visitor hears (and never hears), typing and read receipts both ways,
resume without gaps or duplicates, identity changes and agent
availability."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_add_inbox_member, do_create_inbox
from server.actions.messages import do_send_message
from server.actions.reads import do_mark_read
from server.domain.values import InboxKind
from server.domain.widget_identity import identity_hash
from server.realtime import widget_socket
from server.realtime.connect import SOCKET_QUERY
from server.realtime.protocol import MAX_FRAME_BYTES
from server.realtime.routes import websocket_routes
from server.realtime.visibility import CloseCode
from server.runtime import Runtime
from tests.realtime.live import FOREIGN_ORIGIN, LiveServer, Socket, eventually
from tests.support import BAD_INTEGERS, Workspace

W = "/api/v1/widget"
SHOP = "https://shop.example"


@dataclasses.dataclass
class Visitor:
    token: str
    contact_id: int

    def headers(self) -> dict[str, str]:
        return {"X-Widget-Session": self.token}


@pytest.fixture
async def widget(runtime: Runtime, ws: Workspace) -> NewInbox:
    inbox = await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Shop chat",
        kind=InboxKind.WIDGET,
        settings={"allowed_domains": [SHOP]},
        box=runtime.secrets,
    )
    await perform(
        runtime, ws.admin, do_add_inbox_member, inbox_id=inbox.inbox_id, agent_id=ws.agent_id
    )
    return inbox


async def start_visitor(live: LiveServer, widget: NewInbox) -> Visitor:
    async with live.http() as http:
        res = await http.post(f"{W}/sessions", json={"inbox_token": widget.public_token})
    assert res.status_code == 201, res.text
    body = res.json()
    return Visitor(body["session_token"], body["contact_id"])


async def visitor_says(
    live: LiveServer, visitor: Visitor, text: str, client_id: str
) -> dict[str, Any]:
    async with live.http(**visitor.headers()) as http:
        res = await http.post(f"{W}/messages", json={"text": text, "client_id": client_id})
    assert res.status_code == 201, res.text
    message: dict[str, Any] = res.json()["message"]
    return message


async def open_widget(
    live: LiveServer,
    visitor: Visitor,
    *,
    last_event_id: int | None = None,
    origin: str | None = None,
) -> Socket:
    return await live.open(
        "/ws/widget",
        origin=origin or live.base_url,
        last_event_id=last_event_id,
        subprotocols=["threadline.widget", visitor.token],
    )


async def reply(
    runtime: Runtime, ws: Workspace, conversation_id: int, text: str, *, private: bool = False
) -> None:
    await perform(
        runtime,
        ws.agent,
        do_send_message,
        conversation_id=conversation_id,
        text=text,
        private=private,
    )


async def test_handshake_needs_a_real_session_and_an_allowed_site(
    live: LiveServer, widget: NewInbox
) -> None:
    visitor = await start_visitor(live, widget)
    for subprotocols, origin in (
        (["threadline.widget"], live.base_url),
        (["threadline.widget", "tlw_not-a-session"], live.base_url),
        (["threadline.widget", "x" * 500], live.base_url),
        (["other", visitor.token], live.base_url),
        (["threadline.widget", visitor.token], FOREIGN_ORIGIN),
    ):
        with pytest.raises(InvalidStatus) as refused:
            await live.open("/ws/widget", origin=origin, subprotocols=subprotocols)
        assert refused.value.response.status_code == 403
    # The iframe (Threadline's own origin) and an allowed site may connect;
    # the server picks the widget subprotocol, never echoing the token.
    for origin in (live.base_url, SHOP):
        sock = await open_widget(live, visitor, origin=origin)
        assert sock.conn.subprotocol == "threadline.widget"
        await sock.ready()
        await sock.dispose()


async def test_visitor_hears_its_public_messages_only(
    runtime: Runtime, ws: Workspace, live: LiveServer, widget: NewInbox
) -> None:
    visitor, stranger = await start_visitor(live, widget), await start_visitor(live, widget)
    sock = await open_widget(live, visitor)
    await sock.ready()
    mine = await visitor_says(live, visitor, "hello?", "c1")
    theirs = await visitor_says(live, stranger, "stranger here", "s1")
    conversation_id = mine["conversation_id"]
    await reply(runtime, ws, conversation_id, "internal: VIP customer", private=True)
    await reply(runtime, ws, theirs["conversation_id"], "to the stranger")
    await reply(runtime, ws, conversation_id, "Hi! How can I help?")
    frames = await sock.until(lambda f: f["type"] == "message" and f["seq"] == 3)
    messages = [f for f in frames if f["type"] == "message"]
    assert [(m["conversation_id"], m["seq"], m["message"]["text"]) for m in messages] == [
        (conversation_id, 1, "hello?"),
        (conversation_id, 3, "Hi! How can I help?"),
    ]
    # The visitor's view: no agent ids, no internal fields.
    assert set(messages[1]["message"]) == {
        "id",
        "conversation_id",
        "seq",
        "direction",
        "sender_kind",
        "text",
        "html",
        "created_at",
        "attachments",
        "client_id",
    }
    assert [m["message"]["client_id"] for m in messages] == ["c1", None]
    assert messages[1]["message"]["direction"] == "outbound"
    # Nothing about assignment, other conversations or notes was sent.
    assert {f["type"] for f in sock.frames} <= {"ready", "availability", "conversation", "message"}
    await sock.ping()
    assert not any("VIP" in str(f) or "stranger" in str(f) for f in sock.frames)


async def test_typing_and_read_receipts_both_ways(
    runtime: Runtime, ws: Workspace, live: LiveServer, widget: NewInbox, agent_token: str
) -> None:
    visitor = await start_visitor(live, widget)
    first = await visitor_says(live, visitor, "hi", "c1")
    conversation_id = first["conversation_id"]
    agent = await live.open(token=agent_token)
    await agent.ready()
    sock = await open_widget(live, visitor)
    await sock.ready()

    # Agent typing a note is not shown to the visitor; typing a reply is.
    await agent.send({"type": "typing", "conversation_id": conversation_id, "private": True})
    await agent.send({"type": "typing", "conversation_id": conversation_id, "typing": True})
    typing = (await sock.until(lambda f: f["type"] == "typing"))[-1]
    assert typing == {"type": "typing", "conversation_id": conversation_id, "typing": True}
    assert len([f for f in sock.frames if f["type"] == "typing"]) == 1

    # Visitor typing reaches the agent, marked as the contact's.
    await sock.send({"type": "typing", "conversation_id": conversation_id, "typing": True})
    seen = (await agent.until(lambda f: f["type"] == "typing"))[-1]
    assert seen["agent_id"] is None and seen["contact_id"] == visitor.contact_id
    # ... but only in its own conversations.
    await sock.send({"type": "typing", "conversation_id": ws.conversation_id, "typing": True})
    error = (await sock.until(lambda f: f["type"] == "error"))[-1]
    assert error["code"] == "not_found"

    # The visitor reads the agent's reply: agents hear it once.
    await reply(runtime, ws, conversation_id, "hello from us")
    await sock.until(lambda f: f["type"] == "message" and f["seq"] == 2)
    for _ in range(2):
        await sock.send({"type": "read", "conversation_id": conversation_id, "seq": 2})
    read = (await agent.until(lambda f: f["type"] == "conversation.read"))[-1]
    assert read["data"]["reader"] == "contact" and read["data"]["seq"] == 2
    # The agent reads the visitor's message: the widget can show "Seen".
    await perform(runtime, ws.agent, do_mark_read, conversation_id=conversation_id, seq=1)
    seen_by_agent = (await sock.until(lambda f: f["type"] == "read"))[-1]
    assert (seen_by_agent["conversation_id"], seen_by_agent["seq"]) == (conversation_id, 1)
    await agent.ping()
    assert len(agent.events("conversation.read")) == 2  # the repeated read moved nothing


async def test_resume_replays_what_was_missed_once_in_order(
    runtime: Runtime, ws: Workspace, live: LiveServer, widget: NewInbox
) -> None:
    visitor = await start_visitor(live, widget)
    conversation_id = (await visitor_says(live, visitor, "hi", "c1"))["conversation_id"]
    sock = await open_widget(live, visitor)
    await sock.ready()
    await reply(runtime, ws, conversation_id, "one")
    await sock.until(lambda f: f["type"] == "message" and f["seq"] == 2)
    resume_from = sock.last_event_id
    await sock.dispose()

    for text in ("two", "three", "four"):
        await reply(runtime, ws, conversation_id, text)
    await visitor_says(live, visitor, "typed while away", "c2")

    again = await open_widget(live, visitor, last_event_id=resume_from)
    frames = await again.until(lambda f: f["type"] == "ready")
    replayed = [(f["seq"], f["message"]["text"]) for f in frames if f["type"] == "message"]
    assert replayed == [(3, "two"), (4, "three"), (5, "four"), (6, "typed while away")]
    assert frames[-1]["resumed"] is True


async def test_a_new_conversation_is_followed_live(
    runtime: Runtime, ws: Workspace, live: LiveServer, widget: NewInbox
) -> None:
    visitor = await start_visitor(live, widget)
    sock = await open_widget(live, visitor)
    await sock.ready()
    first = await visitor_says(live, visitor, "first words", "c1")
    frames = await sock.until(lambda f: f["type"] == "message")
    assert any(
        f["type"] == "conversation" and f["conversation"]["id"] == first["conversation_id"]
        for f in frames
    )
    await reply(runtime, ws, first["conversation_id"], "welcome")
    await sock.until(lambda f: f["type"] == "message" and f["seq"] == 2)


async def test_verified_identity_switches_the_socket_to_that_customer(
    runtime: Runtime, ws: Workspace, live: LiveServer, widget: NewInbox
) -> None:
    # Ann talked to us before on another device.
    earlier = await start_visitor(live, widget)
    async with live.http(**earlier.headers()) as http:
        secret = await widget_secret(live, ws, widget)
        res = await http.post(
            f"{W}/identify",
            json={"user_id": "ann", "identity_hash": identity_hash(secret, "ann")},
        )
        assert res.status_code == 200, res.text
    conversation_id = (await visitor_says(live, earlier, "order 7?", "c1"))["conversation_id"]

    visitor = await start_visitor(live, widget)
    sock = await open_widget(live, visitor)
    await sock.ready()
    async with live.http(**visitor.headers()) as http:
        res = await http.post(
            f"{W}/identify",
            json={"user_id": "ann", "identity_hash": identity_hash(secret, "ann")},
        )
        assert res.status_code == 200, res.text
    await sock.until(lambda f: f["type"] == "resync")
    await reply(runtime, ws, conversation_id, "your order shipped")
    got = (await sock.until(lambda f: f["type"] == "message"))[-1]
    assert got["message"]["text"] == "your order shipped"


async def widget_secret(live: LiveServer, ws: Workspace, widget: NewInbox) -> str:
    assert widget.secret is not None
    return widget.secret


async def test_availability_follows_the_inbox_agents(
    ws: Workspace, live: LiveServer, widget: NewInbox, agent_token: str
) -> None:
    visitor = await start_visitor(live, widget)
    sock = await open_widget(live, visitor)
    await sock.ready()
    first = (await sock.until(lambda f: f["type"] == "availability"))[-1]
    assert first["agents_online"] is False
    agent = await live.open(token=agent_token)
    await agent.ready()
    online = (await sock.until(lambda f: f["type"] == "availability"))[-1]
    assert online["agents_online"] is True
    await agent.dispose()
    offline = (await sock.until(lambda f: f["type"] == "availability", timeout=10))[-1]
    assert offline["agents_online"] is False
    await eventually(lambda: len(live.connections(ws.id)) == 1, what="the agent socket gone")


async def test_a_resume_from_too_far_back_is_a_resync(
    live: LiveServer, widget: NewInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nobody makes the server scan the whole log for one visitor: beyond
    # the span, the widget reloads over REST instead.
    monkeypatch.setattr(widget_socket, "VISITOR_REPLAY_SPAN", 3)
    visitor = await start_visitor(live, widget)
    for i in range(3):
        await visitor_says(live, visitor, f"m{i}", f"c{i}")
    sock = await open_widget(live, visitor, last_event_id=1)
    frames = await sock.until(lambda f: f["type"] == "ready")
    assert [f["type"] for f in frames] == ["resync", "ready"]
    assert frames[-1]["resumed"] is False
    near = await open_widget(live, visitor, last_event_id=frames[-1]["last_event_id"] - 1)
    frames = await near.until(lambda f: f["type"] == "ready")
    assert [f["type"] for f in frames] == ["message", "ready"]


async def test_the_frame_limits_hold_for_visitors(servers: Any, widget: NewInbox) -> None:
    # PROTOCOLS.md P2 on the visitor's socket: frames over 64 KiB close
    # with 1009 (checked by the app, for a server run without uvicorn's
    # limit), and a flood closes with 1008.
    live = await servers.start(ws_max_size=1024 * 1024)
    visitor = await start_visitor(live, widget)
    sock = await open_widget(live, visitor)
    await sock.ready()
    await sock.send(json.dumps({"type": "ping", "pad": "x" * MAX_FRAME_BYTES}))
    assert await sock.closed() == CloseCode.TOO_BIG
    flood = await open_widget(live, visitor)
    await flood.ready()
    with contextlib.suppress(ConnectionClosed):  # the close may cut the burst short
        for _ in range(150):
            await flood.send({"type": "ping"})
    assert await flood.closed() == CloseCode.POLICY


async def test_every_socket_refuses_a_malformed_integer_before_accept(
    live: LiveServer, widget: NewInbox, agent_token: str
) -> None:
    """Generated from the socket routes and their declared query
    parameters: a malformed integer is a 403 before accept (never a 500,
    never read as some number), the same one written plainly resumes."""
    visitor = await start_visitor(live, widget)
    credentials: dict[str, dict[str, Any]] = {
        "/ws/agent": {"token": agent_token},
        "/ws/bot": {"token": agent_token},
        "/ws/widget": {
            "origin": live.base_url,
            "subprotocols": ["threadline.widget", visitor.token],
        },
    }
    paths = {getattr(r, "path", None) for r in websocket_routes()}
    assert set(credentials) == paths, "say how to open the new socket here"
    bad_values = [*BAD_INTEGERS, "-1"]
    for path, how in credentials.items():
        first = await live.open(path, **how)
        mark = (await first.ready())["last_event_id"]
        await first.dispose()
        for name in SOCKET_QUERY.fields:
            for bad in bad_values:
                with pytest.raises(InvalidStatus) as refused:
                    await live.open(f"{path}?{name}={quote(bad, safe='')}", **how)
                status = refused.value.response.status_code
                assert status == 403, f"{path} {name}={bad!r}: {status}"
            with pytest.raises(InvalidStatus) as refused:
                await live.open(f"{path}?{name}={mark}&{name}={mark}", **how)
            assert refused.value.response.status_code == 403, f"{path} {name} twice"
            sock = await live.open(f"{path}?{name}={mark}", **how)
            assert (await sock.ready())["resumed"] is True, f"{path} {name}={mark}"
            await sock.dispose()
