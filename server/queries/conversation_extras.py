"""What a conversation shows beyond its own row: its contact, its channel
and a preview of its last message (the inbox list's second line).

Loaded for a whole page at once, in one query, so a list stays one round
of queries however long the page is.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.json_types import JsonValue
from server.domain.previews import message_preview
from server.queries.api_shapes import iso
from server.queries.records import load
from server.storage import tables as t

# How much of a body to read for a preview. The preview needs 140
# characters; the margin covers runs of whitespace, and for an HTML-only
# message the markup around the first words. A body longer than this only
# loses words that would have been cut anyway.
_TEXT_PREFIX = 2_000
_HTML_PREFIX = 20_000


@dataclasses.dataclass(frozen=True)
class ConversationExtras:
    contact_id: int
    contact_name: str
    channel: str  # the inbox's kind: widget, email, api...
    last_message: dict[str, JsonValue] | None  # None: no message yet


@dataclasses.dataclass(frozen=True, slots=True)
class _Facts:
    """A conversation's contact and channel, and the start of its last
    message (its columns all None when it has none)."""

    id: int
    contact_id: int
    contact_name: str
    channel: str
    seq: int | None
    text: str | None
    html: str | None
    sender_kind: str | None
    private: bool | None
    created_at: datetime | None


async def extras_of(conn: AsyncConnection, ids: list[int]) -> dict[int, ConversationExtras]:
    """Extras of the conversations `ids` (the caller has checked access).
    The last message is the one with the highest seq, private notes
    included: only agents read conversations. An id whose conversation is
    gone is missing from the answer."""
    if not ids:
        return {}
    c, ct, ib, m = t.conversations.c, t.contacts.c, t.inboxes.c, t.messages.c
    last = sa.alias(t.messages, "last_message")
    # Highest seq rather than `conversations.last_seq`: retention may have
    # deleted the newest messages and a merge moves messages away.
    newest = (
        sa.select(sa.func.max(last.c.seq)).where(last.c.conversation_id == c.id).scalar_subquery()
    )
    stmt: sa.Select[Any] = (
        sa.select(
            c.id,
            ct.id.label("contact_id"),
            ct.name.label("contact_name"),
            ib.kind.label("channel"),
            m.seq,
            sa.func.substr(m.text, 1, _TEXT_PREFIX).label("text"),
            # The HTML only matters when there is no text to preview.
            sa.case(
                (sa.func.trim(m.text) == "", sa.func.substr(m.html, 1, _HTML_PREFIX)),
                else_=sa.null(),
            ).label("html"),
            m.sender_kind,
            m.private,
            m.created_at,
        )
        .join(t.contacts, ct.id == c.contact_id)
        .join(t.inboxes, ib.id == c.inbox_id)
        .outerjoin(t.messages, sa.and_(m.conversation_id == c.id, m.seq == newest))
        .where(c.id.in_(ids))
    )
    out: dict[int, ConversationExtras] = {}
    for row in (load(_Facts, r) for r in await conn.execute(stmt)):
        last_message: dict[str, JsonValue] | None = None
        if row.seq is not None:
            last_message = {
                "seq": row.seq,
                "text": message_preview(row.text or "", row.html),  # text: NOT NULL
                "sender_kind": row.sender_kind,
                "private": row.private,
                "created_at": iso(row.created_at),
            }
        out[row.id] = ConversationExtras(
            contact_id=row.contact_id,
            contact_name=row.contact_name,
            channel=row.channel,
            last_message=last_message,
        )
    return out
