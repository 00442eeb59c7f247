"""REST: merge suggestions (F3). Whoever may merge the two contacts (an
admin, or an agent who can read every conversation of both) sees a
contact's possible duplicates (from either side of the suggestion, with
the other contact's identities and conversations) and may dismiss one;
others see none and may not dismiss it (403); dismissing is idempotent, an accepted one is a 409; ids of another
workspace or malformed ids are 404; a merged pair is no longer shown."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.contact_merges import do_merge_contacts
from server.actions.contact_suggestions import settle_suggestions
from server.actions.contacts import do_update_contact
from server.actions.context import perform
from server.actions.inboxes import do_add_inbox_member
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from server.storage import tables as t
from tests.email.mails import mail
from tests.support import Workspace, client, fetch_all, login, seed_workspace

API = "/api/v1"


async def suggest(runtime: Runtime, ws: Workspace) -> tuple[int, int]:
    """The seeded customer (who chatted in the widget) typed an address
    in; mail from it opens a new contact in the Billing inbox, which the
    plain agent is not a member of. Returns (mail contact, suggestion)."""
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"email": "claimed@example.test"},
    )
    out = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=mail(sender="Cora Mail <claimed@example.test>"),
        source="http",
    )
    [row] = await fetch_all(runtime, sa.select(t.contact_merge_suggestions))
    assert row.candidate_id == ws.contact_id and out.conversation_id is not None
    return row.contact_id, row.id


async def join_billing(runtime: Runtime, ws: Workspace) -> None:
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )


async def listed(c: httpx.AsyncClient, contact_id: int) -> list[dict[str, Any]]:
    res = await c.get(f"{API}/contacts/{contact_id}/merge_suggestions")
    assert res.status_code == 200, res.text
    items: list[dict[str, Any]] = res.json()["items"]
    return items


async def test_both_contacts_show_the_suggestion_to_whoever_may_merge_them(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    mail_contact, suggestion_id = await suggest(runtime, ws)
    # The plain agent can't see the mail contact's conversation (Billing):
    # it may not take the suggestion up, so it is not offered it, from
    # either side, and may not dismiss it for the others.
    assert await listed(agent_client, mail_contact) == []
    assert await listed(agent_client, ws.contact_id) == []
    res = await agent_client.post(f"{API}/merge_suggestions/{suggestion_id}/dismiss")
    assert (res.status_code, res.json()["error"]["field"]) == (403, "suggestion_id"), res.text
    [as_admin] = await listed(admin_client, ws.contact_id)
    assert as_admin["other"]["conversation_count"] == 1

    await join_billing(runtime, ws)
    [from_mail] = await listed(agent_client, mail_contact)
    assert from_mail == {
        "id": suggestion_id,
        "contact_id": mail_contact,
        "candidate_id": ws.contact_id,
        "reason": "Same address, claimed@example.test: one wrote in by email from it,"
        " the other only typed it in",
        "status": "open",
        "created_at": from_mail["created_at"],
        "other": {
            "id": ws.contact_id,
            "name": "Cora Customer",
            "identities": [{"kind": "email", "value": "customer@acme.test", "verified": False}],
            "conversation_count": 1,
        },
    }
    assert from_mail["created_at"].startswith("2026-01-05T09:00:00")
    # From the other side, the other contact is the mail's.
    [from_claim] = await listed(agent_client, ws.contact_id)
    assert from_claim["id"] == suggestion_id
    assert from_claim["other"]["id"] == mail_contact
    assert from_claim["other"]["name"] == "Cora Mail"
    assert from_claim["other"]["identities"] == [
        {"kind": "email", "value": "claimed@example.test", "verified": False}
    ]
    assert from_claim["other"]["conversation_count"] == 1


async def test_dismiss_is_idempotent_and_hides_the_suggestion(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    mail_contact, suggestion_id = await suggest(runtime, ws)
    await join_billing(runtime, ws)
    for _ in range(2):
        res = await agent_client.post(f"{API}/merge_suggestions/{suggestion_id}/dismiss")
        assert res.status_code == 200, res.text
        assert res.json() == {
            "id": suggestion_id,
            "contact_id": mail_contact,
            "candidate_id": ws.contact_id,
            "reason": res.json()["reason"],
            "status": "dismissed",
            "created_at": res.json()["created_at"],
        }
    assert await listed(agent_client, mail_contact) == []
    assert await listed(agent_client, ws.contact_id) == []
    events = await fetch_all(
        runtime,
        sa.select(t.events.c.type).where(t.events.c.type == "contact.merge_suggestion_dismissed"),
    )
    assert len(events) == 1


async def test_a_merged_pair_is_not_shown_and_an_accepted_one_is_409(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    mail_contact, suggestion_id = await suggest(runtime, ws)
    res = await admin_client.post(
        f"{API}/contacts/{ws.contact_id}/merge", json={"other_id": mail_contact}
    )
    assert res.status_code == 201, res.text
    # Whether or not the merge settled it, the pair is one contact now.
    assert await listed(admin_client, ws.contact_id) == []
    assert await listed(admin_client, mail_contact) == []
    await perform(
        runtime, ws.admin, settle_suggestions, survivor_id=ws.contact_id, merged_id=mail_contact
    )
    res = await admin_client.post(f"{API}/merge_suggestions/{suggestion_id}/dismiss")
    assert res.status_code == 409, res.text
    assert res.json()["error"]["code"] == "conflict"


async def test_another_workspace_and_bad_ids_are_404(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    mail_contact, suggestion_id = await suggest(runtime, ws)
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        res = await outsider.get(f"{API}/contacts/{mail_contact}/merge_suggestions")
        assert res.status_code == 404
        res = await outsider.post(f"{API}/merge_suggestions/{suggestion_id}/dismiss")
        assert res.status_code == 404
        assert res.json()["error"]["field"] == "suggestion_id"
        # Its own contact has no suggestions of ours.
        assert await listed(outsider, other.contact_id) == []
    for bad in ("0", "-1", "abc", "99999999999999999999999", str(suggestion_id + 1000)):
        res = await admin_client.post(f"{API}/merge_suggestions/{bad}/dismiss")
        assert res.status_code == 404, (bad, res.text)
        assert res.json()["error"]["code"] == "not_found"
        res = await admin_client.get(f"{API}/contacts/{bad}/merge_suggestions")
        assert res.status_code == 404, (bad, res.text)
    res = await admin_client.get(
        f"{API}/contacts/{mail_contact}/merge_suggestions", params={"status": "open"}
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "status"
    async with client(runtime) as anonymous:
        res = await anonymous.get(f"{API}/contacts/{mail_contact}/merge_suggestions")
        assert res.status_code == 401
    [row] = await fetch_all(runtime, sa.select(t.contact_merge_suggestions))
    assert row.status == "open"


async def test_only_open_pairs_of_live_contacts_are_listed(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    """A third contact merged away takes its suggestion out of the list
    of the contact it was suggested with."""
    mail_contact, _ = await suggest(runtime, ws)
    keeper = (await admin_client.post(f"{API}/contacts", json={"name": "Keeper"})).json()["id"]
    await perform(runtime, ws.admin, do_merge_contacts, contact_id=keeper, other_id=mail_contact)
    assert await listed(admin_client, ws.contact_id) == []
