"""Client frames (PROTOCOLS.md P2): ping, sync, typing; anything malformed
gets an error frame and the connection stays."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.actions.agents import do_update_agent
from server.actions.context import perform
from server.actions.teams import do_create_team
from server.domain.values import Role
from server.queries.events import log_position
from server.queries.reading import read
from server.realtime import endpoints
from server.runtime import Runtime
from tests.realtime.live import LiveServer, Socket, eventually, incoming, new_token, say
from tests.support import Workspace, seed_workspace


async def reply(sock: Socket, frame: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """Send `frame`; the next reply to it (skipping events and signals)."""
    await sock.send(frame)
    got = await sock.until(lambda f: f["type"] in ("pong", "messages", "error"))
    return got[-1]


async def test_sync_returns_messages_after_a_seq_or_an_error_for_what_it_cannot_see(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    written = [await say(runtime, ws.admin, ws.conversation_id, f"m{n}") for n in range(4)]
    billing = await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "secret")
    other = await seed_workspace(runtime, "Globex")
    sock = await live.open(token=agent_token)
    await sock.ready()

    page = await reply(
        sock, {"type": "sync", "conversation_id": ws.conversation_id, "after_seq": 2}
    )
    assert page["type"] == "messages" and page["conversation_id"] == ws.conversation_id
    assert [m["seq"] for m in page["items"]] == [3, 4, 5]
    assert [m["text"] for m in page["items"]] == ["m1", "m2", "m3"]
    assert page["has_more"] is False
    assert written[-1].seq == 5

    page = await reply(sock, {"type": "sync", "conversation_id": ws.conversation_id})
    assert [m["seq"] for m in page["items"]] == [1, 2, 3, 4, 5]
    page = await reply(
        sock, {"type": "sync", "conversation_id": ws.conversation_id, "after_seq": 5}
    )
    assert page["items"] == []

    # Another inbox, another workspace, no such conversation: an error
    # frame that reveals nothing, and the socket stays.
    for conversation_id in (billing.conversation_id, other.conversation_id, 10**9):
        error = await reply(sock, {"type": "sync", "conversation_id": conversation_id})
        assert error["type"] == "error" and error["code"] == "not_found", error
        assert "secret" not in str(error)
    assert await reply(sock, {"type": "ping"}) == {"type": "pong"}


async def test_ping_and_malformed_frames(live: LiveServer, agent_token: str) -> None:
    sock = await live.open(token=agent_token)
    await sock.ready()
    assert await reply(sock, {"type": "ping"}) == {"type": "pong"}
    cases: list[tuple[dict[str, Any] | str | bytes, str]] = [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('"ping"', "bad_frame"),
        ("{}", "bad_frame"),
        ({"type": 5}, "bad_frame"),
        ({"type": "launch"}, "unknown_type"),
        ({"type": "x" * 1000}, "unknown_type"),
        ({"type": "sync"}, "invalid"),
        ({"type": "sync", "conversation_id": "1"}, "invalid"),
        ({"type": "sync", "conversation_id": True}, "invalid"),
        ({"type": "sync", "conversation_id": 0}, "invalid"),
        ({"type": "sync", "conversation_id": 2**63}, "invalid"),
        ({"type": "sync", "conversation_id": 1, "after_seq": -1}, "invalid"),
        ({"type": "sync", "conversation_id": 1, "after_seq": 1.5}, "invalid"),
        ({"type": "typing", "conversation_id": 1, "typing": "yes"}, "invalid"),
        ({"type": "presence", "status": "busy"}, "invalid"),
        ("[" * 10_000, "bad_json"),
        (b"\xff\xfe not utf-8", "bad_json"),
        ('{"type": "ping", "x": "\\ud800"}', "pong"),
    ]
    for frame, code in cases:
        got = await reply(sock, frame)
        if code == "pong":
            assert got == {"type": "pong"}
            continue
        assert got["type"] == "error" and got["code"] == code, (frame, got)
        assert isinstance(got["message"], str) and len(got["message"]) < 200
    assert await reply(sock, {"type": "ping"}) == {"type": "pong"}


async def test_typing_reaches_who_may_see_the_conversation_and_not_the_sender(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    other = await seed_workspace(runtime, "Globex")
    _, outsider_token = await new_token(runtime, other.admin)
    billing = await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "hi")
    admin = await live.open(token=admin_token)
    agent = await live.open(token=agent_token)
    outsider = await live.open(token=outsider_token)
    for sock in (admin, agent, outsider):
        await sock.ready()

    await admin.send({"type": "typing", "conversation_id": billing.conversation_id})
    await admin.send({"type": "typing", "conversation_id": ws.conversation_id})
    signal = (await agent.until(lambda f: f["type"] == "typing"))[-1]
    assert signal == {
        "type": "typing",
        "conversation_id": ws.conversation_id,
        "inbox_id": ws.inbox_id,
        "agent_id": ws.admin_id,
        "typing": True,
        "private": False,
    }
    # The agent can't type where it can't read.
    error = await reply(agent, {"type": "typing", "conversation_id": billing.conversation_id})
    assert error["code"] == "not_found"
    await say(runtime, ws.admin, ws.conversation_id, "marker")
    await agent.until(lambda f: f["type"] == "message.created")
    await admin.until(lambda f: f["type"] == "message.created")
    assert [f for f in agent.frames if f["type"] == "typing"] == [signal]
    assert [f for f in admin.frames if f["type"] == "typing"] == []
    await other_marker(runtime, other, outsider)
    assert [f for f in outsider.frames if f["type"] == "typing"] == []


async def other_marker(runtime: Runtime, other: Workspace, sock: Socket) -> None:
    await say(runtime, other.admin, other.conversation_id, "marker")
    await sock.until(lambda f: f["type"] == "message.created")


async def test_a_demoted_admin_loses_what_it_no_longer_may_read(
    live: LiveServer,
    runtime: Runtime,
    ws: Workspace,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A role change reloads the socket's access from the database; events
    behind it wait for the reload instead of going out on the old access,
    and frames the client sends are answered with the new role."""
    billing = await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "before")
    reloads = asyncio.Event()
    real = endpoints._refresh

    async def held_back_reload(*args: Any) -> None:
        await reloads.wait()
        await real(*args)

    monkeypatch.setattr(endpoints, "_refresh", held_back_reload)
    sock = await live.open(token=admin_token)
    await sock.ready()
    page = await reply(sock, {"type": "sync", "conversation_id": billing.conversation_id})
    assert page["type"] == "messages"

    await perform(runtime, ws.system, do_update_agent, agent_id=ws.admin_id, role=Role.AGENT)
    await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "secret")
    # The hub has taken the message in while the reload is still pending.
    written = (await read(runtime, log_position, ws.id)).event_seq
    channel = live.hub.channels[ws.id]
    await eventually(lambda: channel.next_seq > written, what="the hub to dispatch")
    reloads.set()

    await perform(runtime, ws.system, do_create_team, name="marker")
    got = await sock.until(lambda f: f["type"] == "team.created")
    assert [f["type"] for f in got] == ["agent.updated", "team.created"]
    error = await reply(sock, {"type": "sync", "conversation_id": billing.conversation_id})
    assert error["type"] == "error" and error["code"] == "not_found"
