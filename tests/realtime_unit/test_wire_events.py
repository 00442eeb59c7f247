"""Bus messages read into WireEvent and Signal: what the log writes comes
back field for field, and its JSON is unchanged, key order included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from server.domain.json_types import JsonValue
from server.domain.wire_events import Signal, WireEvent
from server.storage.events import StoredEvent

STORED = StoredEvent(
    id=41,
    workspace_id=1,
    ws_seq=7,
    type="message.created",
    inbox_id=10,
    conversation_id=99,
    private=False,
    payload={"message_id": 5, "seq": 3, "attachments": []},
    created_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
)


def test_an_event_survives_the_bus_byte_for_byte() -> None:
    sent = json.dumps(STORED.wire())
    assert list(json.loads(sent)) == [
        "event_id", "ws_seq", "type", "workspace_id", "inbox_id",
        "conversation_id", "private", "created_at", "data",
    ]  # fmt: skip
    received = WireEvent.parse(json.loads(sent))
    assert received == STORED.event()
    assert received is not None and json.dumps(received.json()) == sent


def test_what_is_no_event_is_not_read_as_one() -> None:
    wire = STORED.wire()
    assert WireEvent.parse({k: v for k, v in wire.items() if k != "ws_seq"}) is None
    assert WireEvent.parse({**wire, "inbox_id": "10"}) is None
    assert WireEvent.parse({**wire, "data": [1]}) is None
    assert WireEvent.parse({"type": "typing", "ephemeral": True}) is None


def test_a_signal_keeps_its_message() -> None:
    message: dict[str, JsonValue] = {
        "type": "typing",
        "conversation_id": 99,
        "inbox_id": 10,
        "workspace_id": 1,
    }
    signal = Signal.parse({**message, "origin": "abc"})
    assert signal == Signal(1, 10, 99, False, "abc", {**message, "origin": "abc"})
    assert Signal.parse({"type": "typing"}) is None
