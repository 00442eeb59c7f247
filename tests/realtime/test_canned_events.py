"""Canned-response events reach exactly the agents who can read the
response over REST (PROTOCOLS.md P2): personal ones only their owner, team
ones the team's members (from the membership event on), inbox ones the
inbox's members, workspace ones every agent; a visitor none."""

from __future__ import annotations

from typing import Any

from server.actions.canned_replies import send_canned_response
from server.actions.canned_responses import do_create_canned_response
from server.actions.context import perform
from server.actions.teams import do_add_team_member, do_create_team, do_remove_team_member
from server.domain.actors import Actor
from server.domain.values import CannedScope
from server.runtime import Runtime
from tests.realtime.live import LiveServer
from tests.support import Workspace


async def canned(runtime: Runtime, actor: Actor, shortcut: str, **audience: Any) -> int:
    audience.setdefault("scope", CannedScope.WORKSPACE)
    canned_id: int = await perform(
        runtime,
        actor,
        do_create_canned_response,
        shortcut=shortcut,
        title=shortcut,
        body="Hi {{contact.first_name}}",
        **audience,
    )
    return canned_id


def created(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["shortcut"] for f in frames if f["type"] == "canned_response.created"]


def is_marker(frame: dict[str, Any]) -> bool:
    return bool(
        frame["type"] == "canned_response.created" and frame["data"]["shortcut"] == "marker"
    )


async def test_each_scope_reaches_its_audience_live_and_on_resume(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    team_in = await perform(runtime, ws.admin, do_create_team, name="In")
    team_later = await perform(runtime, ws.admin, do_create_team, name="Later")
    await perform(runtime, ws.admin, do_add_team_member, team_id=team_in, agent_id=ws.agent_id)
    agent = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    start = (await agent.ready())["last_event_id"]
    await admin.ready()

    await canned(runtime, ws.admin, "everyone")
    await canned(runtime, ws.admin, "team-in", scope=CannedScope.TEAM, team_id=team_in)
    await canned(runtime, ws.admin, "team-before", scope=CannedScope.TEAM, team_id=team_later)
    await canned(runtime, ws.admin, "site", scope=CannedScope.INBOX, inbox_id=ws.inbox_id)
    await canned(runtime, ws.admin, "billing", scope=CannedScope.INBOX, inbox_id=ws.other_inbox_id)
    await canned(runtime, ws.admin, "admins-own", scope=CannedScope.PERSONAL)
    mine = await canned(runtime, ws.agent, "agents-own", scope=CannedScope.PERSONAL)
    # Joining a team opens its responses from that event on; leaving closes them.
    await perform(runtime, ws.admin, do_add_team_member, team_id=team_later, agent_id=ws.agent_id)
    await canned(runtime, ws.admin, "team-joined", scope=CannedScope.TEAM, team_id=team_later)
    await perform(
        runtime, ws.admin, do_remove_team_member, team_id=team_later, agent_id=ws.agent_id
    )
    await canned(runtime, ws.admin, "team-left", scope=CannedScope.TEAM, team_id=team_later)
    await send_canned_response(
        runtime, ws.agent, conversation_id=ws.conversation_id, canned_response_id=mine
    )
    await canned(runtime, ws.admin, "marker")

    agent_frames = await agent.until(is_marker)
    assert created(agent_frames) == [
        "everyone",
        "team-in",
        "site",
        "agents-own",
        "team-joined",
        "marker",
    ]
    assert created(await admin.until(is_marker)) == [
        "everyone",
        "team-in",
        "team-before",
        "site",
        "billing",
        "admins-own",
        "team-joined",
        "team-left",
        "marker",
    ]
    # The agent's own use of its personal response reaches it, not the admin.
    used = [f for f in agent_frames if f["type"] == "canned_response.used"]
    assert [(f["data"]["canned_response_id"], f["conversation_id"]) for f in used] == [
        (mine, ws.conversation_id)
    ]
    assert not admin.events("canned_response.used")

    # A resume replays with the same per-event access.
    again = await live.open(token=agent_token, last_event_id=start)
    replayed = await again.until(is_marker)
    assert [f for f in replayed if "event_id" in f] == [f for f in agent_frames if "event_id" in f]
