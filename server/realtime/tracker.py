"""Presence and viewing for one workspace in one process: folds this node's
sockets into announcements, and everyone's announcements (from the bus)
into frames for local clients. Pure apart from the `announce` callback;
time is a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from server.domain.json_types import JsonObject, JsonValue
from server.realtime.presence import TTL, LocalAgent, PresenceBoard, ViewingBoard

Announce = Callable[[dict[str, JsonValue]], None]

# A frame for local clients, with the inbox that decides who may see it
# (None: any agent of the workspace).
Outgoing = tuple[str, int | None, int | None]


class PresenceTracker:
    def __init__(self, node: str, announce: Announce) -> None:
        self.node = node
        self._announce = announce
        self.presence = PresenceBoard()
        self.viewing = ViewingBoard()
        self.local: dict[int, LocalAgent] = {}
        self._inbox_of: dict[int, int] = {}

    # -- this node's sockets ---------------------------------------------------

    def socket_update(
        self,
        agent_id: int,
        socket_id: str,
        *,
        status: str | None,
        viewing: int | None = None,
        inbox_id: int | None = None,
    ) -> None:
        """A socket of `agent_id` connected or changed (`status` online /
        away) or went away (`status` None). Announces what changed."""
        agent = self.local.setdefault(agent_id, LocalAgent())
        old_status, old_viewing = agent.status(), agent.viewing()
        if status is None:
            agent.sockets.pop(socket_id, None)
        else:
            agent.sockets[socket_id] = (status, viewing)
        if viewing is not None and inbox_id is not None:
            self._inbox_of[viewing] = inbox_id
        new_status, new_viewing = agent.status(), agent.viewing()
        if not agent.sockets:
            del self.local[agent_id]
        if new_status != old_status:
            self._announce(
                {"type": "presence", "agent_id": agent_id, "status": new_status, "node": self.node}
            )
        for conversation_id in sorted(old_viewing ^ new_viewing):
            self._announce(
                {
                    "type": "viewing",
                    "conversation_id": conversation_id,
                    "inbox_id": self._inbox_of.get(conversation_id),
                    "agent_id": agent_id,
                    "viewing": conversation_id in new_viewing,
                    "node": self.node,
                }
            )

    def heartbeat(self) -> None:
        """Re-announce everything this node holds, before the TTL lapses."""
        for agent_id, agent in self.local.items():
            self._announce(
                {
                    "type": "presence",
                    "agent_id": agent_id,
                    "status": agent.status(),
                    "node": self.node,
                }
            )
            for conversation_id in sorted(agent.viewing()):
                self._announce(
                    {
                        "type": "viewing",
                        "conversation_id": conversation_id,
                        "inbox_id": self._inbox_of.get(conversation_id),
                        "agent_id": agent_id,
                        "viewing": True,
                        "node": self.node,
                    }
                )

    # -- everyone's announcements ----------------------------------------------

    def receive(self, signal: JsonObject, now: datetime) -> list[Outgoing]:
        """Fold an announcement in; the frames local clients should get."""
        kind, agent_id, node = signal.get("type"), signal.get("agent_id"), signal.get("node")
        if not isinstance(agent_id, int) or not isinstance(node, str):
            return []
        if kind == "presence":
            status = signal.get("status")
            if isinstance(status, str) and self.presence.announce(agent_id, node, status, now, TTL):
                return [self._presence_frame(agent_id, now)]
        elif kind == "viewing":
            cid, inbox_id = signal.get("conversation_id"), signal.get("inbox_id")
            viewing = signal.get("viewing")
            if (
                isinstance(cid, int)
                and isinstance(inbox_id, int)
                and isinstance(viewing, bool)
                and self.viewing.announce(
                    cid, inbox_id, agent_id, node=node, viewing=viewing, now=now
                )
            ):
                return [self._viewing_frame(cid, now)]
        return []

    def expire(self, now: datetime) -> list[Outgoing]:
        frames = [self._presence_frame(a, now) for a in self.presence.expire(now)]
        frames += [self._viewing_frame(c, now) for c in self.viewing.expire(now)]
        return frames

    def snapshot(self, now: datetime) -> list[Outgoing]:
        """What a newly connected client needs to start from."""
        frames: list[Outgoing] = [
            (
                json.dumps(
                    {
                        "type": "presence",
                        "agents": {str(a): s for a, s in self.presence.snapshot(now).items()},
                    }
                ),
                None,
                None,
            )
        ]
        watched = {c for c, _, _ in self.viewing.entries}
        frames += [self._viewing_frame(c, now) for c in sorted(watched)]
        return frames

    def _presence_frame(self, agent_id: int, now: datetime) -> Outgoing:
        status = self.presence.status(agent_id, now)
        return json.dumps({"type": "presence", "agent_id": agent_id, "status": status}), None, None

    def _viewing_frame(self, conversation_id: int, now: datetime) -> Outgoing:
        frame = {
            "type": "viewing",
            "conversation_id": conversation_id,
            "agent_ids": self.viewing.viewers(conversation_id, now),
        }
        return json.dumps(frame), self.viewing.inboxes.get(conversation_id), conversation_id
