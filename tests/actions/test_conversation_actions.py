"""Contacts, conversations and messages actions: the rows each one writes
and the exact events it emits (type and payload, in order)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.agents import do_create_agent
from server.actions.contacts import (
    IdentityInput,
    do_add_contact_identity,
    do_create_contact,
    do_update_contact,
)
from server.actions.context import perform
from server.actions.conversations import (
    do_assign_conversation,
    do_change_conversation_labels,
    do_change_conversation_status,
    do_create_conversation,
    do_set_conversation_priority,
)
from server.actions.messages import do_receive_message, do_send_message
from server.actions.teams import do_create_team
from server.clock import FrozenClock
from server.domain.errors import Conflict, InvalidInput, NotFound
from server.domain.values import ConversationStatus, IdentityKind, Priority
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import (
    PASSWORD,
    T0,
    Workspace,
    events_since,
    fetch_all,
    fetch_one,
    identity_rows,
    last_event_id,
    seed_workspace,
)

AnyRow = sa.Row[Any]
EMAIL, PHONE, VISITOR = IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.VISITOR
OPEN, PENDING, SNOOZED, RESOLVED = (
    ConversationStatus.OPEN,
    ConversationStatus.PENDING,
    ConversationStatus.SNOOZED,
    ConversationStatus.RESOLVED,
)


def clock(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


def iso(minutes: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


async def contact_row(runtime: Runtime, contact_id: int) -> AnyRow:
    return await fetch_one(runtime, sa.select(t.contacts).where(t.contacts.c.id == contact_id))


async def conversation_row(runtime: Runtime, conversation_id: int) -> AnyRow:
    return await fetch_one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == conversation_id)
    )


async def message_rows(runtime: Runtime, conversation_id: int) -> list[AnyRow]:
    return await fetch_all(
        runtime,
        sa.select(t.messages)
        .where(t.messages.c.conversation_id == conversation_id)
        .order_by(t.messages.c.seq),
    )


async def labels_of(runtime: Runtime, conversation_id: int) -> list[str]:
    cl = t.conversation_labels.c
    rows = await fetch_all(
        runtime,
        sa.select(cl.label).where(cl.conversation_id == conversation_id).order_by(cl.label),
    )
    return [r.label for r in rows]


async def count(runtime: Runtime, table: sa.Table) -> int:
    async with runtime.db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def message_event(
    ws: Workspace,
    *,
    message_id: int,
    conversation_id: int,
    inbox_id: int,
    contact_id: int,
    seq: int,
    direction: str,
    sender_kind: str,
    sender_id: int | None,
    text: str,
    private: bool = False,
    html: str | None = None,
    at: str | None = None,
    external_id: str | None = None,
) -> tuple[str, dict[str, Any]]:
    return (
        "message.created",
        {
            "workspace_id": ws.id,
            "message_id": message_id,
            "conversation_id": conversation_id,
            "inbox_id": inbox_id,
            "contact_id": contact_id,
            "seq": seq,
            "direction": direction,
            "sender_kind": sender_kind,
            "sender_id": sender_id,
            "private": private,
            "text": text,
            "html": html,
            "created_at": at or iso(),
            "attachments": [],
            "external_id": external_id,
            "email": None,
        },
    )


def status_event(
    ws: Workspace, conversation_id: int, old: str, new: str, snoozed_until: str | None = None
) -> tuple[str, dict[str, Any]]:
    return (
        "conversation.status_changed",
        {
            "workspace_id": ws.id,
            "conversation_id": conversation_id,
            "inbox_id": ws.inbox_id,
            "old_status": old,
            "status": new,
            "snoozed_until": snoozed_until,
            "reason": None,
        },
    )


# -- contacts -----------------------------------------------------------------


async def test_create_contact_writes_contact_and_normalised_identities(
    runtime: Runtime, ws: Workspace
) -> None:
    before = await last_event_id(runtime)
    contact_id = await perform(
        runtime,
        ws.agent,
        do_create_contact,
        name="Dana Scully",
        attributes={"plan": "pro", "seats": 3},
        identities=[
            IdentityInput(EMAIL, "  Dana@Example.COM "),
            IdentityInput(PHONE, "+1 (555) 010-0000", verified=True),
        ],
    )
    row = await contact_row(runtime, contact_id)
    assert (row.workspace_id, row.name, row.attributes) == (
        ws.id,
        "Dana Scully",
        {"plan": "pro", "seats": 3},
    )
    assert (row.created_at, row.last_seen_at) == (T0, None)
    assert await identity_rows(runtime, contact_id) == [
        ("email", "dana@example.com", False),
        ("phone", "+15550100000", True),
    ]
    assert await events_since(runtime, before) == [
        (
            "contact.created",
            {"workspace_id": ws.id, "contact_id": contact_id, "name": "Dana Scully"},
        ),
        (
            "contact.identity_added",
            {
                "workspace_id": ws.id,
                "contact_id": contact_id,
                "kind": "email",
                "value": "dana@example.com",
                "verified": False,
            },
        ),
        (
            "contact.identity_added",
            {
                "workspace_id": ws.id,
                "contact_id": contact_id,
                "kind": "phone",
                "value": "+15550100000",
                "verified": True,
            },
        ),
    ]


async def test_create_contact_without_identities_or_attributes(
    runtime: Runtime, ws: Workspace
) -> None:
    before = await last_event_id(runtime)
    contact_id = await perform(runtime, ws.system, do_create_contact, name="Walk-in")
    row = await contact_row(runtime, contact_id)
    assert (row.name, row.attributes) == ("Walk-in", {})
    assert await identity_rows(runtime, contact_id) == []
    assert await events_since(runtime, before) == [
        ("contact.created", {"workspace_id": ws.id, "contact_id": contact_id, "name": "Walk-in"})
    ]


async def test_create_contact_with_a_taken_identity_conflicts_and_writes_nothing(
    runtime: Runtime, ws: Workspace
) -> None:
    contacts, before = await count(runtime, t.contacts), await last_event_id(runtime)
    with pytest.raises(Conflict) as err:
        await perform(
            runtime,
            ws.agent,
            do_create_contact,
            name="Impostor",
            identities=[
                IdentityInput(VISITOR, "v-1"),
                IdentityInput(EMAIL, "CUSTOMER@acme.test"),  # the seeded contact's
            ],
        )
    assert err.value.field == "identities[1]"
    assert await count(runtime, t.contacts) == contacts
    assert await events_since(runtime, before) == []


async def test_update_contact_renames_and_merges_attributes(
    runtime: Runtime, ws: Workspace
) -> None:
    contact_id = await perform(
        runtime,
        ws.agent,
        do_create_contact,
        name="Fox",
        attributes={"plan": "free", "city": "Oslo", "vip": False},
    )
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_update_contact,
        contact_id=contact_id,
        name="Fox Mulder",
        attributes={"plan": "pro", "city": None, "vip": True, "seats": 2},
    )
    row = await contact_row(runtime, contact_id)
    assert row.name == "Fox Mulder"
    assert row.attributes == {"plan": "pro", "vip": True, "seats": 2}
    assert await events_since(runtime, before) == [
        (
            "contact.updated",
            {"workspace_id": ws.id, "contact_id": contact_id, "changes": ["attributes", "name"]},
        )
    ]

    # Only attributes; removing a key that is not there and setting a value
    # to what it already is change nothing.
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_update_contact,
        contact_id=contact_id,
        name="Fox Mulder",
        attributes={"plan": "pro", "gone": None},
    )
    assert await events_since(runtime, before) == []
    await perform(
        runtime, ws.agent, do_update_contact, contact_id=contact_id, attributes={"seats": None}
    )
    assert (await contact_row(runtime, contact_id)).attributes == {"plan": "pro", "vip": True}
    assert await events_since(runtime, before) == [
        (
            "contact.updated",
            {"workspace_id": ws.id, "contact_id": contact_id, "changes": ["attributes"]},
        )
    ]


async def test_update_contact_of_another_workspace_is_not_found(
    runtime: Runtime, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Other Co")
    before = await last_event_id(runtime)
    with pytest.raises(NotFound):
        await perform(
            runtime, ws.admin, do_update_contact, contact_id=other.contact_id, name="Hijacked"
        )
    assert (await contact_row(runtime, other.contact_id)).name == "Cora Customer"
    assert await events_since(runtime, before) == []


async def test_add_contact_identity(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_add_contact_identity,
        contact_id=ws.contact_id,
        identity=IdentityInput(PHONE, " 0044 20 7946 0000 "),
    )
    assert await identity_rows(runtime, ws.contact_id) == [
        ("email", "customer@acme.test", False),
        ("phone", "00442079460000", False),
    ]
    assert await events_since(runtime, before) == [
        (
            "contact.identity_added",
            {
                "workspace_id": ws.id,
                "contact_id": ws.contact_id,
                "kind": "phone",
                "value": "00442079460000",
                "verified": False,
            },
        )
    ]

    # Adding one the contact already holds (in any spelling) is a no-op.
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_add_contact_identity,
        contact_id=ws.contact_id,
        identity=IdentityInput(EMAIL, "Customer@ACME.test"),
    )
    assert len(await identity_rows(runtime, ws.contact_id)) == 2
    assert await events_since(runtime, before) == []


async def test_add_identity_held_by_another_contact_conflicts(
    runtime: Runtime, ws: Workspace
) -> None:
    other = await perform(runtime, ws.agent, do_create_contact, name="Other")
    before = await last_event_id(runtime)
    with pytest.raises(Conflict) as err:
        await perform(
            runtime,
            ws.agent,
            do_add_contact_identity,
            contact_id=other,
            identity=IdentityInput(EMAIL, "customer@acme.test"),
        )
    assert err.value.field == "value"
    assert await identity_rows(runtime, other) == []
    assert await events_since(runtime, before) == []


# -- conversations --------------------------------------------------------------


async def test_create_conversation(runtime: Runtime, ws: Workspace) -> None:
    clock(runtime).advance(minutes=5)
    before = await last_event_id(runtime)
    conversation_id = await perform(
        runtime,
        ws.agent,
        do_create_conversation,
        inbox_id=ws.inbox_id,
        contact_id=ws.contact_id,
        subject="Refund",
    )
    row = await conversation_row(runtime, conversation_id)
    assert (row.workspace_id, row.inbox_id, row.contact_id, row.subject) == (
        ws.id,
        ws.inbox_id,
        ws.contact_id,
        "Refund",
    )
    assert (row.status, row.priority, row.assignee_id, row.team_id, row.last_seq) == (
        "open",
        "none",
        None,
        None,
        0,
    )
    at = T0 + timedelta(minutes=5)
    assert (row.created_at, row.last_activity_at) == (at, at)
    assert (row.first_reply_at, row.waiting_since, row.resolved_at, row.snoozed_until) == (
        None,
        None,
        None,
        None,
    )
    assert await events_since(runtime, before) == [
        (
            "conversation.created",
            {
                "workspace_id": ws.id,
                "conversation_id": conversation_id,
                "inbox_id": ws.inbox_id,
                "contact_id": ws.contact_id,
                "status": "open",
                "subject": "Refund",
                "origin_contact_id": ws.contact_id,
            },
        )
    ]


async def test_create_conversation_in_an_inbox_the_agent_cannot_see(
    runtime: Runtime, ws: Workspace
) -> None:
    conversations, before = await count(runtime, t.conversations), await last_event_id(runtime)
    with pytest.raises(NotFound):
        await perform(
            runtime,
            ws.agent,
            do_create_conversation,
            inbox_id=ws.other_inbox_id,
            contact_id=ws.contact_id,
        )
    assert await count(runtime, t.conversations) == conversations
    assert await events_since(runtime, before) == []


async def test_status_lifecycle(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id
    seeded = await conversation_row(runtime, cid)
    assert (seeded.status, seeded.waiting_since) == ("open", T0)

    async def change(
        status: ConversationStatus, until: timedelta | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        before = await last_event_id(runtime)
        await perform(
            runtime,
            ws.agent,
            do_change_conversation_status,
            conversation_id=cid,
            status=status,
            snoozed_until=None if until is None else clock(runtime).now() + until,
        )
        return await events_since(runtime, before)

    clock(runtime).advance(minutes=1)
    assert await change(PENDING) == [status_event(ws, cid, "open", "pending")]
    row = await conversation_row(runtime, cid)
    assert (row.status, row.snoozed_until, row.resolved_at) == ("pending", None, None)

    clock(runtime).advance(minutes=1)
    assert await change(PENDING) == []  # already pending

    clock(runtime).advance(minutes=1)
    assert await change(SNOOZED, timedelta(days=1)) == [
        status_event(ws, cid, "pending", "snoozed", (T0 + timedelta(days=1, minutes=3)).isoformat())
    ]
    row = await conversation_row(runtime, cid)
    assert (row.status, row.snoozed_until) == ("snoozed", T0 + timedelta(days=1, minutes=3))

    clock(runtime).advance(minutes=1)
    assert await change(RESOLVED) == [status_event(ws, cid, "snoozed", "resolved")]
    row = await conversation_row(runtime, cid)
    assert (row.status, row.snoozed_until, row.resolved_at, row.waiting_since) == (
        "resolved",
        None,
        T0 + timedelta(minutes=4),
        None,
    )

    clock(runtime).advance(minutes=1)
    assert await change(OPEN) == [status_event(ws, cid, "resolved", "open")]
    row = await conversation_row(runtime, cid)
    assert (row.status, row.snoozed_until, row.resolved_at) == ("open", None, None)
    # A status change is not message activity.
    assert row.last_activity_at == T0


@pytest.mark.parametrize("until", [timedelta(minutes=-5), timedelta(0), None])
async def test_snooze_needs_a_future_time(
    runtime: Runtime, ws: Workspace, until: timedelta | None
) -> None:
    before = await last_event_id(runtime)
    with pytest.raises(InvalidInput) as err:
        await perform(
            runtime,
            ws.agent,
            do_change_conversation_status,
            conversation_id=ws.conversation_id,
            status=SNOOZED,
            snoozed_until=None if until is None else T0 + until,
        )
    assert err.value.field == "snoozed_until"
    row = await conversation_row(runtime, ws.conversation_id)
    assert (row.status, row.snoozed_until) == ("open", None)
    assert await events_since(runtime, before) == []


async def test_set_priority(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_set_conversation_priority,
        conversation_id=ws.conversation_id,
        priority=Priority.URGENT,
    )
    await perform(
        runtime,
        ws.agent,
        do_set_conversation_priority,
        conversation_id=ws.conversation_id,
        priority=Priority.URGENT,
    )
    assert (await conversation_row(runtime, ws.conversation_id)).priority == "urgent"
    assert await events_since(runtime, before) == [
        (
            "conversation.priority_changed",
            {
                "workspace_id": ws.id,
                "conversation_id": ws.conversation_id,
                "inbox_id": ws.inbox_id,
                "priority": "urgent",
            },
        )
    ]


async def test_change_labels_add_remove_replace(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id

    def labels_event(
        labels: list[str], added: list[str], removed: list[str]
    ) -> tuple[str, dict[str, Any]]:
        return (
            "conversation.labels_changed",
            {
                "workspace_id": ws.id,
                "conversation_id": cid,
                "inbox_id": ws.inbox_id,
                "labels": labels,
                "added": added,
                "removed": removed,
            },
        )

    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.agent,
        do_change_conversation_labels,
        conversation_id=cid,
        add=[" VIP ", "vip", "Billing"],
    )
    assert result == ["billing", "vip"]
    assert await labels_of(runtime, cid) == ["billing", "vip"]
    assert await events_since(runtime, before) == [
        labels_event(["billing", "vip"], ["billing", "vip"], [])
    ]

    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.agent,
        do_change_conversation_labels,
        conversation_id=cid,
        add=["Refund"],
        remove=[" BILLING", "not-there"],
    )
    assert result == ["refund", "vip"]
    assert await labels_of(runtime, cid) == ["refund", "vip"]
    assert await events_since(runtime, before) == [
        labels_event(["refund", "vip"], ["refund"], ["billing"])
    ]

    # Nothing changes: no write, no event.
    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.agent,
        do_change_conversation_labels,
        conversation_id=cid,
        add=["VIP"],
        remove=["unknown"],
    )
    assert result == ["refund", "vip"]
    assert await events_since(runtime, before) == []

    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.agent,
        do_change_conversation_labels,
        conversation_id=cid,
        replace=["vip", "Escalated"],
    )
    assert result == ["escalated", "vip"]
    assert await labels_of(runtime, cid) == ["escalated", "vip"]
    assert await events_since(runtime, before) == [
        labels_event(["escalated", "vip"], ["escalated"], ["refund"])
    ]

    before = await last_event_id(runtime)
    assert (
        await perform(
            runtime, ws.agent, do_change_conversation_labels, conversation_id=cid, replace=[]
        )
        == []
    )
    assert await labels_of(runtime, cid) == []
    assert await events_since(runtime, before) == [labels_event([], [], ["escalated", "vip"])]


async def test_bad_label_writes_nothing(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    with pytest.raises(InvalidInput) as err:
        await perform(
            runtime,
            ws.agent,
            do_change_conversation_labels,
            conversation_id=ws.conversation_id,
            add=["fine", "not,fine"],
        )
    assert err.value.field == "add[1]"
    assert await labels_of(runtime, ws.conversation_id) == []
    assert await events_since(runtime, before) == []


async def test_assign_agent_team_and_unassign(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")

    def assigned(assignee: int | None, team: int | None) -> tuple[str, dict[str, Any]]:
        return (
            "conversation.assigned",
            {
                "workspace_id": ws.id,
                "conversation_id": cid,
                "inbox_id": ws.inbox_id,
                "assignee_id": assignee,
                "team_id": team,
            },
        )

    async def assign(**kwargs: int | None) -> list[tuple[str, dict[str, Any]]]:
        before = await last_event_id(runtime)
        await perform(runtime, ws.agent, do_assign_conversation, conversation_id=cid, **kwargs)
        return await events_since(runtime, before)

    assert await assign(assignee_id=ws.agent_id) == [assigned(ws.agent_id, None)]
    row = await conversation_row(runtime, cid)
    assert (row.assignee_id, row.team_id) == (ws.agent_id, None)

    assert await assign(assignee_id=ws.agent_id) == []  # unchanged

    assert await assign(team_id=team_id) == [assigned(ws.agent_id, team_id)]
    row = await conversation_row(runtime, cid)
    assert (row.assignee_id, row.team_id) == (ws.agent_id, team_id)

    # An admin may be assigned without being a member of the inbox.
    assert await assign(assignee_id=ws.admin_id) == [assigned(ws.admin_id, team_id)]

    assert await assign(assignee_id=None) == [assigned(None, team_id)]
    assert await assign(assignee_id=ws.agent_id, team_id=None) == [assigned(ws.agent_id, None)]
    row = await conversation_row(runtime, cid)
    assert (row.assignee_id, row.team_id) == (ws.agent_id, None)


async def test_assign_to_an_agent_outside_the_inbox_is_invalid(
    runtime: Runtime, ws: Workspace
) -> None:
    outsider = await perform(
        runtime,
        ws.admin,
        do_create_agent,
        email="outsider@acme.test",
        name="Olly Outsider",
        password=PASSWORD,
    )
    other = await seed_workspace(runtime, "Other Co")
    before = await last_event_id(runtime)
    for field, kwargs in [
        ("assignee_id", {"assignee_id": outsider}),
        ("assignee_id", {"assignee_id": other.agent_id}),
        ("assignee_id", {"assignee_id": 10**9}),
        ("team_id", {"team_id": 10**9}),
    ]:
        with pytest.raises(InvalidInput) as err:
            await perform(
                runtime,
                ws.agent,
                do_assign_conversation,
                conversation_id=ws.conversation_id,
                **kwargs,
            )
        assert err.value.field == field
    row = await conversation_row(runtime, ws.conversation_id)
    assert (row.assignee_id, row.team_id) == (None, None)
    assert await events_since(runtime, before) == []


# -- sending ------------------------------------------------------------------------


async def test_reply_stamps_first_reply_and_ends_the_wait(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id
    clock(runtime).advance(minutes=10)
    before = await last_event_id(runtime)
    result = await perform(
        runtime, ws.agent, do_send_message, conversation_id=cid, text="On its way!"
    )
    assert (result.conversation_id, result.contact_id, result.seq, result.replayed) == (
        cid,
        ws.contact_id,
        2,
        False,
    )
    reply = (await message_rows(runtime, cid))[-1]
    assert reply.id == result.message_id
    assert (
        reply.workspace_id,
        reply.contact_id,
        reply.seq,
        reply.direction,
        reply.sender_kind,
        reply.sender_id,
        reply.private,
        reply.text,
        reply.html,
        reply.delivery_status,
        reply.idempotency_key,
        reply.created_at,
    ) == (
        ws.id,
        ws.contact_id,
        2,
        "outbound",
        "agent",
        ws.agent_id,
        False,
        "On its way!",
        None,
        "pending",
        None,
        T0 + timedelta(minutes=10),
    )
    conv = await conversation_row(runtime, cid)
    at = T0 + timedelta(minutes=10)
    assert (conv.last_seq, conv.first_reply_at, conv.waiting_since, conv.last_activity_at) == (
        2,
        at,
        None,
        at,
    )
    assert await events_since(runtime, before) == [
        message_event(
            ws,
            message_id=result.message_id,
            conversation_id=cid,
            inbox_id=ws.inbox_id,
            contact_id=ws.contact_id,
            seq=2,
            direction="outbound",
            sender_kind="agent",
            sender_id=ws.agent_id,
            text="On its way!",
            at=iso(10),
        )
    ]

    # A second reply keeps the first reply time.
    clock(runtime).advance(minutes=10)
    await perform(runtime, ws.agent, do_send_message, conversation_id=cid, text="Anything else?")
    conv = await conversation_row(runtime, cid)
    assert (conv.last_seq, conv.first_reply_at, conv.last_activity_at) == (
        3,
        at,
        T0 + timedelta(minutes=20),
    )


async def test_private_note_does_not_count_as_a_reply(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id
    clock(runtime).advance(minutes=3)
    before = await last_event_id(runtime)
    result = await perform(
        runtime, ws.agent, do_send_message, conversation_id=cid, text="check stock", private=True
    )
    note = (await message_rows(runtime, cid))[-1]
    assert (note.id, note.seq, note.private, note.direction, note.delivery_status) == (
        result.message_id,
        2,
        True,
        "outbound",
        "received",
    )
    conv = await conversation_row(runtime, cid)
    assert (conv.last_seq, conv.first_reply_at, conv.waiting_since, conv.last_activity_at) == (
        2,
        None,
        T0,
        T0 + timedelta(minutes=3),
    )
    assert await events_since(runtime, before) == [
        message_event(
            ws,
            message_id=result.message_id,
            conversation_id=cid,
            inbox_id=ws.inbox_id,
            contact_id=ws.contact_id,
            seq=2,
            direction="outbound",
            sender_kind="agent",
            sender_id=ws.agent_id,
            text="check stock",
            private=True,
            at=iso(3),
        )
    ]


async def test_blank_message_is_invalid(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    with pytest.raises(InvalidInput) as err:
        await perform(
            runtime, ws.agent, do_send_message, conversation_id=ws.conversation_id, text=" \n "
        )
    assert err.value.field == "text"
    assert len(await message_rows(runtime, ws.conversation_id)) == 1
    assert await events_since(runtime, before) == []


async def test_send_in_a_conversation_the_agent_cannot_see(runtime: Runtime, ws: Workspace) -> None:
    hidden = await perform(
        runtime,
        ws.system,
        do_create_conversation,
        inbox_id=ws.other_inbox_id,
        contact_id=ws.contact_id,
    )
    before = await last_event_id(runtime)
    with pytest.raises(NotFound):
        await perform(runtime, ws.agent, do_send_message, conversation_id=hidden, text="hi")
    assert await message_rows(runtime, hidden) == []
    assert await events_since(runtime, before) == []


async def test_idempotency_key_replays_and_conflicts(runtime: Runtime, ws: Workspace) -> None:
    cid = ws.conversation_id
    first = await perform(
        runtime, ws.agent, do_send_message, conversation_id=cid, text="Hi!", idempotency_key="k-1"
    )
    assert (first.seq, first.replayed) == (2, False)
    assert (await message_rows(runtime, cid))[-1].idempotency_key == "k-1"

    clock(runtime).advance(minutes=1)
    messages, before = await count(runtime, t.messages), await last_event_id(runtime)
    conv_before = await conversation_row(runtime, cid)
    again = await perform(
        runtime, ws.agent, do_send_message, conversation_id=cid, text="Hi!", idempotency_key="k-1"
    )
    assert (again.message_id, again.seq, again.conversation_id, again.replayed) == (
        first.message_id,
        2,
        cid,
        True,
    )
    assert await count(runtime, t.messages) == messages
    assert await conversation_row(runtime, cid) == conv_before
    assert await events_since(runtime, before) == []

    for text, private in [("Hello!", False), ("Hi!", True)]:
        with pytest.raises(Conflict) as err:
            await perform(
                runtime,
                ws.agent,
                do_send_message,
                conversation_id=cid,
                text=text,
                private=private,
                idempotency_key="k-1",
            )
        assert err.value.field == "Idempotency-Key"
    assert await count(runtime, t.messages) == messages
    assert await events_since(runtime, before) == []

    # A key is scoped to its conversation.
    other_conv = await perform(
        runtime, ws.agent, do_create_conversation, inbox_id=ws.inbox_id, contact_id=ws.contact_id
    )
    elsewhere = await perform(
        runtime,
        ws.agent,
        do_send_message,
        conversation_id=other_conv,
        text="Hi!",
        idempotency_key="k-1",
    )
    assert (elsewhere.replayed, elsewhere.seq) == (False, 1)
    assert elsewhere.message_id != first.message_id


# -- receiving ------------------------------------------------------------------


async def test_receive_from_a_new_contact_creates_contact_and_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    clock(runtime).advance(minutes=7)
    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(EMAIL, "New.Person@Example.com"),
        name="New Person",
        text="Do you ship to Norway?",
        html="<p>Do you ship to <b>Norway</b>?<script>alert(1)</script></p>",
        external_id="ext-1",
        subject="Shipping",
    )
    assert (result.created_contact, result.created_conversation, result.replayed, result.seq) == (
        True,
        True,
        False,
        1,
    )
    contact = await contact_row(runtime, result.contact_id)
    assert (contact.name, contact.workspace_id) == ("New Person", ws.id)
    assert await identity_rows(runtime, result.contact_id) == [
        ("email", "new.person@example.com", False)
    ]
    at = T0 + timedelta(minutes=7)
    conv = await conversation_row(runtime, result.conversation_id)
    assert (
        conv.inbox_id,
        conv.contact_id,
        conv.subject,
        conv.status,
        conv.last_seq,
        conv.waiting_since,
        conv.last_activity_at,
        conv.first_reply_at,
    ) == (ws.inbox_id, result.contact_id, "Shipping", "open", 1, at, at, None)
    [message] = await message_rows(runtime, result.conversation_id)
    assert "<script>" not in (message.html or "")
    assert (
        message.id,
        message.contact_id,
        message.seq,
        message.direction,
        message.sender_kind,
        message.sender_id,
        message.private,
        message.text,
        message.external_id,
        message.delivery_status,
        message.created_at,
    ) == (
        result.message_id,
        result.contact_id,
        1,
        "inbound",
        "contact",
        result.contact_id,
        False,
        "Do you ship to Norway?",
        "ext-1",
        "received",
        at,
    )
    assert await events_since(runtime, before) == [
        (
            "contact.created",
            {"workspace_id": ws.id, "contact_id": result.contact_id, "name": "New Person"},
        ),
        (
            "contact.identity_added",
            {
                "workspace_id": ws.id,
                "contact_id": result.contact_id,
                "kind": "email",
                "value": "new.person@example.com",
                "verified": False,
            },
        ),
        (
            "conversation.created",
            {
                "workspace_id": ws.id,
                "conversation_id": result.conversation_id,
                "inbox_id": ws.inbox_id,
                "contact_id": result.contact_id,
                "status": "open",
                "subject": "Shipping",
                "origin_contact_id": result.contact_id,
            },
        ),
        message_event(
            ws,
            message_id=result.message_id,
            conversation_id=result.conversation_id,
            inbox_id=ws.inbox_id,
            contact_id=result.contact_id,
            seq=1,
            direction="inbound",
            sender_kind="contact",
            sender_id=result.contact_id,
            text="Do you ship to Norway?",
            html=message.html,
            at=iso(7),
            external_id="ext-1",
        ),
    ]


async def test_second_message_reuses_contact_and_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    clock(runtime).advance(minutes=2)
    contacts, conversations = (
        await count(runtime, t.contacts),
        await count(runtime, t.conversations),
    )
    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(EMAIL, "CUSTOMER@acme.test"),
        name="Another Name",
        text="Any news?",
    )
    assert (result.contact_id, result.conversation_id, result.seq) == (
        ws.contact_id,
        ws.conversation_id,
        2,
    )
    assert (result.created_contact, result.created_conversation, result.replayed) == (
        False,
        False,
        False,
    )
    assert await count(runtime, t.contacts) == contacts
    assert await count(runtime, t.conversations) == conversations
    assert (await contact_row(runtime, ws.contact_id)).name == "Cora Customer"
    conv = await conversation_row(runtime, ws.conversation_id)
    # The customer is still waiting since the first message.
    assert (conv.last_seq, conv.waiting_since, conv.last_activity_at) == (
        2,
        T0,
        T0 + timedelta(minutes=2),
    )
    assert await events_since(runtime, before) == [
        message_event(
            ws,
            message_id=result.message_id,
            conversation_id=ws.conversation_id,
            inbox_id=ws.inbox_id,
            contact_id=ws.contact_id,
            seq=2,
            direction="inbound",
            sender_kind="contact",
            sender_id=ws.contact_id,
            text="Any news?",
            at=iso(2),
        )
    ]


async def test_message_after_resolve_opens_a_new_conversation(
    runtime: Runtime, ws: Workspace
) -> None:
    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=ws.conversation_id,
        status=RESOLVED,
    )
    clock(runtime).advance(hours=1)
    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text="It broke again",
    )
    assert result.conversation_id != ws.conversation_id
    assert (result.contact_id, result.seq, result.created_conversation) == (ws.contact_id, 1, True)
    old = await conversation_row(runtime, ws.conversation_id)
    assert (old.status, old.last_seq) == ("resolved", 1)
    new = await conversation_row(runtime, result.conversation_id)
    assert (new.status, new.last_seq, new.waiting_since) == (
        "open",
        1,
        T0 + timedelta(hours=1),
    )
    assert await events_since(runtime, before) == [
        (
            "conversation.created",
            {
                "workspace_id": ws.id,
                "conversation_id": result.conversation_id,
                "inbox_id": ws.inbox_id,
                "contact_id": ws.contact_id,
                "status": "open",
                "subject": None,
                "origin_contact_id": ws.contact_id,
            },
        ),
        message_event(
            ws,
            message_id=result.message_id,
            conversation_id=result.conversation_id,
            inbox_id=ws.inbox_id,
            contact_id=ws.contact_id,
            seq=1,
            direction="inbound",
            sender_kind="contact",
            sender_id=ws.contact_id,
            text="It broke again",
            at=iso(60),
        ),
    ]


@pytest.mark.parametrize("status", [SNOOZED, PENDING])
async def test_message_wakes_a_snoozed_or_pending_conversation(
    runtime: Runtime, ws: Workspace, status: ConversationStatus
) -> None:
    cid = ws.conversation_id
    until = T0 + timedelta(days=2) if status is SNOOZED else None
    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=cid,
        status=status,
        snoozed_until=until,
    )
    clock(runtime).advance(minutes=30)
    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text="Hello?",
    )
    assert (result.conversation_id, result.seq, result.created_conversation) == (cid, 2, False)
    conv = await conversation_row(runtime, cid)
    assert (conv.status, conv.snoozed_until, conv.last_seq) == ("open", None, 2)
    assert await events_since(runtime, before) == [
        status_event(ws, cid, status.value, "open"),
        message_event(
            ws,
            message_id=result.message_id,
            conversation_id=cid,
            inbox_id=ws.inbox_id,
            contact_id=ws.contact_id,
            seq=2,
            direction="inbound",
            sender_kind="contact",
            sender_id=ws.contact_id,
            text="Hello?",
            at=iso(30),
        ),
    ]


async def test_same_external_id_is_stored_once(runtime: Runtime, ws: Workspace) -> None:
    async def receive(text: str, inbox_id: int) -> Any:
        return await perform(
            runtime,
            ws.system,
            do_receive_message,
            inbox_id=inbox_id,
            identity=IdentityInput(EMAIL, "customer@acme.test"),
            name="Cora Customer",
            text=text,
            external_id="<msg-1@mail.example>",
        )

    first = await receive("Invoice attached", ws.inbox_id)
    assert (first.seq, first.replayed) == (2, False)
    messages, before = await count(runtime, t.messages), await last_event_id(runtime)
    conv_before = await conversation_row(runtime, ws.conversation_id)

    clock(runtime).advance(minutes=1)
    again = await receive("Invoice attached", ws.inbox_id)
    assert (again.message_id, again.conversation_id, again.contact_id, again.seq) == (
        first.message_id,
        ws.conversation_id,
        ws.contact_id,
        2,
    )
    assert (again.replayed, again.created_contact, again.created_conversation) == (
        True,
        False,
        False,
    )
    assert await count(runtime, t.messages) == messages
    assert await conversation_row(runtime, ws.conversation_id) == conv_before
    assert await events_since(runtime, before) == []

    # The same id arriving in another inbox is another item.
    elsewhere = await receive("Invoice attached", ws.other_inbox_id)
    assert elsewhere.replayed is False
    assert elsewhere.message_id != first.message_id
    assert await count(runtime, t.messages) == messages + 1
