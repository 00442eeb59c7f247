"""A message as stored: the typed record an action hands back of the
message it wrote (or found already written), for the transport to shape
into its answer with `api_shapes.message_view`."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from server.domain.json_types import JsonObject
from server.queries.records import Message


@dataclasses.dataclass(frozen=True)
class MessageRecord:
    id: int
    conversation_id: int
    contact_id: int
    seq: int
    direction: str
    sender_kind: str
    sender_id: int | None
    private: bool
    text: str
    html: str | None
    external_id: str | None
    delivery_status: str
    delivery_error: str | None
    # The attachments as the message lists them (api_shapes.attachment_view).
    attachments: list[JsonObject]
    email: JsonObject | None
    created_at: datetime


def message_record(row: Message) -> MessageRecord:
    """What a transport shapes of a message."""
    return MessageRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        contact_id=row.contact_id,
        seq=row.seq,
        direction=row.direction,
        sender_kind=row.sender_kind,
        sender_id=row.sender_id,
        private=row.private,
        text=row.text,
        html=row.html,
        external_id=row.external_id,
        delivery_status=row.delivery_status,
        delivery_error=row.delivery_error,
        attachments=row.attachments,
        email=row.email,
        created_at=row.created_at,
    )
