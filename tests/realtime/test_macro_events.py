"""Macro and saved-filter events over real sockets (PROTOCOLS.md P2):
workspace macros reach every agent, personal ones only their owner; a run
reaches the macro's audience among those who see the conversation; saved
filters reach their own agent alone — live and on resume."""

from __future__ import annotations

from typing import Any

from server.actions.context import perform
from server.actions.macro_runs import run_macro
from server.actions.macros import do_create_macro, do_delete_macro, do_update_macro
from server.actions.saved_filters import (
    do_create_saved_filter,
    do_delete_saved_filter,
    do_update_saved_filter,
)
from server.domain.macros import MacroScope
from server.runtime import Runtime
from tests.realtime.live import LiveServer
from tests.support import Workspace

OURS = ("macro.", "saved_filter.")


def ours(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(type, name or id) of each macro and saved-filter event."""
    out = []
    for f in frames:
        if "event_id" in f and f["type"].startswith(OURS):
            data = f["data"]
            out.append((f["type"], data.get("name") or str(data.get("macro_id") or "")))
    return out


def is_marker(frame: dict[str, Any]) -> bool:
    return bool(frame["type"] == "macro.created" and frame["data"]["name"] == "marker")


async def test_each_audience_hears_only_its_own(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    agent = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    start = (await agent.ready())["last_event_id"]
    await admin.ready()

    shared = await perform(
        runtime,
        ws.admin,
        do_create_macro,
        scope=MacroScope.WORKSPACE,
        name="shared",
        actions=[{"type": "add_label", "label": "seen"}],
    )
    admins_own = await perform(
        runtime,
        ws.admin,
        do_create_macro,
        scope=MacroScope.PERSONAL,
        name="admins-own",
        actions=[{"type": "resolve"}],
    )
    agents_own = await perform(
        runtime,
        ws.agent,
        do_create_macro,
        scope=MacroScope.PERSONAL,
        name="agents-own",
        actions=[{"type": "add_label", "label": "mine"}],
    )
    await perform(runtime, ws.admin, do_update_macro, macro_id=admins_own, name="admins-renamed")
    await perform(runtime, ws.agent, do_update_macro, macro_id=agents_own, name="agents-renamed")
    await run_macro(runtime, ws.agent, macro_id=agents_own, conversation_id=ws.conversation_id)
    await run_macro(runtime, ws.admin, macro_id=admins_own, conversation_id=ws.conversation_id)
    await run_macro(runtime, ws.agent, macro_id=shared, conversation_id=ws.conversation_id)
    await perform(runtime, ws.admin, do_delete_macro, macro_id=admins_own)
    await perform(runtime, ws.agent, do_delete_macro, macro_id=agents_own)
    agents_filter = await perform(
        runtime, ws.agent, do_create_saved_filter, name="agents-filter", query={"mine": True}
    )
    admins_filter = await perform(
        runtime, ws.admin, do_create_saved_filter, name="admins-filter", query={}
    )
    await perform(
        runtime, ws.agent, do_update_saved_filter, saved_filter_id=agents_filter, position=3
    )
    await perform(runtime, ws.admin, do_delete_saved_filter, saved_filter_id=admins_filter)
    await perform(runtime, ws.agent, do_delete_saved_filter, saved_filter_id=agents_filter)
    await perform(
        runtime,
        ws.admin,
        do_create_macro,
        scope=MacroScope.WORKSPACE,
        name="marker",
        actions=[{"type": "resolve"}],
    )

    agent_frames = await agent.until(is_marker)
    assert ours(agent_frames) == [
        ("macro.created", "shared"),
        ("macro.created", "agents-own"),
        ("macro.updated", "agents-renamed"),
        ("macro.used", str(agents_own)),
        ("macro.used", str(shared)),
        ("macro.deleted", str(agents_own)),
        ("saved_filter.created", "agents-filter"),
        ("saved_filter.updated", "agents-filter"),
        ("saved_filter.deleted", ""),
        ("macro.created", "marker"),
    ]
    assert ours(await admin.until(is_marker)) == [
        ("macro.created", "shared"),
        ("macro.created", "admins-own"),
        ("macro.updated", "admins-renamed"),
        ("macro.used", str(admins_own)),
        ("macro.used", str(shared)),
        ("macro.deleted", str(admins_own)),
        ("saved_filter.created", "admins-filter"),
        ("saved_filter.deleted", ""),
        ("macro.created", "marker"),
    ]
    # Whose filter was deleted: each heard only of its own.
    [deleted] = agent.events("saved_filter.deleted")
    assert deleted["data"]["saved_filter_id"] == agents_filter
    [deleted] = admin.events("saved_filter.deleted")
    assert deleted["data"]["saved_filter_id"] == admins_filter
    # The steps' own events went out too (the agent sees the inbox).
    assert agent.events("conversation.labels_changed")

    # A resume replays with the same per-event access.
    again = await live.open(token=agent_token, last_event_id=start)
    replayed = await again.until(is_marker)
    assert [f for f in replayed if "event_id" in f] == [f for f in agent_frames if "event_id" in f]
