"""PROTOCOLS.md P1 under load: many writers at once, each in its own
transaction, on SQLite and PostgreSQL. Every message gets the next seq of
its conversation (contiguous, unique), no caller sees an error, and the
events come out in seq order (delivery order equals seq order)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_status
from server.actions.messages import MessageResult, do_receive_message, do_send_message
from server.domain.values import ConversationStatus, IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, events_since, last_event_id

N = 50


async def seqs_of(runtime: Runtime, conversation_id: int) -> list[int]:
    async with runtime.db.read() as conn:
        return list(
            (
                await conn.scalars(
                    sa.select(t.messages.c.seq)
                    .where(t.messages.c.conversation_id == conversation_id)
                    .order_by(t.messages.c.seq)
                )
            ).all()
        )


async def last_seq_of(runtime: Runtime, conversation_id: int) -> int:
    async with runtime.db.read() as conn:
        value = await conn.scalar(
            sa.select(t.conversations.c.last_seq).where(t.conversations.c.id == conversation_id)
        )
    assert isinstance(value, int)
    return value


def message_seqs_in_event_order(
    events: list[tuple[str, dict[str, Any]]],
) -> defaultdict[int, list[int]]:
    out: defaultdict[int, list[int]] = defaultdict(list)
    for type_, payload in events:
        if type_ == "message.created":
            out[payload["conversation_id"]].append(payload["seq"])
    return out


def assert_contiguous(results: list[MessageResult], conversation_id: int, first: int) -> None:
    assert {r.conversation_id for r in results} == {conversation_id}
    assert sorted(r.seq for r in results) == list(range(first, first + len(results)))
    assert len({r.message_id for r in results}) == len(results)
    assert not any(r.replayed for r in results)


async def test_concurrent_replies_get_contiguous_seq(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id
    before = await last_event_id(runtime)
    results = await asyncio.gather(
        *(
            perform(
                runtime,
                ws.agent if i % 2 else ws.admin,
                do_send_message,
                conversation_id=cid,
                text=f"reply {i}",
                private=i % 5 == 0,
            )
            for i in range(N)
        )
    )
    # The seeded inbound message holds seq 1.
    assert_contiguous(results, cid, first=2)
    assert await seqs_of(runtime, cid) == list(range(1, N + 2))
    assert await last_seq_of(runtime, cid) == N + 1
    # One event per message, in seq order.
    assert message_seqs_in_event_order(await events_since(runtime, before)) == {
        cid: list(range(2, N + 2))
    }


async def test_concurrent_replies_with_one_idempotency_key_store_one_message(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = ws.conversation_id
    before = await last_event_id(runtime)
    results = await asyncio.gather(
        *(
            perform(
                runtime,
                ws.agent,
                do_send_message,
                conversation_id=cid,
                text="only once",
                idempotency_key="same-key",
            )
            for _ in range(10)
        )
    )
    assert {r.message_id for r in results} == {results[0].message_id}
    assert sorted(r.replayed for r in results) == [False] + [True] * 9
    assert await seqs_of(runtime, cid) == [1, 2]
    assert await last_seq_of(runtime, cid) == 2
    assert [e[0] for e in await events_since(runtime, before)] == ["message.created"]


async def test_concurrent_deliveries_of_one_external_id_store_one_message(
    runtime: Runtime, ws: Workspace
) -> None:
    """Idempotent ingest (PROTOCOLS.md P1): the same provider item delivered
    ten times at once (a retried webhook, a re-polled mailbox) is one
    message, held by UNIQUE (inbox_id, external_id) when the races meet."""
    before = await last_event_id(runtime)
    results = await asyncio.gather(
        *(
            perform(
                runtime,
                ws.system,
                do_receive_message,
                inbox_id=ws.inbox_id,
                identity=IdentityInput(IdentityKind.EMAIL, "retry@example.com"),
                name="Retried Sender",
                text="delivered more than once",
                external_id="<msg-1@mail.example>",
            )
            for _ in range(10)
        )
    )
    assert {r.message_id for r in results} == {results[0].message_id}
    assert sorted(r.replayed for r in results) == [False] + [True] * 9
    cid = results[0].conversation_id
    assert await seqs_of(runtime, cid) == [1]
    types = [e[0] for e in await events_since(runtime, before)]
    assert types.count("message.created") == 1 and types.count("contact.created") == 1


async def test_concurrent_inbound_from_new_contacts(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    results = await asyncio.gather(
        *(
            perform(
                runtime,
                ws.system,
                do_receive_message,
                inbox_id=ws.inbox_id,
                identity=IdentityInput(IdentityKind.EMAIL, f"visitor{i}@example.com"),
                name=f"Visitor {i}",
                text=f"hello from {i}",
            )
            for i in range(N)
        )
    )
    assert len({r.contact_id for r in results}) == N
    assert len({r.conversation_id for r in results}) == N
    assert all(r.seq == 1 and r.created_contact and r.created_conversation for r in results)
    for r in results:
        assert await seqs_of(runtime, r.conversation_id) == [1]
        assert await last_seq_of(runtime, r.conversation_id) == 1
    events = await events_since(runtime, before)
    assert sorted(type_ for type_, _ in events) == sorted(
        ["contact.created", "contact.identity_added", "conversation.created", "message.created"] * N
    )


async def test_concurrent_inbound_from_one_new_contact(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    results = await asyncio.gather(
        *(
            perform(
                runtime,
                ws.system,
                do_receive_message,
                inbox_id=ws.inbox_id,
                identity=IdentityInput(IdentityKind.EMAIL, "Eager@Example.com"),
                name="Eager Customer",
                text=f"message {i}",
            )
            for i in range(N)
        )
    )
    assert len({r.contact_id for r in results}) == 1
    cid = results[0].conversation_id
    assert_contiguous(results, cid, first=1)
    assert sum(r.created_contact for r in results) == 1
    assert sum(r.created_conversation for r in results) == 1
    assert await seqs_of(runtime, cid) == list(range(1, N + 1))
    assert await last_seq_of(runtime, cid) == N
    events = await events_since(runtime, before)
    assert [type_ for type_, _ in events].count("contact.created") == 1
    assert [type_ for type_, _ in events].count("conversation.created") == 1
    assert message_seqs_in_event_order(events) == {cid: list(range(1, N + 1))}


async def test_concurrent_inbound_into_an_open_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = ws.conversation_id
    before = await last_event_id(runtime)
    results = await asyncio.gather(
        *(
            perform(
                runtime,
                ws.system,
                do_receive_message,
                inbox_id=ws.inbox_id,
                identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
                name="Cora Customer",
                text=f"message {i}",
            )
            for i in range(N)
        )
    )
    assert {r.contact_id for r in results} == {ws.contact_id}
    assert_contiguous(results, cid, first=2)
    assert await seqs_of(runtime, cid) == list(range(1, N + 2))
    assert await last_seq_of(runtime, cid) == N + 1
    assert message_seqs_in_event_order(await events_since(runtime, before)) == {
        cid: list(range(2, N + 2))
    }


async def test_concurrent_inbound_and_replies_interleave(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id
    before = await last_event_id(runtime)
    calls = []
    for i in range(N):
        if i % 2:
            calls.append(
                perform(runtime, ws.agent, do_send_message, conversation_id=cid, text=f"r{i}")
            )
        else:
            calls.append(
                perform(
                    runtime,
                    ws.system,
                    do_receive_message,
                    inbox_id=ws.inbox_id,
                    identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
                    name="Cora Customer",
                    text=f"m{i}",
                )
            )
    results = await asyncio.gather(*calls)
    assert_contiguous(results, cid, first=2)
    assert await last_seq_of(runtime, cid) == N + 1
    assert message_seqs_in_event_order(await events_since(runtime, before)) == {
        cid: list(range(2, N + 2))
    }


async def test_concurrent_inbound_after_resolve_opens_one_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    """The contact's only conversation is resolved, and many messages from
    it arrive at once: they must all land in one new conversation."""
    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=ws.conversation_id,
        status=ConversationStatus.RESOLVED,
    )
    results = await asyncio.gather(
        *(
            perform(
                runtime,
                ws.system,
                do_receive_message,
                inbox_id=ws.inbox_id,
                identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
                name="Cora Customer",
                text=f"again {i}",
            )
            for i in range(N)
        )
    )
    conversation_ids = {r.conversation_id for r in results}
    assert len(conversation_ids) == 1, f"{len(conversation_ids)} conversations opened"
    [cid] = conversation_ids
    assert cid != ws.conversation_id
    assert_contiguous(results, cid, first=1)
    assert await last_seq_of(runtime, cid) == N
