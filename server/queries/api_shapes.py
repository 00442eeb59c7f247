"""The shapes the API answers with: rows to JSON-ready dicts, one per
kind of object. Reads return them; after a write the transport shapes
its answer with them from what the action wrote. Secrets never appear
here."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from server.domain.json_types import JsonValue
from server.domain.sniff import is_inline_image
from server.queries.records import Attachment, Conversation, Message

if TYPE_CHECKING:
    from server.queries.conversation_extras import ConversationExtras
    from server.queries.message_records import MessageRecord


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def conversation_view(
    row: Conversation,
    labels: list[str],
    my_read_seq: int | None = None,
    *,
    extras: ConversationExtras,
) -> dict[str, JsonValue]:
    """`my_read_seq`: how far the agent asking has read (None when no agent
    asks); `unread` counts the messages after it. `extras` (contact,
    channel, last message) come from `conversation_extras.extras_of`,
    loaded for a whole page at once."""
    return {
        "id": row.id,
        "inbox_id": row.inbox_id,
        "contact_id": row.contact_id,
        "subject": row.subject,
        "status": row.status,
        "snoozed_until": iso(row.snoozed_until),
        "priority": row.priority,
        "assignee_id": row.assignee_id,
        "team_id": row.team_id,
        "labels": labels,
        "last_seq": row.last_seq,
        "created_at": iso(row.created_at),
        "first_reply_at": iso(row.first_reply_at),
        "waiting_since": iso(row.waiting_since),
        "resolved_at": iso(row.resolved_at),
        "last_activity_at": iso(row.last_activity_at),
        "agent_last_read_seq": row.agent_last_read_seq,
        "contact_last_read_seq": row.contact_last_read_seq,
        "unread": None if my_read_seq is None else max(row.last_seq - my_read_seq, 0),
        "contact": {"id": extras.contact_id, "name": extras.contact_name},
        "channel": extras.channel,
        "last_message": extras.last_message,
        # Set once merged into another conversation, where its messages went.
        "merged_into_id": row.merged_into_id,
    }


def message_view(row: Message | MessageRecord) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "contact_id": row.contact_id,
        "seq": row.seq,
        "direction": row.direction,
        "sender_kind": row.sender_kind,
        "sender_id": row.sender_id,
        "private": row.private,
        "text": row.text,
        "html": row.html,
        "external_id": row.external_id,
        "delivery_status": row.delivery_status,
        "delivery_error": row.delivery_error,
        "attachments": row.attachments,
        "email": row.email,
        "created_at": iso(row.created_at),
    }


def attachment_view(row: Attachment) -> dict[str, JsonValue]:
    """An attachment as messages and canned responses list it."""
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "image": is_inline_image(row.content_type),
    }
