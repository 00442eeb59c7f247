"""What a widget visitor's socket is sent, made from the events agents get.
Pure: no I/O.

A visitor sees far less than an agent: its conversations' public
messages, their status, how far the agents have read, and agents typing.
Everything else (assignment, labels, internal ids, other visitors'
typing) is dropped here, by a whitelist, after `can_see` has already
limited events to the visitor's own conversations and public ones.
"""

from __future__ import annotations

import json

from server.domain.json_types import JsonValue
from server.domain.values import widget_client_id
from server.domain.wire_events import Signal, WireEvent

# The message fields a visitor sees (as the widget REST API shows them).
_MESSAGE_FIELDS = ("conversation_id", "seq", "direction", "sender_kind", "text", "html")


def _dump(frame: dict[str, JsonValue]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def visitor_event_frame(wire: WireEvent) -> str | None:
    """The frame for a durable event the visitor may see, or None when
    nothing about it is a visitor's business."""
    if wire.private:
        return None
    kind, data = wire.type, wire.data
    if kind == "message.created":
        message: dict[str, JsonValue] = {
            "id": data["message_id"],
            **{f: data[f] for f in _MESSAGE_FIELDS},
        }
        message["created_at"] = data["created_at"]
        message["attachments"] = data.get("attachments", [])
        external_id = data.get("external_id")
        message["client_id"] = widget_client_id(
            external_id if isinstance(external_id, str) else None
        )
        return _dump(
            {
                "type": "message",
                "event_id": wire.event_id,
                "conversation_id": data["conversation_id"],
                "seq": data["seq"],
                "message": message,
            }
        )
    if kind in ("conversation.created", "conversation.status_changed"):
        conversation = {"id": data["conversation_id"], "status": data["status"]}
        return _dump(
            {"type": "conversation", "event_id": wire.event_id, "conversation": conversation}
        )
    if kind == "conversation.read" and data.get("reader") == "agent":
        return _dump(
            {
                "type": "read",
                "event_id": wire.event_id,
                "conversation_id": data["conversation_id"],
                "seq": data["seq"],
            }
        )
    return None


def visitor_signal_frame(signal: Signal) -> str | None:
    """Agents typing a reply (never a note: `can_see` dropped those) in the
    visitor's conversation; nothing else that is ephemeral."""
    body = signal.body
    if body.get("type") != "typing" or body.get("agent_id") is None:
        return None
    return _dump(
        {
            "type": "typing",
            "conversation_id": body["conversation_id"],
            "typing": bool(body.get("typing")),
        }
    )


def availability_frame(agents_online: bool) -> str:
    return _dump({"type": "availability", "agents_online": agents_online})
