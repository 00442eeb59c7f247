"""Presence and viewing boards: pure, with a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.realtime.presence import LocalAgent, PresenceBoard, ViewingBoard, best_status

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_best_status_ranks_online_over_away_over_offline() -> None:
    assert best_status([]) == "offline"
    assert best_status(["away", "online"]) == "online"
    assert best_status(["away"]) == "away"


def test_an_agent_on_two_nodes_is_online_while_either_is() -> None:
    board = PresenceBoard()
    assert board.announce(7, "a", "online", T0) is True
    assert board.announce(7, "b", "away", T0) is False  # still online overall
    assert board.announce(7, "a", "offline", T0) is True  # now away (node b)
    assert board.status(7, T0) == "away"
    assert board.announce(7, "b", "offline", T0) is True
    assert board.status(7, T0) == "offline"


def test_a_silent_node_expires_and_a_heartbeat_keeps_it() -> None:
    board = PresenceBoard()
    board.announce(7, "crashed", "online", T0, ttl=timedelta(seconds=60))
    board.announce(8, "alive", "online", T0, ttl=timedelta(seconds=60))
    board.announce(8, "alive", "online", T0 + timedelta(seconds=40), ttl=timedelta(seconds=60))
    assert board.expire(T0 + timedelta(seconds=59)) == []
    assert board.expire(T0 + timedelta(seconds=61)) == [7]
    assert board.snapshot(T0 + timedelta(seconds=61)) == {8: "online"}


def test_viewers_change_with_announcements_and_expiry() -> None:
    board = ViewingBoard()
    assert board.announce(100, 1, 7, node="a", viewing=True, now=T0) is True
    assert board.announce(100, 1, 8, node="b", viewing=True, now=T0) is True
    assert board.announce(100, 1, 8, node="b", viewing=True, now=T0) is False
    assert board.viewers(100, T0) == [7, 8]
    assert board.announce(100, 1, 7, node="a", viewing=False, now=T0) is True
    assert board.expire(T0 + timedelta(seconds=61)) == [100]
    assert board.viewers(100, T0 + timedelta(seconds=61)) == []
    assert board.inboxes[100] == 1


def test_local_agent_folds_its_sockets() -> None:
    agent = LocalAgent()
    assert agent.status() == "offline"
    agent.sockets["s1"] = ("away", None)
    agent.sockets["s2"] = ("online", 100)
    assert (agent.status(), agent.viewing()) == ("online", {100})
    del agent.sockets["s2"]
    assert (agent.status(), agent.viewing()) == ("away", set())
