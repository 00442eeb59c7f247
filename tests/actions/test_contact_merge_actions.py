"""Contact merges (F3): what a merge moves, records and emits, all in one
transaction; what an undo gives back (and what it leaves on the
survivor); and every refusal writing and emitting nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.agents import do_create_agent
from server.actions.contact_merges import do_merge_contacts, do_undo_contact_merge
from server.actions.contacts import (
    IdentityInput,
    do_add_contact_identity,
    do_create_contact,
    do_update_contact,
)
from server.actions.context import perform
from server.actions.conversation_merges import do_merge_conversations
from server.actions.conversations import do_create_conversation
from server.actions.inboxes import do_add_inbox_member, do_remove_inbox_member
from server.actions.messages import do_receive_message, do_send_message
from server.actions.visitors import (
    do_send_visitor_message,
    do_start_visitor_session,
    do_track_contact_event,
)
from server.clock import FrozenClock
from server.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.domain.merges import UNDO_WINDOW
from server.domain.values import IdentityKind
from server.queries.merges import merge_preview
from server.queries.reading import read
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import (
    PASSWORD,
    T0,
    Workspace,
    agent_actor,
    events_since,
    fetch_all,
    fetch_one,
    identity_rows,
    last_event_id,
    seed_workspace,
)


@dataclasses.dataclass
class Duplicate:
    """A second record of the seeded customer, with some of everything a
    contact owns: a widget session and its conversation (in `inbox`), an
    email conversation in `other_inbox`, two identities, a tracked event
    and attributes. The plain agent joins `other_inbox`: merging takes
    every conversation of both contacts (`test_merging_takes_every_
    conversation_of_both_contacts`)."""

    contact_id: int
    session_id: int
    widget_conversation_id: int
    email_conversation_id: int
    identity_ids: list[int]
    event_id: int


async def duplicate(runtime: Runtime, ws: Workspace) -> Duplicate:
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    session = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    chat = await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=session.session_id,
        text="hi from the widget",
        client_id="c1",
    )
    contact_id = session.contact_id
    await perform(
        runtime,
        ws.admin,
        do_add_contact_identity,
        contact_id=contact_id,
        identity=IdentityInput(IdentityKind.EMAIL, "cora.private@mail.test"),
    )
    mail = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "cora.private@mail.test"),
        name="Cora",
        text="where is my invoice?",
    )
    event_id = await perform(
        runtime,
        ws.system,
        do_track_contact_event,
        contact_id=contact_id,
        name="cart_abandoned",
        properties={"total": 12},
    )
    await perform(
        runtime,
        ws.admin,
        do_update_contact,
        contact_id=contact_id,
        attributes={"plan": "free", "phone_model": "X"},
    )
    await perform(
        runtime, ws.admin, do_update_contact, contact_id=ws.contact_id, attributes={"plan": "pro"}
    )
    ci = t.contact_identities.c
    identity_ids = [
        r.id
        for r in await fetch_all(
            runtime, sa.select(ci.id).where(ci.contact_id == contact_id).order_by(ci.id)
        )
    ]
    return Duplicate(
        contact_id,
        session.session_id,
        chat.conversation_id,
        mail.conversation_id,
        identity_ids,
        event_id,
    )


async def owners(runtime: Runtime, table: sa.Table, ids: list[int]) -> dict[int, int]:
    """Row id → contact_id, for `ids` of `table`."""
    rows = await fetch_all(
        runtime, sa.select(table.c.id, table.c.contact_id).where(table.c.id.in_(ids))
    )
    return {r.id: r.contact_id for r in rows}


async def message_owners(runtime: Runtime, conversation_ids: list[int]) -> set[tuple[int, int]]:
    m = t.messages.c
    rows = await fetch_all(
        runtime,
        sa.select(m.conversation_id, m.contact_id).where(m.conversation_id.in_(conversation_ids)),
    )
    return {(r.conversation_id, r.contact_id) for r in rows}


async def contact(runtime: Runtime, contact_id: int) -> sa.Row[Any]:
    return await fetch_one(runtime, sa.select(t.contacts).where(t.contacts.c.id == contact_id))


async def audit_entries(runtime: Runtime) -> list[dict[str, Any]]:
    rows = await fetch_all(runtime, sa.select(t.audit_log).order_by(t.audit_log.c.id))
    return [dict(r._mapping) for r in rows]


async def written(runtime: Runtime) -> tuple[int, int, int]:
    """The last event id and the numbers of audit entries and merges."""
    async with runtime.db.read() as conn:
        audits = await conn.scalar(sa.select(sa.func.count()).select_from(t.audit_log))
        merges = await conn.scalar(sa.select(sa.func.count()).select_from(t.contact_merges))
    return await last_event_id(runtime), int(audits or 0), int(merges or 0)


def clock_of(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


# -- merging ------------------------------------------------------------------


async def test_a_merge_moves_everything_and_records_it_in_one_go(
    runtime: Runtime, ws: Workspace
) -> None:
    dup = await duplicate(runtime, ws)
    before = await last_event_id(runtime)
    # A plain agent may merge: contacts are every agent's (the email
    # conversation, in an inbox it can't see, moves all the same).
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )

    moved_conversations = [dup.widget_conversation_id, dup.email_conversation_id]
    assert await owners(runtime, t.conversations, moved_conversations) == {
        c: ws.contact_id for c in moved_conversations
    }
    assert await message_owners(runtime, moved_conversations) == {
        (c, ws.contact_id) for c in moved_conversations
    }
    assert await owners(runtime, t.contact_identities, dup.identity_ids) == {
        i: ws.contact_id for i in dup.identity_ids
    }
    assert await owners(runtime, t.contact_events, [dup.event_id]) == {dup.event_id: ws.contact_id}
    assert await owners(runtime, t.visitor_sessions, [dup.session_id]) == {
        dup.session_id: ws.contact_id
    }
    survivor, merged = await contact(runtime, ws.contact_id), await contact(runtime, dup.contact_id)
    assert survivor.attributes == {"plan": "pro", "phone_model": "X"}
    assert survivor.merged_into_id is None
    assert merged.merged_into_id == ws.contact_id
    assert merged.attributes == {"plan": "free", "phone_model": "X"}  # kept for the undo

    row = await fetch_one(runtime, sa.select(t.contact_merges))
    assert dict(row._mapping) == {
        "id": merge_id,
        "workspace_id": ws.id,
        "survivor_id": ws.contact_id,
        "merged_id": dup.contact_id,
        "moved": {
            "conversations": sorted(moved_conversations),
            "messages": 2,
            "identities": dup.identity_ids,
            "contact_events": [dup.event_id],
            "visitor_sessions": [dup.session_id],
            "conversation_merges": [],
            "attributes_added": {"phone_model": "X"},
            "survivor_attributes": {"plan": "pro"},
        },
        "merged_by": ws.agent_id,
        "created_at": T0,
        "undone_at": None,
    }
    counts = {
        "conversations": 2,
        "messages": 2,
        "identities": 2,
        "tracked_events": 1,
        "visitor_sessions": 1,
        "attributes_added": ["phone_model"],
    }
    [entry] = await audit_entries(runtime)
    assert {k: v for k, v in entry.items() if k != "id"} == {
        "workspace_id": ws.id,
        "actor_kind": "agent",
        "actor_id": ws.agent_id,
        "action": "contact.merged",
        "subject_kind": "contact",
        "subject_id": ws.contact_id,
        "details": {"merge_id": merge_id, "merged_id": dup.contact_id, "moved": counts},
        "created_at": T0,
    }
    assert await events_since(runtime, before) == [
        (
            "contact.merged",
            {
                "workspace_id": ws.id,
                "survivor_id": ws.contact_id,
                "merged_id": dup.contact_id,
                "merge_id": merge_id,
                "conversations": [
                    {"id": dup.widget_conversation_id, "inbox_id": ws.inbox_id},
                    {"id": dup.email_conversation_id, "inbox_id": ws.other_inbox_id},
                ],
            },
        )
    ]


async def test_after_a_merge_the_identities_lead_to_the_survivor(
    runtime: Runtime, ws: Workspace
) -> None:
    dup = await duplicate(runtime, ws)
    await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    again = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "cora.private@mail.test"),
        name="Cora",
        text="any news?",
    )
    assert (again.contact_id, again.conversation_id) == (ws.contact_id, dup.email_conversation_id)
    assert not again.created_contact


async def test_nonsense_merges_are_refused_and_write_nothing(
    runtime: Runtime, ws: Workspace
) -> None:
    dup = await duplicate(runtime, ws)
    third = await perform(runtime, ws.admin, do_create_contact, name="Third")
    await perform(runtime, ws.admin, do_merge_contacts, contact_id=third, other_id=dup.contact_id)
    stranger = (await seed_workspace(runtime, "Other Co")).contact_id
    before = await written(runtime)
    cases: list[tuple[int, int, type[DomainError], str | None]] = [
        (ws.contact_id, ws.contact_id, InvalidInput, "other_id"),
        (ws.contact_id, dup.contact_id, InvalidInput, "other_id"),  # already merged
        (dup.contact_id, ws.contact_id, InvalidInput, "contact_id"),  # into a merged one
        (ws.contact_id, stranger, NotFound, "other_id"),  # another workspace's
        (stranger, ws.contact_id, NotFound, None),
        (ws.contact_id, 10**9, NotFound, "other_id"),
    ]
    for survivor_id, other_id, error, field in cases:
        with pytest.raises(error) as refused:
            await perform(
                runtime, ws.agent, do_merge_contacts, contact_id=survivor_id, other_id=other_id
            )
        assert refused.value.field == field, (survivor_id, other_id)
    assert await written(runtime) == before


# -- undoing ------------------------------------------------------------------


async def test_undo_gives_back_exactly_what_moved(runtime: Runtime, ws: Workspace) -> None:
    dup = await duplicate(runtime, ws)
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    clock_of(runtime).advance(hours=1)
    # Life goes on for the survivor: a new tracked event, a new identity, a
    # new conversation, a reply in a moved conversation, attribute edits.
    later_event = await perform(
        runtime,
        ws.system,
        do_track_contact_event,
        contact_id=ws.contact_id,
        name="order_placed",
        properties={},
    )
    await perform(
        runtime,
        ws.admin,
        do_add_contact_identity,
        contact_id=ws.contact_id,
        identity=IdentityInput(IdentityKind.PHONE, "+1 555 0199"),
    )
    later_conversation = await perform(
        runtime,
        ws.admin,
        do_create_conversation,
        inbox_id=ws.other_inbox_id,
        contact_id=ws.contact_id,
    )
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=dup.email_conversation_id, text="sent"
    )
    await perform(
        runtime, ws.admin, do_update_contact, contact_id=ws.contact_id, attributes={"orders": 5}
    )
    before = await last_event_id(runtime)

    await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)

    moved_conversations = [dup.widget_conversation_id, dup.email_conversation_id]
    assert await owners(runtime, t.conversations, [*moved_conversations, later_conversation]) == {
        dup.widget_conversation_id: dup.contact_id,
        dup.email_conversation_id: dup.contact_id,
        later_conversation: ws.contact_id,
    }
    # Messages follow their conversation, the reply written since included.
    assert await message_owners(runtime, moved_conversations) == {
        (c, dup.contact_id) for c in moved_conversations
    }
    assert await owners(runtime, t.contact_identities, dup.identity_ids) == {
        i: dup.contact_id for i in dup.identity_ids
    }
    assert [kind for kind, _, _ in await identity_rows(runtime, ws.contact_id)] == [
        "email",
        "phone",
    ]
    assert await owners(runtime, t.contact_events, [dup.event_id, later_event]) == {
        dup.event_id: dup.contact_id,
        later_event: ws.contact_id,
    }
    assert await owners(runtime, t.visitor_sessions, [dup.session_id]) == {
        dup.session_id: dup.contact_id
    }
    survivor, merged = await contact(runtime, ws.contact_id), await contact(runtime, dup.contact_id)
    assert survivor.attributes == {"plan": "pro", "orders": 5}
    assert merged.merged_into_id is None
    row = await fetch_one(runtime, sa.select(t.contact_merges))
    assert row.undone_at == T0 + timedelta(hours=1)
    assert await events_since(runtime, before) == [
        (
            "contact.merge_undone",
            {
                "workspace_id": ws.id,
                "survivor_id": ws.contact_id,
                "merged_id": dup.contact_id,
                "merge_id": merge_id,
                "conversations": [
                    {"id": dup.widget_conversation_id, "inbox_id": ws.inbox_id},
                    {"id": dup.email_conversation_id, "inbox_id": ws.other_inbox_id},
                ],
            },
        )
    ]
    entry = (await audit_entries(runtime))[-1]
    assert (entry["action"], entry["actor_id"], entry["subject_id"]) == (
        "contact.merge_undone",
        ws.agent_id,
        ws.contact_id,
    )
    assert entry["details"] == {
        "merge_id": merge_id,
        "merged_id": dup.contact_id,
        "moved_back": {
            "conversations": 2,
            "messages": 3,
            "identities": 2,
            "tracked_events": 1,
            "visitor_sessions": 1,
            "attributes_added": ["phone_model"],
        },
    }
    assert entry["created_at"] == T0 + timedelta(hours=1)


async def test_a_widget_session_identified_elsewhere_since_stays_there(
    runtime: Runtime, ws: Workspace
) -> None:
    dup = await duplicate(runtime, ws)
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    elsewhere = await perform(runtime, ws.admin, do_create_contact, name="Someone else")
    async with runtime.db.write() as conn:
        # What a verified identify does to a session (server.actions.visitors).
        await conn.execute(
            t.visitor_sessions.update()
            .where(t.visitor_sessions.c.id == dup.session_id)
            .values(contact_id=elsewhere)
        )
    await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)
    assert await owners(runtime, t.visitor_sessions, [dup.session_id]) == {
        dup.session_id: elsewhere
    }


async def test_who_may_undo(runtime: Runtime, ws: Workspace) -> None:
    dup = await duplicate(runtime, ws)
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    bo = await perform(
        runtime, ws.system, do_create_agent, email="bo@acme.test", name="Bo", password=PASSWORD
    )
    stranger = await seed_workspace(runtime, "Other Co")
    before = await written(runtime)
    with pytest.raises(Forbidden):
        await perform(runtime, agent_actor(ws.id, bo), do_undo_contact_merge, merge_id=merge_id)
    with pytest.raises(NotFound):
        await perform(runtime, stranger.admin, do_undo_contact_merge, merge_id=merge_id)
    assert await written(runtime) == before
    # An admin may undo anyone's merge.
    await perform(runtime, ws.admin, do_undo_contact_merge, merge_id=merge_id)
    assert (await contact(runtime, dup.contact_id)).merged_into_id is None


async def test_undo_is_refused_once_expired_or_done(runtime: Runtime, ws: Workspace) -> None:
    dup = await duplicate(runtime, ws)
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    clock_of(runtime).advance(seconds=UNDO_WINDOW.total_seconds() + 1)
    before = await written(runtime)
    with pytest.raises(Conflict, match="within 24 hours"):
        await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)
    assert await written(runtime) == before
    assert (await contact(runtime, dup.contact_id)).merged_into_id == ws.contact_id

    clock_of(runtime).advance(seconds=-2)  # just inside the window again
    await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)
    before = await written(runtime)
    with pytest.raises(Conflict, match="already undone"):
        await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)
    assert await written(runtime) == before


async def test_undo_is_refused_once_the_survivor_was_merged_again(
    runtime: Runtime, ws: Workspace
) -> None:
    dup = await duplicate(runtime, ws)
    first = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    final = await perform(runtime, ws.admin, do_create_contact, name="Cora (CRM)")
    second = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=final, other_id=ws.contact_id
    )
    before = await written(runtime)
    with pytest.raises(Conflict, match=f"merged into contact {final}"):
        await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=first)
    assert await written(runtime) == before
    # Undone in reverse order, both go back.
    await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=second)
    await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=first)
    assert await owners(runtime, t.contact_events, [dup.event_id]) == {dup.event_id: dup.contact_id}
    assert (await contact(runtime, ws.contact_id)).merged_into_id is None


async def test_undo_is_refused_once_a_moved_conversation_was_merged(
    runtime: Runtime, ws: Workspace
) -> None:
    dup = await duplicate(runtime, ws)
    # A conversation merge among the duplicate's own conversations before
    # the contact merge does not stand in the way of its undo...
    extra = await perform(
        runtime, ws.admin, do_create_conversation, inbox_id=ws.inbox_id, contact_id=dup.contact_id
    )
    await perform(
        runtime,
        ws.admin,
        do_merge_conversations,
        conversation_id=dup.widget_conversation_id,
        source_id=extra,
    )
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)
    assert await owners(runtime, t.conversations, [extra]) == {extra: dup.contact_id}

    # ... but one since then, mixing both contacts' messages, does.
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    await perform(
        runtime,
        ws.agent,
        do_merge_conversations,
        conversation_id=ws.conversation_id,
        source_id=dup.widget_conversation_id,
    )
    before = await written(runtime)
    with pytest.raises(Conflict, match=f"conversation {dup.widget_conversation_id}"):
        await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)
    assert await written(runtime) == before


async def test_crossed_merges_racing_leave_one_merge(runtime: Runtime, ws: Workspace) -> None:
    """Two agents merging the same pair in opposite directions at once:
    one wins, the other is refused, and no contact ends up merged into a
    contact that is itself merged."""
    dup = await duplicate(runtime, ws)
    results = await asyncio.gather(
        perform(
            runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
        ),
        perform(
            runtime, ws.admin, do_merge_contacts, contact_id=dup.contact_id, other_id=ws.contact_id
        ),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], InvalidInput), results
    merges = await fetch_all(runtime, sa.select(t.contact_merges))
    assert len(merges) == 1
    survivor, merged = merges[0].survivor_id, merges[0].merged_id
    assert (await contact(runtime, survivor)).merged_into_id is None
    assert (await contact(runtime, merged)).merged_into_id == survivor


# -- who may merge --------------------------------------------------------------


async def test_merging_takes_every_conversation_of_both_contacts(
    runtime: Runtime, ws: Workspace
) -> None:
    """An agent outside an inbox can't merge a contact that has a
    conversation there, whichever side it is on, nor preview, nor undo
    such a merge; it writes and emits nothing. An admin may."""
    dup = await duplicate(runtime, ws)
    await perform(
        runtime, ws.system, do_remove_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    before = await written(runtime)
    for survivor_id, other_id, field in (
        (ws.contact_id, dup.contact_id, "other_id"),
        (dup.contact_id, ws.contact_id, "contact_id"),
    ):
        with pytest.raises(Forbidden) as refused:
            await perform(
                runtime, ws.agent, do_merge_contacts, contact_id=survivor_id, other_id=other_id
            )
        assert refused.value.field == field
        with pytest.raises(Forbidden) as refused:
            await read(runtime, merge_preview, ws.agent, survivor_id, other_id)
        assert refused.value.field == field
    assert await written(runtime) == before

    # The agent merged while it could see both inboxes, and lost one since:
    # the moved email conversation is out of its reach, so is the undo.
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    merge_id = await perform(
        runtime, ws.agent, do_merge_contacts, contact_id=ws.contact_id, other_id=dup.contact_id
    )
    await perform(
        runtime, ws.system, do_remove_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    before = await written(runtime)
    with pytest.raises(Forbidden) as refused:
        await perform(runtime, ws.agent, do_undo_contact_merge, merge_id=merge_id)
    assert refused.value.field == "merge_id"
    assert await written(runtime) == before
    await perform(runtime, ws.admin, do_undo_contact_merge, merge_id=merge_id)
    assert (await contact(runtime, dup.contact_id)).merged_into_id is None
