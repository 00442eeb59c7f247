"""Merge suggestions (F3): made when an unverified claim meets an address
another contact holds (both ways round), at most once per pair; dismissed
by an agent; accepted when the two are merged. Rows and the exact events
emitted; refusals write and emit nothing."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.contact_merges import do_merge_contacts
from server.actions.contact_suggestions import (
    do_dismiss_merge_suggestion,
    settle_suggestions,
    suggest_claimed_duplicates,
    suggest_claimed_owner,
)
from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import ActionContext, perform
from server.actions.visitors import (
    do_identify_visitor,
    do_leave_offline_message,
    do_start_visitor_session,
)
from server.domain.errors import Conflict, NotFound
from server.domain.values import IdentityKind
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from server.storage import tables as t
from tests.email.mails import mail
from tests.support import (
    T0,
    Workspace,
    events_since,
    fetch_all,
    last_event_id,
    seed_workspace,
)

ADDRESS = "claimed@example.test"


async def suggestions(runtime: Runtime) -> list[dict[str, Any]]:
    s = t.contact_merge_suggestions
    rows = await fetch_all(runtime, sa.select(s).order_by(s.c.id))
    return [dict(r._mapping) for r in rows]


async def claimant(runtime: Runtime, ws: Workspace, name: str = "Vi Visitor") -> int:
    """A contact that typed ADDRESS in (an attribute, no identity)."""
    contact_id: int = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name=name,
        attributes={"email": "Claimed@Example.test"},
    )
    return contact_id


async def holder(runtime: Runtime, ws: Workspace, name: str = "Mo Mail") -> int:
    """A contact holding ADDRESS as an email identity."""
    contact_id: int = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name=name,
        identities=[IdentityInput(IdentityKind.EMAIL, ADDRESS)],
    )
    return contact_id


async def test_a_mail_from_a_claimed_address_suggests_the_merge_once(
    runtime: Runtime, ws: Workspace
) -> None:
    visitor = await claimant(runtime, ws)
    before = await last_event_id(runtime)
    out = await ingest_mail(
        MailIntake.of(runtime), inbox_id=ws.other_inbox_id, raw=mail(sender=ADDRESS), source="http"
    )
    assert out.status == "stored" and out.conversation_id is not None
    [row] = await suggestions(runtime)
    mail_contact = row["contact_id"]
    assert mail_contact not in (visitor, ws.contact_id)
    reason = f"Same address, {ADDRESS}: one wrote in by email from it, the other only typed it in"
    assert row == {
        "id": row["id"],
        "workspace_id": ws.id,
        "contact_id": mail_contact,
        "candidate_id": visitor,
        "reason": reason,
        "status": "open",
        "created_at": T0,
    }
    suggested = [(k, p) for k, p in await events_since(runtime, before) if k.startswith("contact.")]
    assert suggested[-1] == (
        "contact.merge_suggested",
        {
            "workspace_id": ws.id,
            "suggestion_id": row["id"],
            "contact_id": mail_contact,
            "candidate_id": visitor,
            "reason": reason,
        },
    )
    assert [k for k, _ in suggested].count("contact.merge_suggested") == 1
    # The same pair is not suggested again, either way round.
    before = await last_event_id(runtime)
    again = await perform(
        runtime, ws.system, suggest_claimed_duplicates, contact_id=mail_contact, address=ADDRESS
    )
    reverse = await perform(
        runtime, ws.system, suggest_claimed_owner, claimant_id=visitor, address=ADDRESS
    )
    assert (again, reverse) == (0, 0)
    assert len(await suggestions(runtime)) == 1
    assert await events_since(runtime, before) == []


async def test_a_visitor_claiming_a_held_address_suggests_the_holder(
    runtime: Runtime, ws: Workspace
) -> None:
    owner = await holder(runtime, ws)
    visitor = await claimant(runtime, ws)
    before = await last_event_id(runtime)
    made = await perform(
        runtime,
        ws.system,
        suggest_claimed_owner,
        claimant_id=visitor,
        address=" CLAIMED@example.test",
    )
    assert made == 1
    [row] = await suggestions(runtime)
    reason = f"Same address, {ADDRESS}: one holds it, the other only typed it in on the website"
    assert (row["contact_id"], row["candidate_id"], row["status"]) == (owner, visitor, "open")
    assert row["reason"] == reason
    assert await events_since(runtime, before) == [
        (
            "contact.merge_suggested",
            {
                "workspace_id": ws.id,
                "suggestion_id": row["id"],
                "contact_id": owner,
                "candidate_id": visitor,
                "reason": reason,
            },
        )
    ]
    # Nobody else holds it: nothing to suggest. The claimant's own
    # identity is no duplicate of itself.
    before = await last_event_id(runtime)
    nobody = await perform(
        runtime, ws.system, suggest_claimed_owner, claimant_id=visitor, address="new@example.test"
    )
    itself = await perform(
        runtime, ws.system, suggest_claimed_owner, claimant_id=owner, address=ADDRESS
    )
    assert (nobody, itself) == (0, 0)
    assert await events_since(runtime, before) == []


async def test_a_merged_holder_or_another_workspace_is_never_suggested(
    runtime: Runtime, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Other Co")
    await perform(
        runtime,
        other.system,
        do_create_contact,
        name="Elsewhere",
        identities=[IdentityInput(IdentityKind.EMAIL, ADDRESS)],
    )
    visitor = await claimant(runtime, ws)
    assert (
        await perform(
            runtime, ws.system, suggest_claimed_owner, claimant_id=visitor, address=ADDRESS
        )
        == 0
    )
    owner = await holder(runtime, ws)
    keeper = await perform(runtime, ws.admin, do_create_contact, name="Keeper")
    await perform(runtime, ws.admin, do_merge_contacts, contact_id=keeper, other_id=owner)
    # The identity moved to the survivor, which is suggested instead.
    assert (
        await perform(
            runtime, ws.system, suggest_claimed_owner, claimant_id=visitor, address=ADDRESS
        )
        == 1
    )
    [row] = await suggestions(runtime)
    assert (row["contact_id"], row["candidate_id"]) == (keeper, visitor)


async def test_dismiss_closes_the_suggestion_once_and_audits_it(
    runtime: Runtime, ws: Workspace
) -> None:
    owner, visitor = await holder(runtime, ws), await claimant(runtime, ws)
    await perform(runtime, ws.system, suggest_claimed_owner, claimant_id=visitor, address=ADDRESS)
    [row] = await suggestions(runtime)
    before = await last_event_id(runtime)
    await perform(runtime, ws.agent, do_dismiss_merge_suggestion, suggestion_id=row["id"])
    [after] = await suggestions(runtime)
    assert after == {**row, "status": "dismissed"}
    assert await events_since(runtime, before) == [
        (
            "contact.merge_suggestion_dismissed",
            {
                "workspace_id": ws.id,
                "suggestion_id": row["id"],
                "contact_id": owner,
                "candidate_id": visitor,
                "dismissed_by": ws.agent_id,
            },
        )
    ]
    a = t.audit_log.c
    audit = await fetch_all(
        runtime, sa.select(a.action, a.actor_id, a.subject_kind, a.subject_id, a.details)
    )
    assert [tuple(r) for r in audit] == [
        (
            "contact.merge_suggestion_dismissed",
            ws.agent_id,
            "contact",
            owner,
            {"suggestion_id": row["id"], "candidate_id": visitor},
        )
    ]
    # Again: nothing changes, nothing is emitted or audited.
    before = await last_event_id(runtime)
    await perform(runtime, ws.admin, do_dismiss_merge_suggestion, suggestion_id=row["id"])
    assert await suggestions(runtime) == [after]
    assert await events_since(runtime, before) == []
    assert len(await fetch_all(runtime, sa.select(a.id))) == 1
    # A dismissed pair is not suggested again.
    assert (
        await perform(
            runtime, ws.system, suggest_claimed_duplicates, contact_id=owner, address=ADDRESS
        )
        == 0
    )


async def test_dismiss_refusals_write_and_emit_nothing(runtime: Runtime, ws: Workspace) -> None:
    owner, visitor = await holder(runtime, ws), await claimant(runtime, ws)
    await perform(runtime, ws.system, suggest_claimed_owner, claimant_id=visitor, address=ADDRESS)
    [row] = await suggestions(runtime)
    other = await seed_workspace(runtime, "Other Co")
    before = (await suggestions(runtime), await last_event_id(runtime))
    for actor, suggestion_id in ((other.admin, row["id"]), (ws.agent, row["id"] + 1000)):
        with pytest.raises(NotFound) as caught:
            await perform(runtime, actor, do_dismiss_merge_suggestion, suggestion_id=suggestion_id)
        assert caught.value.field == "suggestion_id"
    assert (await suggestions(runtime), await last_event_id(runtime)) == before
    # Accepted (merged) is final.
    await perform(runtime, ws.agent, merge_and_settle, contact_id=owner, other_id=visitor)
    before = (await suggestions(runtime), await last_event_id(runtime))
    with pytest.raises(Conflict):
        await perform(runtime, ws.agent, do_dismiss_merge_suggestion, suggestion_id=row["id"])
    assert (await suggestions(runtime), await last_event_id(runtime)) == before


async def merge_and_settle(ctx: ActionContext, *, contact_id: int, other_id: int) -> int:
    """do_merge_contacts as it is meant to end: settling the suggestions
    between the two in the merge's own transaction."""
    merge_id = await do_merge_contacts(ctx, contact_id=contact_id, other_id=other_id)
    await settle_suggestions(ctx, survivor_id=contact_id, merged_id=other_id)
    return merge_id


