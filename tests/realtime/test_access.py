"""Authorization per event (PROTOCOLS.md P2): a raw websocket client
receives nothing it could not read through REST with the same credential,
and access changes apply from the event that makes them, live and on
resume alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.actions.context import perform
from server.actions.inboxes import do_add_inbox_member, do_remove_inbox_member
from server.actions.teams import do_create_team
from server.realtime import endpoints
from server.runtime import Runtime
from tests.realtime.live import LiveServer, incoming, login, new_token, say
from tests.support import Workspace, seed_workspace

PERSONAL = {
    "session.started",
    "session.ended",
    "api_token.created",
    "api_token.revoked",
    "agent.password_changed",
}


def is_text(text: str) -> Callable[[dict[str, Any]], bool]:
    def match(frame: dict[str, Any]) -> bool:
        return frame["type"] == "message.created" and bool(frame["data"]["text"] == text)

    return match


async def assert_readable_over_rest(
    server: LiveServer, token: str, agent_id: int, frames: list[dict[str, Any]]
) -> None:
    """Every event in `frames` is about something `token` can read over
    REST (the conversation, the inbox), or is the agent's own."""
    async with server.http(authorization=f"Bearer {token}") as http:
        for frame in frames:
            if "event_id" not in frame:
                continue
            if frame["type"] in PERSONAL:
                assert frame["data"]["agent_id"] == agent_id, frame
            if frame["conversation_id"] is not None:
                res = await http.get(f"/api/v1/conversations/{frame['conversation_id']}")
                assert res.status_code == 200, frame
            if frame["inbox_id"] is not None:
                res = await http.get(f"/api/v1/inboxes/{frame['inbox_id']}")
                assert res.status_code == 200, frame


async def test_agent_gets_nothing_of_an_inbox_it_is_not_in(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    agent = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    await agent.ready()
    await admin.ready()

    billing = await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "Refund?")
    await say(runtime, ws.admin, billing.conversation_id, "On it")
    await say(runtime, ws.agent, ws.conversation_id, "Hello from the agent")
    await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    await say(runtime, ws.admin, ws.conversation_id, "marker")

    got = await agent.until(is_text("marker"))
    assert not [f for f in got if f.get("inbox_id") == ws.other_inbox_id]
    assert not [f for f in got if f.get("conversation_id") == billing.conversation_id]
    assert [f["type"] for f in got if f["type"] == "team.created"] == ["team.created"]
    assert agent.messages() == [(ws.conversation_id, 2), (ws.conversation_id, 3)]
    await assert_readable_over_rest(live, agent_token, ws.agent_id, got)
    # ... and that check does refuse what the agent can't read.
    async with live.http(authorization=f"Bearer {agent_token}") as http:
        res = await http.get(f"/api/v1/conversations/{billing.conversation_id}")
        assert res.status_code == 404

    # Not vacuous: the admin, who may read the other inbox, got all of it.
    await admin.until(is_text("marker"))
    assert (billing.conversation_id, 2) in admin.messages()


async def test_another_workspace_gets_nothing(
    live: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Globex")
    _, other_admin_token = await new_token(runtime, other.admin)
    sock = await live.open(token=other_admin_token)
    ready = await sock.ready()

    billing = await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "Refund?")
    await say(runtime, ws.admin, billing.conversation_id, "Looking")
    await say(runtime, ws.agent, ws.conversation_id, "Hello")
    await perform(runtime, ws.admin, do_create_team, name="Acme team")
    await new_token(runtime, ws.admin)
    await incoming(runtime, other.id, other.inbox_id, "customer@globex.test", "marker")

    got = await sock.until(is_text("marker"))
    assert got and all(f["workspace_id"] == other.id for f in got if "event_id" in f)
    assert all(f["event_id"] > ready["last_event_id"] for f in got if "event_id" in f)
    assert sock.messages() == [(other.conversation_id, 2)]


async def test_inbox_membership_applies_from_its_event_on_live_and_on_resume(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    sock = await live.open(token=agent_token)
    start = (await sock.ready())["last_event_id"]

    billing = await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "before")
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "while a member")
    await perform(
        runtime,
        ws.system,
        do_remove_inbox_member,
        inbox_id=ws.other_inbox_id,
        agent_id=ws.agent_id,
    )
    await incoming(runtime, ws.id, ws.other_inbox_id, "payer@acme.test", "after")
    await say(runtime, ws.admin, ws.conversation_id, "marker")

    live_frames = [f for f in await sock.until(is_text("marker")) if "event_id" in f]
    assert [f["type"] for f in live_frames if f.get("inbox_id") == ws.other_inbox_id] == [
        "inbox.member_added",
        "message.created",
    ]
    assert sock.messages() == [(billing.conversation_id, 2), (ws.conversation_id, 2)]

    # Resuming from before all that replays with the same per-event access
    # (the agent is no longer a member, yet it saw the middle message live).
    again = await live.open(token=agent_token, last_event_id=start)
    replayed = await again.until(lambda f: f["type"] == "ready")
    assert replayed[-1]["resumed"] is True
    assert [f for f in replayed if "event_id" in f] == live_frames


async def test_personal_events_reach_only_their_agent(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    agent = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    await agent.ready()
    await admin.ready()

    session = await login(live, ws.agent_email)
    res = await session.http.post("/api/v1/tokens", json={"name": "laptop"})
    assert res.status_code == 201, res.text
    res = await session.http.delete(f"/api/v1/tokens/{res.json()['id']}")
    assert res.status_code == 200, res.text
    new_password = "another long password"
    res = await session.http.post(
        "/api/v1/auth/password",
        json={"current_password": "correct horse battery", "new_password": new_password},
    )
    assert res.status_code == 200, res.text
    res = await session.http.post("/api/v1/auth/logout")
    assert res.status_code == 200, res.text
    await session.http.aclose()
    admin_session = await login(live, ws.admin_email)
    await admin_session.http.aclose()
    await perform(runtime, ws.admin, do_create_team, name="marker")

    def is_marker(frame: dict[str, Any]) -> bool:
        return bool(frame["type"] == "team.created")

    agent_got = [f["type"] for f in await agent.until(is_marker) if f["type"] in PERSONAL]
    admin_got = [f for f in await admin.until(is_marker) if f["type"] in PERSONAL]
    assert agent_got == [
        "session.started",
        "api_token.created",
        "api_token.revoked",
        "agent.password_changed",
        "session.ended",
    ]
    assert [(f["type"], f["data"]["agent_id"]) for f in admin_got] == [
        ("session.started", ws.admin_id)
    ]


async def test_a_removal_committed_while_connecting_is_not_missed(
    live: LiveServer,
    runtime: Runtime,
    ws: Workspace,
    agent_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Access is read after the socket's start position, so a change that
    commits in between is applied from the log rather than lost."""
    real = endpoints._viewer

    async def viewer_then_removal(*args: Any, **kwargs: Any) -> Any:
        viewer = await real(*args, **kwargs)
        await perform(
            runtime,
            ws.system,
            do_remove_inbox_member,
            inbox_id=ws.inbox_id,
            agent_id=ws.agent_id,
        )
        return viewer

    monkeypatch.setattr(endpoints, "_viewer", viewer_then_removal)
    sock = await live.open(token=agent_token)
    await sock.ready()
    await say(runtime, ws.admin, ws.conversation_id, "not for you")
    await perform(runtime, ws.admin, do_create_team, name="marker")
    got = await sock.until(lambda f: f["type"] == "team.created")
    assert not [f for f in got if f.get("inbox_id") == ws.inbox_id]
