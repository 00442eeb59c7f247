"""PresenceTracker: this node's sockets become announcements; everyone's
announcements become frames. Two trackers stand for two processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from server.realtime.tracker import Outgoing, PresenceTracker

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Wire:
    """A bus between trackers: every announcement reaches every tracker."""

    def __init__(self) -> None:
        self.trackers: list[PresenceTracker] = []
        self.frames: dict[str, list[Outgoing]] = {}
        self.now = T0

    def add(self, node: str) -> PresenceTracker:
        tracker = PresenceTracker(node, self.publish)
        self.trackers.append(tracker)
        self.frames[node] = []
        return tracker

    def publish(self, signal: dict[str, Any]) -> None:
        for tracker in self.trackers:
            self.frames[tracker.node] += tracker.receive(signal, self.now)

    def seen(self, node: str) -> list[dict[str, Any]]:
        out = [json.loads(f) for f, _, _ in self.frames[node]]
        self.frames[node].clear()
        return out


def test_agent_online_on_one_node_is_seen_on_the_other() -> None:
    wire = Wire()
    a, _b = wire.add("a"), wire.add("b")
    a.socket_update(7, "s1", status="online")
    assert wire.seen("b") == [{"type": "presence", "agent_id": 7, "status": "online"}]
    a.socket_update(7, "s2", status="away")  # a second tab, idle: still online
    assert wire.seen("b") == []
    a.socket_update(7, "s1", status=None)
    assert wire.seen("b") == [{"type": "presence", "agent_id": 7, "status": "away"}]
    a.socket_update(7, "s2", status=None)
    assert wire.seen("b") == [{"type": "presence", "agent_id": 7, "status": "offline"}]
    assert a.local == {}


def test_viewing_carries_its_inbox_for_access_checks() -> None:
    wire = Wire()
    a, b = wire.add("a"), wire.add("b")
    a.socket_update(7, "s1", status="online", viewing=100, inbox_id=3)
    b.socket_update(8, "s9", status="online", viewing=100, inbox_id=3)
    frames = [f for f in wire.frames["a"] if json.loads(f[0])["type"] == "viewing"]
    assert frames[-1] == (
        json.dumps({"type": "viewing", "conversation_id": 100, "agent_ids": [7, 8]}),
        3,
        100,
    )
    b.socket_update(8, "s9", status=None)
    assert wire.seen("a")[-1] == {"type": "viewing", "conversation_id": 100, "agent_ids": [7]}


def test_a_crashed_node_expires_and_heartbeats_keep_the_living() -> None:
    wire = Wire()
    a, b = wire.add("a"), wire.add("b")
    a.socket_update(7, "s1", status="online")
    b.socket_update(8, "s2", status="online", viewing=5, inbox_id=1)
    wire.trackers.remove(b)  # node b crashes: no more heartbeats, no goodbye
    for seconds in (20, 40):
        wire.now = T0 + timedelta(seconds=seconds)
        a.heartbeat()
        assert a.expire(wire.now) == []
    wire.now = T0 + timedelta(seconds=61)
    a.heartbeat()
    expired = [json.loads(f) for f, _, _ in a.expire(wire.now)]
    assert expired == [
        {"type": "presence", "agent_id": 8, "status": "offline"},
        {"type": "viewing", "conversation_id": 5, "agent_ids": []},
    ]
    assert a.presence.status(7, wire.now) == "online"


def test_snapshot_for_a_new_client() -> None:
    wire = Wire()
    a = wire.add("a")
    a.socket_update(7, "s1", status="away", viewing=100, inbox_id=3)
    frames = a.snapshot(T0)
    assert json.loads(frames[0][0]) == {"type": "presence", "agents": {"7": "away"}}
    assert frames[1] == (
        json.dumps({"type": "viewing", "conversation_id": 100, "agent_ids": [7]}),
        3,
        100,
    )
