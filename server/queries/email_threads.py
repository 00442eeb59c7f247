"""The facts email threading decides on (server.domain.email_threading):
stored messages by Message-ID, and the conversations they belong to.

Read-only, sealed to one workspace: a Message-ID of another workspace is
simply not found (the decision then treats it as unknown)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.email_threading import MAX_MERGE_HOPS, ConversationFacts, KnownMessage
from server.domain.values import ConversationStatus
from server.queries.contacts import email_identities, identities_of
from server.queries.records import Conversation, load
from server.storage import tables as t


async def known_messages(
    conn: AsyncConnection, workspace_id: int, message_ids: Sequence[str]
) -> dict[str, KnownMessage]:
    """Stored messages of the workspace carrying one of `message_ids`
    (normalized). When two carry the same id the oldest wins: it is the
    one the mail's author saw first."""
    if not message_ids:
        return {}
    m = t.messages.c
    rows = await conn.execute(
        sa.select(m.email_message_id, m.conversation_id, m.workspace_id, m.inbox_id, m.email)
        .where(m.workspace_id == workspace_id, m.email_message_id.in_(list(message_ids)))
        .order_by(m.id)
    )
    out: dict[str, KnownMessage] = {}
    for email_message_id, conversation_id, message_workspace, inbox_id, email in rows:
        if email_message_id is None:  # not selected: `in_` never matches NULL
            continue
        out.setdefault(
            email_message_id,
            KnownMessage(
                conversation_id=conversation_id,
                workspace_id=message_workspace,
                inbox_id=inbox_id,
                broadcast=bool((email or {}).get("broadcast")),
            ),
        )
    return out


async def conversation_facts(
    conn: AsyncConnection, workspace_id: int, conversation_ids: Iterable[int]
) -> dict[int, ConversationFacts]:
    """Facts about `conversation_ids` and, following merges, the
    conversations they were merged into (a few hops at most)."""
    c = t.conversations.c
    out: dict[int, ConversationFacts] = {}
    wanted = set(conversation_ids)
    for _ in range(MAX_MERGE_HOPS + 1):
        wanted -= set(out)
        if not wanted:
            break
        rows = [
            load(Conversation, r)
            for r in await conn.execute(
                sa.select(t.conversations).where(c.workspace_id == workspace_id, c.id.in_(wanted))
            )
        ]
        identities = await identities_of(conn, sorted({r.contact_id for r in rows}))
        for row in rows:
            out[row.id] = ConversationFacts(
                workspace_id=row.workspace_id,
                inbox_id=row.inbox_id,
                status=ConversationStatus(row.status),
                contact_addresses=frozenset(
                    i.value for i in email_identities(identities[row.contact_id])
                ),
                subject=row.subject,
                merged_into=row.merged_into_id,
            )
        wanted = {r.merged_into_id for r in rows if r.merged_into_id is not None}
    return out
