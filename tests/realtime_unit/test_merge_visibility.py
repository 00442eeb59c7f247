"""Merge events in server.realtime.visibility, as pure functions of the
viewer and the event: who hears them, what an agent is told of the
moved conversations, and which visitors must reload."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from server.domain.wire_events import WireEvent
from server.realtime.visibility import (
    RefreshAccess,
    Viewer,
    VisitorScope,
    access_change,
    can_see,
    narrow,
)
from server.realtime.visitor_frames import visitor_event_frame

WS = 1
MOVED = [{"id": 20, "inbox_id": 10}, {"id": 21, "inbox_id": 11}]


def agent(**kw: Any) -> Viewer:
    fields: dict[str, Any] = {
        "workspace_id": WS,
        "agent_id": 7,
        "is_admin": False,
        "inboxes": {10},
        "sees_private": True,
    }
    return Viewer(**{**fields, **kw})


def visitor(contact_id: int = 6, conversations: set[int] | None = None) -> Viewer:
    return Viewer(
        workspace_id=WS,
        agent_id=None,
        is_admin=False,
        inboxes=set(),
        sees_private=False,
        conversations={99} if conversations is None else conversations,
        visitor=VisitorScope(5, contact_id, 10, contact_id),
    )


def contact_merge(kind: str = "contact.merged", **data: Any) -> WireEvent:
    payload = {
        "workspace_id": WS,
        "survivor_id": 6,
        "merged_id": 8,
        "merge_id": 3,
        "conversations": MOVED,
        **data,
    }
    return WireEvent(
        event_id=50,
        ws_seq=50,
        type=kind,
        workspace_id=WS,
        inbox_id=None,
        conversation_id=None,
        private=False,
        created_at="2026-01-05T09:00:00+00:00",
        data=payload,
    )


def conversation_merge(target: int, source: int) -> WireEvent:
    data = {"conversation_id": target, "inbox_id": 10, "source_id": source}
    return WireEvent(
        event_id=51,
        ws_seq=51,
        type="conversation.merged",
        workspace_id=WS,
        inbox_id=10,
        conversation_id=target,
        private=False,
        created_at="2026-01-05T09:00:00+00:00",
        data={"workspace_id": WS, **data, "moved_messages": 2, "last_seq": 9},
    )


@pytest.mark.parametrize("kind", ["contact.merged", "contact.merge_undone"])
def test_agents_hear_contact_merges_told_of_their_inboxes_only(kind: str) -> None:
    event = contact_merge(kind)
    member, admin = agent(), agent(agent_id=1, is_admin=True, inboxes=None)
    assert can_see(member, event) and can_see(admin, event)
    assert narrow(admin, event) is event
    narrowed = narrow(member, event)
    assert narrowed.data["conversations"] == MOVED[:1]
    assert event.data["conversations"] == MOVED  # the shared event is untouched
    everything = agent(inboxes={10, 11})
    assert narrow(everything, event) is event
    assert narrow(member, conversation_merge(20, 21)) == conversation_merge(20, 21)


@pytest.mark.parametrize("kind", ["contact.merged", "contact.merge_undone"])
@pytest.mark.parametrize(("contact_id", "reloads"), [(6, True), (8, True), (9, False)])
def test_visitors_of_either_contact_reload_and_never_see_the_event(
    kind: str, contact_id: int, reloads: bool
) -> None:
    viewer = visitor(contact_id)
    event = contact_merge(kind)
    assert isinstance(access_change(viewer, event), RefreshAccess) is reloads
    assert not can_see(viewer, event)
    assert visitor_event_frame(dataclasses.replace(event, conversation_id=99)) is None


@pytest.mark.parametrize(
    ("follows", "reloads"), [({20}, True), ({21}, True), ({22}, False), (set(), False)]
)
def test_visitors_of_a_merged_conversation_reload(follows: set[int], reloads: bool) -> None:
    viewer = visitor(conversations=follows)
    event = conversation_merge(20, 21)
    assert isinstance(access_change(viewer, event), RefreshAccess) is reloads
    assert visitor_event_frame(event) is None


def test_another_workspace_changes_nothing() -> None:
    event = dataclasses.replace(contact_merge(), workspace_id=WS + 1)
    assert access_change(visitor(), event) is None
    assert not can_see(agent(), event)
