"""Widget visitor actions: the rows each writes and the exact events it
emits; who a visitor may become (PROTOCOLS.md P3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_create_inbox, do_update_inbox
from server.actions.messages import do_receive_message
from server.actions.visitors import (
    NewVisitorSession,
    do_identify_visitor,
    do_send_visitor_message,
    do_set_visitor_attributes,
    do_start_visitor_session,
    do_track_contact_event,
)
from server.domain.errors import Forbidden, NotFound
from server.domain.values import IdentityKind, InboxKind
from server.domain.widget_identity import identity_hash
from server.runtime import Runtime
from server.storage import tables as t
from server.storage.secrets import hash_token
from tests.domain.test_widget_identity import jwt
from tests.support import T0, Workspace, events_since, fetch_all, identity_rows, last_event_id

AnyRow = sa.Row[Any]
EXP = int((T0 + timedelta(minutes=5)).timestamp())


async def session_row(runtime: Runtime, session_id: int) -> AnyRow:
    rows = await fetch_all(
        runtime, sa.select(t.visitor_sessions).where(t.visitor_sessions.c.id == session_id)
    )
    return rows[0]


@pytest.fixture
async def widget(runtime: Runtime, ws: Workspace) -> NewInbox:
    return await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Shop chat",
        kind=InboxKind.WIDGET,
        settings={"greeting": "Hi!"},
        box=runtime.secrets,
    )


async def start(runtime: Runtime, ws: Workspace, widget: NewInbox) -> NewVisitorSession:
    return await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=widget.inbox_id, origin=None
    )


async def customer(runtime: Runtime, ws: Workspace, widget: NewInbox) -> tuple[int, int]:
    """An existing contact (email ann@shop.test, user id user-42) with a
    conversation in the widget inbox: (contact_id, conversation_id)."""
    contact_id = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name="Ann",
        identities=[
            IdentityInput(IdentityKind.EMAIL, "ann@shop.test"),
            IdentityInput(IdentityKind.EXTERNAL, "user-42", verified=True),
        ],
    )
    received = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=widget.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "ann@shop.test"),
        name="Ann",
        text="where is my parcel?",
    )
    return contact_id, received.conversation_id


async def test_start_session_writes_contact_identity_and_hashed_token(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    before = await last_event_id(runtime)
    new = await start(runtime, ws, widget)

    row = await session_row(runtime, new.session_id)
    assert row.token_hash == hash_token(new.token) and len(new.token) > 40
    assert (row.inbox_id, row.contact_id, row.verified) == (widget.inbox_id, new.contact_id, False)
    assert row.created_at == row.last_seen_at == T0
    [(kind, visitor_id, verified)] = await identity_rows(runtime, new.contact_id)
    assert (kind, verified, len(visitor_id)) == ("visitor", False, 32)
    assert await events_since(runtime, before) == [
        (
            "contact.created",
            {
                "workspace_id": ws.id,
                "contact_id": new.contact_id,
                "name": f"Visitor {visitor_id[:6]}",
            },
        ),
        (
            "contact.identity_added",
            {
                "workspace_id": ws.id,
                "contact_id": new.contact_id,
                "kind": "visitor",
                "value": visitor_id,
                "verified": False,
            },
        ),
        (
            "visitor.session_started",
            {
                "workspace_id": ws.id,
                "session_id": new.session_id,
                "inbox_id": widget.inbox_id,
                "contact_id": new.contact_id,
            },
        ),
    ]
    other = await start(runtime, ws, widget)
    assert other.token != new.token and other.contact_id != new.contact_id


async def test_start_session_checks_inbox_kind_and_allowed_domains(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    with pytest.raises(NotFound):
        await perform(
            runtime, ws.system, do_start_visitor_session, inbox_id=ws.other_inbox_id, origin=None
        )
    await perform(
        runtime,
        ws.system,
        do_update_inbox,
        inbox_id=widget.inbox_id,
        settings={"allowed_domains": ["https://shop.example"]},
    )
    before = await last_event_id(runtime)
    with pytest.raises(Forbidden) as caught:
        await perform(
            runtime,
            ws.system,
            do_start_visitor_session,
            inbox_id=widget.inbox_id,
            origin="https://evil.example",
        )
    assert caught.value.field == "Origin"
    assert await events_since(runtime, before) == []
    await perform(
        runtime,
        ws.system,
        do_start_visitor_session,
        inbox_id=widget.inbox_id,
        origin="https://shop.example",
    )


async def test_unverified_identity_is_kept_as_claims_and_never_merges(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    ann, _conv = await customer(runtime, ws, widget)
    new = await start(runtime, ws, widget)
    before = await last_event_id(runtime)

    got = await perform(
        runtime,
        ws.system,
        do_identify_visitor,
        session_id=new.session_id,
        box=runtime.secrets,
        user_id="user-42",
        email="ann@shop.test",
        name="Mallory",
    )

    assert (got.contact_id, got.verified) == (new.contact_id, False)
    row = await session_row(runtime, new.session_id)
    assert (row.contact_id, row.verified) == (new.contact_id, False)
    assert [k for k, _v, _ in await identity_rows(runtime, new.contact_id)] == ["visitor"]
    assert len(await identity_rows(runtime, ann)) == 2
    [suggestion] = await fetch_all(runtime, sa.select(t.contact_merge_suggestions))
    assert "ann@shop.test" in suggestion.reason
    assert await events_since(runtime, before) == [
        (
            "contact.updated",
            {
                "workspace_id": ws.id,
                "contact_id": new.contact_id,
                "changes": ["attributes", "name"],
            },
        ),
        # The claim never merges, but it is offered to the agents (F3).
        (
            "contact.merge_suggested",
            {
                "workspace_id": ws.id,
                "suggestion_id": suggestion.id,
                "contact_id": ann,
                "candidate_id": new.contact_id,
                "reason": suggestion.reason,
            },
        ),
        (
            "visitor.identified",
            {
                "workspace_id": ws.id,
                "session_id": new.session_id,
                "inbox_id": widget.inbox_id,
                "contact_id": new.contact_id,
                "previous_contact_id": new.contact_id,
                "verified": False,
            },
        ),
    ]
    [contact] = await fetch_all(
        runtime, sa.select(t.contacts).where(t.contacts.c.id == new.contact_id)
    )
    assert contact.name == "Mallory"
    assert contact.attributes == {"user_id": "user-42", "email": "ann@shop.test"}


async def test_verified_hmac_moves_the_session_onto_the_existing_contact(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    ann, _conv = await customer(runtime, ws, widget)
    new = await start(runtime, ws, widget)
    assert widget.secret is not None
    before = await last_event_id(runtime)

    got = await perform(
        runtime,
        ws.system,
        do_identify_visitor,
        session_id=new.session_id,
        box=runtime.secrets,
        user_id="user-42",
        identity_hash=identity_hash(widget.secret, "user-42"),
    )

    assert (got.contact_id, got.verified) == (ann, True)
    row = await session_row(runtime, new.session_id)
    assert (row.contact_id, row.verified) == (ann, True)
    assert await events_since(runtime, before) == [
        (
            "visitor.identified",
            {
                "workspace_id": ws.id,
                "session_id": new.session_id,
                "inbox_id": widget.inbox_id,
                "contact_id": ann,
                "previous_contact_id": new.contact_id,
                "verified": True,
            },
        ),
    ]


async def test_verified_jwt_moves_onto_the_email_holder_and_adds_the_user_id(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    cora = ws.contact_id  # customer@acme.test, known by email only
    new = await start(runtime, ws, widget)
    assert widget.secret is not None
    token = jwt({"sub": "u-7", "email": "Customer@acme.test", "exp": EXP}, secret=widget.secret)
    before = await last_event_id(runtime)

    got = await perform(
        runtime,
        ws.system,
        do_identify_visitor,
        session_id=new.session_id,
        box=runtime.secrets,
        identity_token=token,
    )

    assert (got.contact_id, got.verified) == (cora, True)
    assert ("external", "u-7", True) in await identity_rows(runtime, cora)
    types = [type_ for type_, _ in await events_since(runtime, before)]
    assert types == ["contact.identity_added", "visitor.identified"]


async def test_verified_identity_nobody_holds_goes_on_the_visitor_contact(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    new = await start(runtime, ws, widget)
    assert widget.secret is not None
    token = jwt({"sub": "u-9", "email": "new@shop.test", "exp": EXP}, secret=widget.secret)
    got = await perform(
        runtime,
        ws.system,
        do_identify_visitor,
        session_id=new.session_id,
        box=runtime.secrets,
        identity_token=token,
        name="Nora",
    )
    assert (got.contact_id, got.verified) == (new.contact_id, True)
    assert [(k, v) for k, v, _ in await identity_rows(runtime, new.contact_id)][1:] == [
        ("external", "u-9"),
        ("email", "new@shop.test"),
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_id": "user-42", "identity_hash": "0" * 64}, "identity_hash"),
        ({"identity_token": "expired"}, "identity_token"),
        ({"identity_token": "forged"}, "identity_token"),
    ],
)
async def test_bad_proofs_are_refused_and_write_nothing(
    runtime: Runtime, ws: Workspace, widget: NewInbox, kwargs: dict[str, Any], field: str
) -> None:
    assert widget.secret is not None
    good = {"sub": "user-42", "email": "ann@shop.test", "exp": EXP}
    if kwargs.get("identity_token") == "expired":
        kwargs = {"identity_token": jwt({**good, "exp": EXP - 600}, secret=widget.secret)}
    elif kwargs.get("identity_token") == "forged":
        kwargs = {"identity_token": jwt(good, secret="guessed")}
    new = await start(runtime, ws, widget)
    before = await last_event_id(runtime)
    with pytest.raises(Forbidden) as caught:
        await perform(
            runtime,
            ws.system,
            do_identify_visitor,
            session_id=new.session_id,
            box=runtime.secrets,
            **kwargs,
        )
    assert caught.value.field == field
    assert await events_since(runtime, before) == []


async def test_require_verification_refuses_unverified_identification(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    await perform(
        runtime,
        ws.system,
        do_update_inbox,
        inbox_id=widget.inbox_id,
        settings={"require_verification": True},
    )
    new = await start(runtime, ws, widget)
    with pytest.raises(Forbidden, match="requires a verified identity"):
        await perform(
            runtime,
            ws.system,
            do_identify_visitor,
            session_id=new.session_id,
            box=runtime.secrets,
            email="ann@shop.test",
        )


async def test_attributes_and_tracked_events(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    new = await start(runtime, ws, widget)
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.system,
        do_set_visitor_attributes,
        session_id=new.session_id,
        attributes={"plan": "pro"},
    )
    event_id = await perform(
        runtime,
        ws.system,
        do_track_contact_event,
        contact_id=new.contact_id,
        name="order_placed",
        properties={"total": 12.5},
    )
    [row] = await fetch_all(runtime, sa.select(t.contact_events))
    assert (row.id, row.contact_id, row.name, row.properties) == (
        event_id,
        new.contact_id,
        "order_placed",
        {"total": 12.5},
    )
    assert row.workspace_id == ws.id and row.created_at == T0
    assert await events_since(runtime, before) == [
        (
            "contact.updated",
            {"workspace_id": ws.id, "contact_id": new.contact_id, "changes": ["attributes"]},
        ),
        (
            "contact.event_tracked",
            {
                "workspace_id": ws.id,
                "contact_id": new.contact_id,
                "contact_event_id": event_id,
                "name": "order_placed",
                "properties": {"total": 12.5},
            },
        ),
    ]
    with pytest.raises(NotFound):
        await perform(
            runtime, ws.system, do_track_contact_event, contact_id=10**9, name="x", properties={}
        )


async def test_visitor_message_is_stored_exactly_once_per_client_id(
    runtime: Runtime, ws: Workspace, widget: NewInbox
) -> None:
    new = await start(runtime, ws, widget)
    before = await last_event_id(runtime)
    first = await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=new.session_id,
        text="hello",
        client_id="c-1",
    )
    again = await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=new.session_id,
        text="hello",
        client_id="c-1",
    )
    assert (again.message_id, again.replayed, first.replayed) == (first.message_id, True, False)
    assert first.contact_id == new.contact_id and first.created_conversation
    [msg] = await fetch_all(
        runtime, sa.select(t.messages).where(t.messages.c.contact_id == new.contact_id)
    )
    assert (msg.external_id, msg.direction, msg.sender_kind) == (
        f"widget:{new.session_id}:c-1",
        "inbound",
        "contact",
    )
    types = [type_ for type_, _ in await events_since(runtime, before)]
    assert types == ["conversation.created", "message.created"]
