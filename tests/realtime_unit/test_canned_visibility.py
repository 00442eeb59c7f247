"""Who receives canned-response events (server.realtime.visibility), as a
pure function of the viewer and the event."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.wire_events import WireEvent
from server.realtime.visibility import Viewer, VisitorScope, access_change, can_see

WS = 1


def agent(**kw: Any) -> Viewer:
    fields: dict[str, Any] = {
        "workspace_id": WS,
        "agent_id": 7,
        "is_admin": False,
        "inboxes": {10},
        "sees_private": True,
        "teams": {3},
    }
    return Viewer(**{**fields, **kw})


def admin() -> Viewer:
    return agent(agent_id=1, is_admin=True, inboxes=None, teams=None)


def visitor() -> Viewer:
    return Viewer(
        workspace_id=WS,
        agent_id=None,
        is_admin=False,
        inboxes=set(),
        sees_private=False,
        conversations={99},
        visitor=VisitorScope(5, 6, 10, 6),
    )


def wire(kind: str, data: dict[str, Any], **header: Any) -> WireEvent:
    fields: dict[str, Any] = {
        "event_id": 1,
        "ws_seq": 1,
        "workspace_id": WS,
        "inbox_id": None,
        "conversation_id": None,
        "private": False,
        "created_at": "2026-01-05T09:00:00+00:00",
        **header,
    }
    return WireEvent(type=kind, data=data, **fields)


def event(kind: str = "created", **data: Any) -> WireEvent:
    payload = {"scope": "workspace", "team_id": None, "inbox_id": None, "agent_id": None, **data}
    return wire(
        f"canned_response.{kind}",
        payload,
        inbox_id=payload["inbox_id"],
        conversation_id=payload.get("conversation_id"),
        private=payload.get("private", False),
    )


@pytest.mark.parametrize(
    ("data", "agent_sees", "admin_sees"),
    [
        ({}, True, True),
        ({"scope": "team", "team_id": 3}, True, True),
        ({"scope": "team", "team_id": 4}, False, True),
        ({"scope": "inbox", "inbox_id": 10}, True, True),
        ({"scope": "inbox", "inbox_id": 11}, False, True),
        ({"scope": "personal", "agent_id": 7}, True, False),
        ({"scope": "personal", "agent_id": 1}, False, True),
        ({"scope": "personal", "agent_id": 8}, False, False),
        ({"scope": "something new"}, False, False),
    ],
)
def test_scope_decides(data: dict[str, Any], agent_sees: bool, admin_sees: bool) -> None:
    for kind in ("created", "updated", "deleted"):
        assert can_see(agent(), event(kind, **data)) is agent_sees
        assert can_see(admin(), event(kind, **data)) is admin_sees


def test_a_use_needs_both_the_response_and_the_conversation() -> None:
    used = {"conversation_id": 99, "message_id": 5}
    assert can_see(agent(), event("used", inbox_id=10, **used))
    assert not can_see(agent(), event("used", inbox_id=11, **used))
    assert not can_see(agent(), event("used", scope="team", team_id=4, inbox_id=10, **used))
    assert not can_see(agent(sees_private=False), event("used", inbox_id=10, private=True, **used))
    # A visitor follows conversation 99, but never hears about responses.
    assert not can_see(visitor(), event("used", inbox_id=10, **used))
    assert not can_see(visitor(), event())


def test_team_membership_follows_its_events() -> None:
    viewer = agent()
    access_change(viewer, wire("team.member_added", {"team_id": 4, "agent_id": 7}))
    access_change(viewer, wire("team.member_added", {"team_id": 5, "agent_id": 8}))
    assert viewer.teams == {3, 4}
    assert can_see(viewer, event(scope="team", team_id=4))
    access_change(viewer, wire("team.member_removed", {"team_id": 3, "agent_id": 7}))
    access_change(viewer, wire("team.deleted", {"team_id": 4}))
    assert viewer.teams == set()
    # An admin's "all teams" is not narrowed by anything.
    boss = admin()
    access_change(boss, wire("team.member_removed", {"team_id": 3, "agent_id": 1}))
    assert boss.teams is None
