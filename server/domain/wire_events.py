"""What the bus carries to live sockets, read into typed values once, where
a message arrives: durable events (as the log holds them) and ephemeral
signals (typing, presence, viewing). The hub and its visibility rules read
these field by field; what a client is sent is still the JSON itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from server.domain.json_types import JsonObject, JsonValue


@dataclasses.dataclass(frozen=True, slots=True)
class WireEvent:
    """A durable event as clients get it (PROTOCOLS.md P2): where it belongs
    (workspace, inbox, conversation), whether it is a private note's, its
    place in the log (`event_id`, `ws_seq`), and its payload `data` (the
    catalogue event's fields, server.domain.events)."""

    event_id: int
    ws_seq: int
    type: str
    workspace_id: int
    inbox_id: int | None
    conversation_id: int | None
    private: bool
    created_at: str  # ISO 8601
    data: JsonObject

    def json(self) -> dict[str, JsonValue]:
        """The wire shape, keys in this order (frames are compared byte
        for byte)."""
        return {
            "event_id": self.event_id,
            "ws_seq": self.ws_seq,
            "type": self.type,
            "workspace_id": self.workspace_id,
            "inbox_id": self.inbox_id,
            "conversation_id": self.conversation_id,
            "private": self.private,
            "created_at": self.created_at,
            "data": self.data,
        }

    @classmethod
    def parse(cls, message: JsonObject) -> WireEvent | None:
        """A bus message read back (the shape `json` writes); None when it
        is not a durable event."""
        event_id, ws_seq = message.get("event_id"), message.get("ws_seq")
        kind, workspace_id = message.get("type"), message.get("workspace_id")
        inbox_id, conversation_id = message.get("inbox_id"), message.get("conversation_id")
        private, created_at = message.get("private"), message.get("created_at")
        data = message.get("data")
        if not (
            isinstance(event_id, int)
            and isinstance(ws_seq, int)
            and isinstance(kind, str)
            and isinstance(workspace_id, int)
            and (inbox_id is None or isinstance(inbox_id, int))
            and (conversation_id is None or isinstance(conversation_id, int))
            and isinstance(private, bool)
            and isinstance(created_at, str)
            and isinstance(data, Mapping)
        ):
            return None
        return cls(
            event_id,
            ws_seq,
            kind,
            workspace_id,
            inbox_id,
            conversation_id,
            private,
            created_at,
            data,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Signal:
    """An ephemeral signal from the bus (server.actions.ephemeral): never
    stored, sent live only. The fields that decide who hears it, and the
    message itself (`body`), which is what listeners are sent."""

    workspace_id: int
    inbox_id: int | None
    conversation_id: int | None
    private: bool
    # The socket that sent it, so that it does not echo back.
    origin: str | None
    body: JsonObject

    @classmethod
    def parse(cls, message: JsonObject) -> Signal | None:
        """None when the message names no workspace."""
        workspace_id = message.get("workspace_id")
        if not isinstance(workspace_id, int):
            return None
        inbox_id, conversation_id = message.get("inbox_id"), message.get("conversation_id")
        origin = message.get("origin")
        return cls(
            workspace_id,
            inbox_id if isinstance(inbox_id, int) else None,
            conversation_id if isinstance(conversation_id, int) else None,
            bool(message.get("private", False)),
            origin if isinstance(origin, str) else None,
            message,
        )