async def test_a_merge_settles_the_pairs_open_suggestions_only(
    runtime: Runtime, ws: Workspace
) -> None:
    owner = await holder(runtime, ws)
    visitor = await claimant(runtime, ws)
    twin = await claimant(runtime, ws, "Vi Twin")
    await perform(runtime, ws.system, suggest_claimed_duplicates, contact_id=owner, address=ADDRESS)
    first, second = await suggestions(runtime)
    assert {first["candidate_id"], second["candidate_id"]} == {visitor, twin}
    pair = first if first["candidate_id"] == visitor else second
    third = second if pair is first else first
    before = await last_event_id(runtime)
    # The survivor is the suggestion's candidate: either way round settles it.
    await perform(runtime, ws.agent, merge_and_settle, contact_id=visitor, other_id=owner)
    events = await events_since(runtime, before)
    assert [k for k, _ in events] == ["contact.merged", "contact.merge_suggestion_accepted"]
    assert events[1][1] == {
        "workspace_id": ws.id,
        "suggestion_id": pair["id"],
        "contact_id": owner,
        "candidate_id": visitor,
        "survivor_id": visitor,
        "merged_id": owner,
    }
    by_id = {r["id"]: r for r in await suggestions(runtime)}
    assert by_id[pair["id"]]["status"] == "accepted"
    # The merged contact's suggestion with a third contact stays open
    # (hidden while merged; an undo brings it back).
    assert by_id[third["id"]]["status"] == "open"
    # Nothing open between them any more: settling again does nothing.
    before = await last_event_id(runtime)
    assert (
        await perform(runtime, ws.agent, settle_suggestions, survivor_id=visitor, merged_id=owner)
        == 0
    )
    assert await events_since(runtime, before) == []


async def test_the_widget_offers_the_merge_when_a_visitor_types_a_held_address(
    runtime: Runtime, ws: Workspace
) -> None:
    """Wired into the widget's actions: setUser without proof, and the
    offline form, both suggest merging with the address's holder."""
    typed = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    await perform(
        runtime,
        ws.system,
        do_identify_visitor,
        session_id=typed.session_id,
        box=runtime.secrets,
        email="Customer@Acme.test",
    )
    offline = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    await perform(
        runtime,
        ws.system,
        do_leave_offline_message,
        session_id=offline.session_id,
        email="customer@acme.test",
        name=None,
        text="call me",
        client_id="c1",
    )
    rows = await fetch_all(
        runtime,
        sa.select(t.contact_merge_suggestions).order_by(t.contact_merge_suggestions.c.id),
    )
    holders = {r.contact_id for r in rows}
    assert holders == {ws.contact_id} and len(rows) == 2
    assert all(r.status == "open" for r in rows)
