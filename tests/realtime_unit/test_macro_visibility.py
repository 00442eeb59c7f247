"""Who receives macro and saved-filter events (server.realtime.visibility),
as a pure function of the viewer and the event."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.wire_events import WireEvent
from server.realtime.visibility import Viewer, VisitorScope, can_see

WS = 1


def agent(**kw: Any) -> Viewer:
    fields: dict[str, Any] = {
        "workspace_id": WS,
        "agent_id": 7,
        "is_admin": False,
        "inboxes": {10},
        "sees_private": True,
        "teams": set(),
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


def bot() -> Viewer:
    """A connection authenticated by something that is no agent."""
    return agent(agent_id=None, is_admin=True, inboxes=None, teams=None)


def frame(kind: str, inbox_id: int | None = None, **data: Any) -> WireEvent:
    return WireEvent(
        event_id=1,
        ws_seq=1,
        type=kind,
        workspace_id=WS,
        inbox_id=inbox_id,
        conversation_id=data.get("conversation_id"),
        private=False,
        created_at="2026-01-05T09:00:00+00:00",
        data={"workspace_id": WS, **data},
    )


@pytest.mark.parametrize(
    ("data", "agent_sees", "admin_sees"),
    [
        ({"scope": "workspace", "agent_id": None}, True, True),
        ({"scope": "personal", "agent_id": 7}, True, False),
        ({"scope": "personal", "agent_id": 1}, False, True),
        ({"scope": "personal", "agent_id": 8}, False, False),
        ({"scope": "something new", "agent_id": None}, False, False),
    ],
)
def test_a_macros_audience_decides(
    data: dict[str, Any], agent_sees: bool, admin_sees: bool
) -> None:
    for kind in ("macro.created", "macro.updated", "macro.deleted"):
        event = frame(kind, macro_id=3, **data)
        assert can_see(agent(), event) is agent_sees
        assert can_see(admin(), event) is admin_sees
        assert not can_see(visitor(), event)
        assert not can_see(bot(), event)
        assert not can_see(agent(workspace_id=2), event)


def test_a_run_needs_both_the_macro_and_the_conversation() -> None:
    def used(inbox_id: int, **audience: Any) -> WireEvent:
        audience = {"scope": "workspace", "agent_id": None, **audience}
        return frame("macro.used", inbox_id, conversation_id=99, macro_id=3, **audience)

    assert can_see(agent(), used(10))
    assert not can_see(agent(), used(11))
    assert can_see(agent(), used(10, scope="personal", agent_id=7))
    assert not can_see(agent(), used(10, scope="personal", agent_id=1))
    # A visitor follows conversation 99, but never hears about macros.
    assert not can_see(visitor(), used(10))


def test_saved_filter_events_reach_their_agent_alone() -> None:
    for kind in ("saved_filter.created", "saved_filter.updated", "saved_filter.deleted"):
        event = frame(kind, saved_filter_id=4, agent_id=7)
        assert can_see(agent(), event)
        assert not can_see(agent(agent_id=8), event)
        assert not can_see(admin(), event)
        assert not can_see(bot(), event)
        assert not can_see(visitor(), event)
