"""Read positions: rows written and exact events; positions only move
forward, never past the last message, and only on what the reader may see."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.inboxes import do_create_inbox
from server.actions.messages import do_send_message
from server.actions.reads import do_mark_read, do_mark_read_by_visitor
from server.actions.visitors import do_send_visitor_message, do_start_visitor_session
from server.domain.errors import NotFound
from server.domain.values import InboxKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, events_since, fetch_all, fetch_one, last_event_id


async def conversation_row(runtime: Runtime, conversation_id: int) -> sa.Row[object]:
    return await fetch_one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == conversation_id)
    )


async def test_agent_read_moves_forward_only_and_is_clamped(
    runtime: Runtime, ws: Workspace
) -> None:
    for text in ("one", "two", "three"):
        await perform(
            runtime, ws.agent, do_send_message, conversation_id=ws.conversation_id, text=text
        )
    last_seq = (await conversation_row(runtime, ws.conversation_id)).last_seq
    before = await last_event_id(runtime)

    assert (
        await perform(runtime, ws.agent, do_mark_read, conversation_id=ws.conversation_id, seq=2)
        == 2
    )
    # Beyond the last message: clamped. Backwards or repeated: no change.
    assert (
        await perform(
            runtime, ws.agent, do_mark_read, conversation_id=ws.conversation_id, seq=10**6
        )
        == last_seq
    )
    for seq in (1, last_seq):
        assert (
            await perform(
                runtime, ws.agent, do_mark_read, conversation_id=ws.conversation_id, seq=seq
            )
            == last_seq
        )

    rows = await fetch_all(runtime, sa.select(t.conversation_reads))
    assert [(r.conversation_id, r.agent_id, r.last_read_seq) for r in rows] == [
        (ws.conversation_id, ws.agent_id, last_seq)
    ]
    conv = await conversation_row(runtime, ws.conversation_id)
    assert (conv.agent_last_read_seq, conv.contact_last_read_seq) == (last_seq, 0)
    events = await events_since(runtime, before)
    assert events == [
        (
            "conversation.read",
            {
                "workspace_id": ws.id,
                "conversation_id": ws.conversation_id,
                "inbox_id": ws.inbox_id,
                "reader": "agent",
                "agent_id": ws.agent_id,
                "seq": seq,
            },
        )
        for seq in (2, last_seq)
    ]


async def test_only_agents_have_a_read_position(runtime: Runtime, ws: Workspace) -> None:
    # (An agent outside the inbox gets 404 too: see the API access matrix.)
    before = await last_event_id(runtime)
    with pytest.raises(NotFound):
        await perform(runtime, ws.system, do_mark_read, conversation_id=ws.conversation_id, seq=1)
    assert await events_since(runtime, before) == []


async def test_visitor_read_is_sealed_to_its_own_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    widget = await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Chat",
        kind=InboxKind.WIDGET,
        settings={},
        box=runtime.secrets,
    )
    session = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=widget.inbox_id, origin=None
    )
    sent = await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=session.session_id,
        text="hi",
        client_id="c1",
    )
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=sent.conversation_id, text="hello"
    )
    before = await last_event_id(runtime)
    with pytest.raises(NotFound):  # someone else's conversation
        await perform(
            runtime,
            ws.system,
            do_mark_read_by_visitor,
            session_id=session.session_id,
            conversation_id=ws.conversation_id,
            seq=1,
        )
    for _ in range(2):
        await perform(
            runtime,
            ws.system,
            do_mark_read_by_visitor,
            session_id=session.session_id,
            conversation_id=sent.conversation_id,
            seq=2,
        )
    conv = await conversation_row(runtime, sent.conversation_id)
    assert (conv.contact_last_read_seq, conv.agent_last_read_seq) == (2, 0)
    assert await events_since(runtime, before) == [
        (
            "conversation.read",
            {
                "workspace_id": ws.id,
                "conversation_id": sent.conversation_id,
                "inbox_id": widget.inbox_id,
                "reader": "contact",
                "agent_id": None,
                "seq": 2,
            },
        )
    ]
