"""Read positions over REST: an agent marks how far it has seen a
conversation (unread counts; the widget's "Seen")."""

from __future__ import annotations

from server.actions.context import perform
from server.actions.reads import do_mark_read
from server.domain.json_types import JsonValue
from server.http.api import Call, Endpoint
from server.wire.records import arg, record
from server.wire.schema import Int


@record
class MarkRead:
    seq: int = arg(Int(minimum=0, maximum=2**31 - 1))


async def mark_read(call: Call[MarkRead, None]) -> JsonValue:
    seq = await perform(
        call.runtime,
        call.actor,
        do_mark_read,
        conversation_id=call.path["conversation_id"],
        seq=call.body.seq,
    )
    return {"conversation_id": call.path["conversation_id"], "last_read_seq": seq}


ENDPOINTS = [
    Endpoint(
        "POST",
        "/conversations/{conversation_id}/read",
        mark_read,
        "Mark the conversation seen up to message `seq` (only ever moves forward)",
        "conversations",
        body=MarkRead,
    ),
]
