"""REST: the contact merge preview, merging and undoing contacts,
merging conversations, and the audit log — shapes, who may do what, and
refusals naming the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from server.actions.agents import do_create_agent
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversations import do_create_conversation
from server.actions.inboxes import do_add_inbox_member
from server.actions.messages import do_receive_message
from server.clock import FrozenClock
from server.domain.merges import UNDO_WINDOW
from server.domain.values import IdentityKind
from server.runtime import Runtime
from tests.support import PASSWORD, T0, Workspace, client, last_event_id, login, seed_workspace

API = "/api/v1"


def ok(res: httpx.Response, status: int = 200) -> Any:
    assert res.status_code == status, res.text
    return res.json()


def error(res: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert res.status_code == status, res.text
    body: dict[str, Any] = res.json()["error"]
    assert body["field"] == field, body
    return body


async def duplicate(
    runtime: Runtime, ws: Workspace, c: httpx.AsyncClient, *, reach: bool = True
) -> dict[str, Any]:
    """Cora's second record: an identity, attributes (one conflicting), a
    conversation in the inbox the plain agent is a member of and one in
    `other_inbox`. With `reach` the plain agent joins `other_inbox`, as
    merging takes every conversation of both contacts."""
    if reach:
        await perform(
            runtime,
            ws.system,
            do_add_inbox_member,
            inbox_id=ws.other_inbox_id,
            agent_id=ws.agent_id,
        )
    created: dict[str, Any] = ok(
        await c.post(
            f"{API}/contacts",
            json={
                "name": "Cora P.",
                "attributes": {"plan": "free", "city": "Lyon"},
                "identities": [{"kind": "email", "value": "cora.p@mail.test"}],
            },
        ),
        201,
    )
    for inbox_id in (ws.inbox_id, ws.other_inbox_id):
        await perform(
            runtime,
            ws.system,
            do_receive_message,
            inbox_id=inbox_id,
            identity=IdentityInput(IdentityKind.EMAIL, "cora.p@mail.test"),
            name="Cora P.",
            text="hello again",
        )
    ok(await c.patch(f"{API}/contacts/{ws.contact_id}", json={"attributes": {"plan": "pro"}}))
    return created


async def test_preview_shows_what_would_move(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    dup = await duplicate(runtime, ws, admin_client, reach=False)
    url = f"{API}/contacts/{ws.contact_id}/merge_preview"
    # The agent can't see the duplicate's email conversation: it may not
    # merge it, so it gets no preview either.
    refused = error(await agent_client.get(url, params={"other_id": dup["id"]}), 403, "other_id")
    assert refused["code"] == "forbidden"
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    before = await last_event_id(runtime)
    preview = ok(await agent_client.get(url, params={"other_id": dup["id"]}))
    assert preview["survivor"]["id"] == ws.contact_id
    assert preview["merged"]["id"] == dup["id"]
    shown = preview["conversations"]
    assert [(c["inbox_id"], c["status"]) for c in shown] == [
        (ws.other_inbox_id, "open"),
        (ws.inbox_id, "open"),
    ]
    assert shown[1]["inbox_name"] == "Website"
    assert preview["hidden_conversations"] == 0
    assert preview["identities"] == [
        {"kind": "email", "value": "cora.p@mail.test", "verified": False}
    ]
    assert (preview["attributes_added"], preview["attributes_conflicting"]) == (["city"], ["plan"])
    assert (preview["tracked_events"], preview["visitor_sessions"]) == (0, 0)
    admin_view = ok(await admin_client.get(url, params={"other_id": dup["id"]}))
    assert (len(admin_view["conversations"]), admin_view["hidden_conversations"]) == (2, 0)
    assert await last_event_id(runtime) == before  # a preview changes nothing

    error(await agent_client.get(url, params={"other_id": ws.contact_id}), 422, "other_id")
    error(await agent_client.get(url, params={"other_id": 10**9}), 404, "other_id")
    error(await agent_client.get(url), 422, "other_id")
    error(await agent_client.get(url, params={"other_id": "me"}), 422, "other_id")


async def test_merge_then_undo(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    dup = await duplicate(runtime, ws, admin_client)
    merge = ok(
        await agent_client.post(
            f"{API}/contacts/{ws.contact_id}/merge", json={"other_id": dup["id"]}
        ),
        201,
    )
    assert merge["survivor"]["id"] == ws.contact_id
    assert merge["survivor"]["attributes"] == {"plan": "pro", "city": "Lyon"}
    assert {i["value"] for i in merge["survivor"]["identities"]} == {
        "customer@acme.test",
        "cora.p@mail.test",
    }
    assert (merge["merged"]["id"], merge["merged"]["merged_into_id"]) == (dup["id"], ws.contact_id)
    assert merge["moved"] == {
        "conversations": 2,
        "messages": 2,
        "identities": 1,
        "tracked_events": 0,
        "visitor_sessions": 0,
        "attributes_added": ["city"],
    }
    assert (merge["merged_by"], merge["created_at"], merge["undo_until"], merge["undone_at"]) == (
        ws.agent_id,
        T0.isoformat(),
        (T0 + UNDO_WINDOW).isoformat(),
        None,
    )

    # The merged contact is out of lists but still answers (pointing on);
    # its identity now finds the survivor.
    listed = ok(await agent_client.get(f"{API}/contacts"))
    assert dup["id"] not in {c["id"] for c in listed["items"]}
    gone = ok(await agent_client.get(f"{API}/contacts/{dup['id']}"))
    assert gone["merged_into_id"] == ws.contact_id
    found = ok(
        await agent_client.get(
            f"{API}/contacts",
            params={"identity_kind": "email", "identity_value": "Cora.P@mail.test"},
        )
    )
    assert [c["id"] for c in found["items"]] == [ws.contact_id]
    survivor = ok(await agent_client.get(f"{API}/contacts/{ws.contact_id}"))
    assert survivor["merged_into_id"] is None

    # Merging it again, or into it, is refused by field.
    error(
        await agent_client.post(
            f"{API}/contacts/{ws.contact_id}/merge", json={"other_id": dup["id"]}
        ),
        422,
        "other_id",
    )
    error(
        await agent_client.post(
            f"{API}/contacts/{dup['id']}/merge", json={"other_id": ws.contact_id}
        ),
        422,
        "contact_id",
    )

    undone = ok(await agent_client.post(f"{API}/contact_merges/{merge['id']}/undo"))
    assert undone["undone_at"] == T0.isoformat()
    assert undone["merged"]["merged_into_id"] is None
    assert undone["survivor"]["attributes"] == {"plan": "pro"}
    assert [i["value"] for i in undone["merged"]["identities"]] == ["cora.p@mail.test"]
    listed = ok(await agent_client.get(f"{API}/contacts"))
    assert dup["id"] in {c["id"] for c in listed["items"]}
    again = error(await agent_client.post(f"{API}/contact_merges/{merge['id']}/undo"), 409, None)
    assert again["code"] == "conflict" and "already undone" in again["message"]


async def test_who_may_undo_and_until_when(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    dup = await duplicate(runtime, ws, admin_client)
    merge = ok(
        await agent_client.post(
            f"{API}/contacts/{ws.contact_id}/merge", json={"other_id": dup["id"]}
        ),
        201,
    )
    undo = f"{API}/contact_merges/{merge['id']}/undo"
    await perform(
        runtime, ws.system, do_create_agent, email="bo@acme.test", name="Bo", password=PASSWORD
    )
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as bo, client(runtime) as outsider:
        await login(bo, "bo@acme.test")
        await login(outsider, other.admin_email)
        assert error(await bo.post(undo), 403, None)["code"] == "forbidden"
        error(await outsider.post(undo), 404, None)
        error(
            await outsider.post(
                f"{API}/contacts/{other.contact_id}/merge", json={"other_id": dup["id"]}
            ),
            404,
            "other_id",
        )
    error(await agent_client.post(f"{API}/contact_merges/{10**9}/undo"), 404, None)
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(seconds=UNDO_WINDOW.total_seconds() + 1)
    late = error(await agent_client.post(undo), 409, None)
    assert "24 hours" in late["message"]


async def test_merge_conversations(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    source = await perform(
        runtime, ws.admin, do_create_conversation, inbox_id=ws.inbox_id, contact_id=ws.contact_id
    )
    hidden = await perform(
        runtime,
        ws.admin,
        do_create_conversation,
        inbox_id=ws.other_inbox_id,
        contact_id=ws.contact_id,
    )
    ok(
        await agent_client.post(
            f"{API}/conversations/{source}/messages", json={"text": "from the duplicate"}
        ),
        201,
    )
    url = f"{API}/conversations/{ws.conversation_id}/merge"
    error(await agent_client.post(url, json={"source_id": hidden}), 404, "source_id")
    error(await agent_client.post(url, json={"source_id": ws.conversation_id}), 422, "source_id")
    error(await agent_client.post(url, json={}), 422, "source_id")
    merged = ok(await agent_client.post(url, json={"source_id": source}))
    assert (merged["source_id"], merged["moved_messages"]) == (source, 1)
    assert merged["conversation"]["id"] == ws.conversation_id
    assert merged["conversation"]["last_seq"] == 2
    messages = ok(await agent_client.get(f"{API}/conversations/{ws.conversation_id}/messages"))
    assert [(m["seq"], m["text"]) for m in messages["items"]] == [
        (1, "Hello, my order is late"),
        (2, "from the duplicate"),
    ]
    gone = ok(await agent_client.get(f"{API}/conversations/{source}"))
    assert (gone["status"], gone["merged_into_id"]) == ("resolved", ws.conversation_id)
    error(await agent_client.post(url, json={"source_id": source}), 422, "source_id")


async def test_audit_log_is_for_admins_newest_first(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    dup = await duplicate(runtime, ws, admin_client)
    merge = ok(
        await agent_client.post(
            f"{API}/contacts/{ws.contact_id}/merge", json={"other_id": dup["id"]}
        ),
        201,
    )
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(minutes=1)
    ok(await admin_client.post(f"{API}/contact_merges/{merge['id']}/undo"))
    source = await perform(
        runtime, ws.admin, do_create_conversation, inbox_id=ws.inbox_id, contact_id=ws.contact_id
    )
    ok(
        await admin_client.post(
            f"{API}/conversations/{ws.conversation_id}/merge", json={"source_id": source}
        )
    )

    assert error(await agent_client.get(f"{API}/audit_log"), 403, None)["code"] == "forbidden"
    log = ok(await admin_client.get(f"{API}/audit_log"))
    assert [(e["action"], e["subject_kind"], e["subject_id"]) for e in log["items"]] == [
        ("conversation.merged", "conversation", ws.conversation_id),
        ("contact.merge_undone", "contact", ws.contact_id),
        ("contact.merged", "contact", ws.contact_id),
    ]
    newest, _, oldest = log["items"]
    assert (newest["actor_kind"], newest["actor_id"]) == ("agent", ws.admin_id)
    assert newest["created_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert (oldest["actor_id"], oldest["details"]["merge_id"]) == (ws.agent_id, merge["id"])

    # One page at a time.
    first = ok(await admin_client.get(f"{API}/audit_log", params={"limit": 2}))
    rest = ok(
        await admin_client.get(
            f"{API}/audit_log", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    )
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in log["items"]]
    assert rest["next_cursor"] is None
    # Filtered by subject.
    contacts = ok(
        await admin_client.get(
            f"{API}/audit_log", params={"subject_kind": "contact", "subject_id": ws.contact_id}
        )
    )
    assert [e["action"] for e in contacts["items"]] == ["contact.merge_undone", "contact.merged"]
    other = ok(await admin_client.get(f"{API}/audit_log", params={"subject_id": dup["id"]}))
    assert other["items"] == []
    error(await admin_client.get(f"{API}/audit_log", params={"cursor": "junk"}), 422, "cursor")
