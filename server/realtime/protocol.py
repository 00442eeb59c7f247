"""The websocket wire protocol (PROTOCOLS.md P2), pure: parsing client
frames and building server frames. No I/O.

Client → server frames (JSON objects with `type`):
  {"type": "ping"}                                        → {"type": "pong"}
  {"type": "typing", "conversation_id": 1, "typing": true, "private": false}
                                          (private: typing a note; visitors never see it)
  {"type": "read", "conversation_id": 1, "seq": 7}         (widget) seen up to seq 7
  {"type": "viewing", "conversation_id": 1 | null}
  {"type": "presence", "status": "online" | "away"}
  {"type": "sync", "conversation_id": 1, "after_seq": 4}  → the messages after seq 4

Server → client frames:
  {"type": "ready", "last_event_id": N, "resumed": bool}  once, after replay
  {"type": "<event type>", "event_id": N, ...}             durable events, in order
  {"type": "resync"}                                       resume impossible: reload state
  {"type": "typing" | "viewing" | "presence", ...}         ephemeral, never replayed
  {"type": "error", "code": ..., "message": ...}           a bad frame (connection stays)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping

from server.domain.json_types import JsonObject, JsonValue
from server.domain.wire_events import WireEvent

MAX_FRAME_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class BadFrame(Exception):
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class Ping:
    pass


@dataclasses.dataclass(frozen=True)
class Typing:
    conversation_id: int
    typing: bool
    private: bool = False


@dataclasses.dataclass(frozen=True)
class Viewing:
    conversation_id: int | None


@dataclasses.dataclass(frozen=True)
class Presence:
    status: str


@dataclasses.dataclass(frozen=True)
class Sync:
    conversation_id: int
    after_seq: int


@dataclasses.dataclass(frozen=True)
class Read:
    conversation_id: int
    seq: int


ClientFrame = Ping | Typing | Viewing | Presence | Sync | Read

_MAX_ID = 2**63 - 1


def _id(value: JsonValue, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID:
        raise BadFrame("invalid", f"{name} must be a positive id")
    return value


def _whole(value: JsonValue, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_ID:
        raise BadFrame("invalid", f"{name} must be a whole number >= 0")
    return value


def _typing(frame: JsonObject) -> Typing:
    typing, private = frame.get("typing", True), frame.get("private", False)
    if not isinstance(typing, bool) or not isinstance(private, bool):
        raise BadFrame("invalid", "typing and private must be true or false")
    return Typing(_id(frame.get("conversation_id"), "conversation_id"), typing, private)


def _viewing(frame: JsonObject) -> Viewing:
    cid = frame.get("conversation_id")
    return Viewing(None if cid is None else _id(cid, "conversation_id"))


def _presence(frame: JsonObject) -> Presence:
    status = frame.get("status")
    if not isinstance(status, str) or status not in ("online", "away"):
        raise BadFrame("invalid", "status must be online or away")
    return Presence(status)


def _sync(frame: JsonObject) -> Sync:
    after = _whole(frame.get("after_seq", 0), "after_seq")
    return Sync(_id(frame.get("conversation_id"), "conversation_id"), after)


def _read(frame: JsonObject) -> Read:
    return Read(
        _id(frame.get("conversation_id"), "conversation_id"), _whole(frame.get("seq"), "seq")
    )


_PARSERS: dict[str, Callable[[JsonObject], ClientFrame]] = {
    "ping": lambda _frame: Ping(),
    "typing": _typing,
    "viewing": _viewing,
    "presence": _presence,
    "sync": _sync,
    "read": _read,
}


def parse_client_frame(text: str) -> ClientFrame:
    if len(text.encode()) > MAX_FRAME_BYTES:
        raise BadFrame("too_big", f"frames are limited to {MAX_FRAME_BYTES} bytes")
    try:
        frame: JsonValue = json.loads(text)
    except (ValueError, RecursionError):
        raise BadFrame("bad_json", "a frame must be a JSON object") from None
    kind = frame.get("type") if isinstance(frame, Mapping) else None
    if not isinstance(frame, Mapping) or not isinstance(kind, str):
        raise BadFrame("bad_frame", "a frame must be a JSON object with a type")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise BadFrame("unknown_type", f"unknown frame type {kind[:40]!r}")
    return parser(frame)


def event_frame(wire: WireEvent) -> str:
    """A durable event as sent to clients: the event's own fields, plus
    `seq` at the top for messages so clients can dedupe on
    (conversation_id, seq)."""
    frame = wire.json()
    seq = wire.data.get("seq") if wire.type == "message.created" else None
    if seq is not None:
        frame["seq"] = seq
    return json.dumps(frame, separators=(",", ":"))


def ready_frame(last_event_id: int, *, resumed: bool) -> str:
    return json.dumps({"type": "ready", "last_event_id": last_event_id, "resumed": resumed})


RESYNC_FRAME = json.dumps({"type": "resync"})
PONG_FRAME = json.dumps({"type": "pong"})


def error_frame(error: BadFrame) -> str:
    return json.dumps({"type": "error", "code": error.code, "message": error.message})
