"""Read positions: how far an agent, or the contact in the widget, has
seen a conversation. They drive unread counts and the widget's "Seen".

A position only moves forward and never past the conversation's last
message; a read that moves nothing writes nothing and emits nothing, so
a client may repeat it freely (after a reconnect, from a second tab).
"""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import NotFound
from server.domain.events import ConversationRead
from server.queries.access import access_conversation
from server.queries.records import Conversation, VisitorSession, load_or_none
from server.queries.visitors import visitor_conversation_scope
from server.storage import tables as t


async def do_mark_read(ctx: ActionContext, *, conversation_id: int, seq: int) -> int:
    """The acting agent has seen `conversation_id` up to `seq`. Returns the
    agent's read position after the call."""
    agent_id = ctx.actor.agent_id
    if agent_id is None:
        raise NotFound("conversation not found")  # system actors have no read state
    conv = await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    seq = min(seq, conv.last_seq)
    r = t.conversation_reads.c
    current: int | None = await ctx.conn.scalar(
        sa.select(r.last_read_seq).where(r.conversation_id == conv.id, r.agent_id == agent_id)
    )
    if current is not None and seq <= current:
        return current
    if current is None:
        await ctx.conn.execute(
            t.conversation_reads.insert().values(
                conversation_id=conv.id,
                agent_id=agent_id,
                workspace_id=conv.workspace_id,
                last_read_seq=seq,
                read_at=ctx.now,
            )
        )
    else:
        await ctx.conn.execute(
            t.conversation_reads.update()
            .where(r.conversation_id == conv.id, r.agent_id == agent_id)
            .values(last_read_seq=seq, read_at=ctx.now)
        )
    if seq > conv.agent_last_read_seq:
        await ctx.conn.execute(
            t.conversations.update()
            .where(t.conversations.c.id == conv.id)
            .values(agent_last_read_seq=seq)
        )
    await ctx.emit(_read_event(conv, reader="agent", agent_id=agent_id, seq=seq))
    return seq


async def do_mark_read_by_visitor(
    ctx: ActionContext, *, session_id: int, conversation_id: int, seq: int
) -> int:
    """The visitor of widget session `session_id` has seen its conversation
    up to `seq`. A conversation that is not this visitor's is not found."""
    s = t.visitor_sessions.c
    session = load_or_none(
        VisitorSession,
        (
            await ctx.conn.execute(
                sa.select(t.visitor_sessions).where(
                    s.id == session_id, s.workspace_id == ctx.actor.workspace_id
                )
            )
        ).first(),
    )
    c = t.conversations.c
    conv: Conversation | None = None
    if session is not None:
        found = (
            await ctx.conn.execute(
                sa.select(t.conversations)
                .where(
                    c.id == conversation_id,
                    *visitor_conversation_scope(
                        ctx.actor.workspace_id,
                        session.inbox_id,
                        session.contact_id,
                        session.proven_contact_id,
                    ),
                )
                .with_for_update(key_share=True)
            )
        ).first()
        conv = load_or_none(Conversation, found)
    if conv is None:
        raise NotFound("conversation not found", field="conversation_id")
    seq = min(seq, conv.last_seq)
    if seq <= conv.contact_last_read_seq:
        return conv.contact_last_read_seq
    await ctx.conn.execute(
        t.conversations.update().where(c.id == conv.id).values(contact_last_read_seq=seq)
    )
    await ctx.emit(_read_event(conv, reader="contact", agent_id=None, seq=seq))
    return seq


def _read_event(
    conv: Conversation, *, reader: str, agent_id: int | None, seq: int
) -> ConversationRead:
    return ConversationRead(
        workspace_id=conv.workspace_id,
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        reader=reader,
        agent_id=agent_id,
        seq=seq,
    )
