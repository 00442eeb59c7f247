"""Typing, presence and "who is viewing" (issue item: ephemeral, never in
the event log, but access-checked like everything else)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.domain.values import IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.realtime.live import LiveServer, Socket, last_logged_id
from tests.support import Workspace, fetch_one


def kind(*types: str) -> Any:
    return lambda frame: frame["type"] in types


async def test_presence_follows_sockets_and_status(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    admin = await live.open(token=admin_token)
    await admin.ready()
    agent = await live.open(token=agent_token)
    await agent.ready()
    snapshot = (await agent.until(lambda f: f["type"] == "presence" and "agents" in f))[-1]
    assert snapshot["agents"].get(str(ws.admin_id)) == "online"

    seen = await admin.until(
        lambda f: f == {"type": "presence", "agent_id": ws.agent_id, "status": "online"}
    )
    assert seen
    await agent.send({"type": "presence", "status": "away"})
    await admin.until(
        lambda f: f == {"type": "presence", "agent_id": ws.agent_id, "status": "away"}
    )
    await agent.dispose()
    await admin.until(
        lambda f: f == {"type": "presence", "agent_id": ws.agent_id, "status": "offline"}
    )


async def test_viewing_and_typing_reach_only_those_who_may_see_the_inbox(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    hidden = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,  # the agent is not a member of this inbox
        identity=IdentityInput(IdentityKind.EMAIL, "payer@acme.test"),
        name="Payer",
        text="invoice?",
    )
    logged = await last_logged_id(runtime, ws.id)
    admin = await live.open(token=admin_token)
    await admin.ready()
    agent = await live.open(token=agent_token)
    await agent.ready()
    second_admin: Socket = await live.open(token=admin_token)
    await second_admin.ready()

    # The admin looks at a conversation the agent can't see, then one it can.
    await admin.send({"type": "viewing", "conversation_id": hidden.conversation_id})
    await admin.send({"type": "typing", "conversation_id": hidden.conversation_id, "typing": True})
    await admin.send({"type": "viewing", "conversation_id": ws.conversation_id})
    await admin.send({"type": "typing", "conversation_id": ws.conversation_id, "typing": True})

    got = await agent.until(
        lambda f: f["type"] == "typing" and f["conversation_id"] == ws.conversation_id
    )
    viewing = [f for f in got if f["type"] == "viewing"]
    typing = [f for f in got if f["type"] == "typing"]
    assert {f["conversation_id"] for f in viewing} == {ws.conversation_id}
    assert viewing[-1]["agent_ids"] == [ws.admin_id]
    assert [f["conversation_id"] for f in typing] == [ws.conversation_id]
    assert typing[0]["agent_id"] == ws.admin_id

    # Another socket of an admin sees both conversations being viewed.
    frames = await second_admin.until(
        lambda f: (
            f["type"] == "viewing" and f["conversation_id"] == ws.conversation_id and f["agent_ids"]
        )
    )
    assert hidden.conversation_id in {
        f["conversation_id"] for f in frames if f["type"] == "viewing"
    }

    # Ephemeral: none of it was written to the event log.
    assert await last_logged_id(runtime, ws.id) == logged


async def test_viewing_a_conversation_one_cannot_see_is_an_error(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    hidden = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "payer@acme.test"),
        name="Payer",
        text="invoice?",
    )
    agent = await live.open(token=agent_token)
    await agent.ready()
    await agent.send({"type": "viewing", "conversation_id": hidden.conversation_id})
    error = (await agent.until(kind("error")))[-1]
    assert error["code"] == "not_found"


async def _presence_row(runtime: Runtime, agent_id: int) -> Any:
    a = t.agents.c
    return await fetch_one(runtime, sa.select(a.connected, a.left_at).where(a.id == agent_id))


async def _until_connected(runtime: Runtime, agent_id: int, connected: bool) -> Any:
    deadline = time.monotonic() + 5
    while (row := await _presence_row(runtime, agent_id)).connected is not connected:
        assert time.monotonic() < deadline, f"agent {agent_id} never became connected={connected}"
        await asyncio.sleep(0.01)
    return row


async def test_assignment_sees_an_agent_connect_and_leave(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    # What assignment counts as present (server.actions.requeue) follows
    # the agent's live sockets: the first opening, the last closing.
    assert (await _presence_row(runtime, ws.agent_id)).connected is False
    first = await live.open(token=agent_token)
    await first.ready()
    await _until_connected(runtime, ws.agent_id, True)
    second = await live.open(token=agent_token)
    await second.ready()
    await first.dispose()
    assert (await _presence_row(runtime, ws.agent_id)).connected is True  # one still open
    await second.dispose()
    row = await _until_connected(runtime, ws.agent_id, False)
    assert row.left_at is not None
