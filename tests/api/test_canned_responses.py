"""REST: canned responses — CRUD, search by shortcut prefix and text within
what the caller may read, the preview, sending one as a message, files a
response holds, and refusals that name the field (the template's position
included) and write nothing."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.agents import do_create_agent
from server.actions.context import perform
from server.actions.teams import do_add_team_member, do_create_team
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import PASSWORD, T0, Workspace, client, last_event_id, login

API = "/api/v1"
C = f"{API}/canned_responses"
PDF = b"%PDF-1.7\nprice list"


async def created(c: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"scope": "workspace", "shortcut": "hello", "title": "Hello", "body": "Hello!", **fields}
    res = await c.post(C, json=body)
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


def assert_error(res: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert res.status_code == status, res.text
    error: dict[str, Any] = res.json()["error"]
    assert error["field"] == field, error
    return error


async def written(runtime: Runtime) -> tuple[int, int]:
    async with runtime.db.read() as conn:
        rows = await conn.scalar(sa.select(sa.func.count()).select_from(t.canned_responses))
    return int(rows or 0), await last_event_id(runtime)


async def shortcuts(c: httpx.AsyncClient, **params: Any) -> list[str]:
    res = await c.get(C, params=params)
    assert res.status_code == 200, res.text
    return [item["shortcut"] for item in res.json()["items"]]


async def test_create_get_update_delete(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    item = await created(
        admin_client,
        shortcut="/Refund",
        title="Refunds",
        body='Hi {{contact.first_name|default("there")}}, refunds take 5 days.',
    )
    assert item == {
        "id": item["id"],
        "scope": "workspace",
        "team_id": None,
        "inbox_id": None,
        "agent_id": None,
        "shortcut": "refund",
        "title": "Refunds",
        "body": 'Hi {{contact.first_name|default("there")}}, refunds take 5 days.',
        "attachments": [],
        "usage_count": 0,
        "created_by": ws.admin_id,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    one = f"{C}/{item['id']}"
    assert (await admin_client.get(one)).json() == item
    res = await admin_client.patch(one, json={"title": "Refund policy", "shortcut": "refunds"})
    assert res.status_code == 200, res.text
    assert (res.json()["title"], res.json()["shortcut"]) == ("Refund policy", "refunds")
    assert_error(await admin_client.patch(one, json={}), 422, "body")
    res = await admin_client.delete(one)
    assert (res.status_code, res.json()) == (200, {"deleted": True})
    assert_error(await admin_client.get(one), 404, None)
    assert_error(await admin_client.delete(one), 404, None)


async def test_a_bad_template_names_body_and_where(
    runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    before = await written(runtime)
    res = await admin_client.post(
        C,
        json={
            "scope": "workspace",
            "shortcut": "x",
            "title": "X",
            "body": "Dear customer,\nyour {{contact.__class__}} is ready",
        },
    )
    error = assert_error(res, 422, "body")
    assert error["message"].startswith("body: line 2, column 8: unknown variable")
    assert "contact.first_name" in error["message"]  # the allowed ones are listed
    res = await admin_client.post(
        C, json={"scope": "workspace", "shortcut": "x", "title": "X", "body": "Hi {{agent.name"}
    )
    assert "line 1, column 4: tag not closed" in assert_error(res, 422, "body")["message"]
    assert await written(runtime) == before


async def test_agents_permissions_over_http(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 1")
    workspace = await created(admin_client, shortcut="w")
    before = await written(runtime)
    assert_error(await agent_client.post(C, json={**_fields("a"), "scope": "workspace"}), 403, None)
    res = await agent_client.post(C, json={**_fields("a"), "scope": "team", "team_id": team_id})
    assert_error(res, 403, "team_id")
    res = await agent_client.post(
        C, json={**_fields("a"), "scope": "inbox", "inbox_id": ws.other_inbox_id}
    )
    assert_error(res, 404, None)
    assert_error(await agent_client.patch(f"{C}/{workspace['id']}", json={"title": "X"}), 403, None)
    assert_error(await agent_client.delete(f"{C}/{workspace['id']}"), 403, None)
    assert await written(runtime) == before
    # ...but it may read and use it, and keep personal and inbox ones.
    assert (await agent_client.get(f"{C}/{workspace['id']}")).status_code == 200
    mine = await created(agent_client, scope="personal", shortcut="mine")
    assert mine["agent_id"] == ws.agent_id
    assert_error(await admin_client.get(f"{C}/{mine['id']}"), 404, None)
    inbox = await created(agent_client, scope="inbox", inbox_id=ws.inbox_id, shortcut="site")
    assert (await agent_client.delete(f"{C}/{inbox['id']}")).status_code == 200


def _fields(shortcut: str) -> dict[str, Any]:
    return {"shortcut": shortcut, "title": "T", "body": "B"}


async def test_search_by_prefix_then_text_within_what_the_caller_may_read(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team_in = await perform(runtime, ws.admin, do_create_team, name="In")
    team_out = await perform(runtime, ws.admin, do_create_team, name="Out")
    await perform(runtime, ws.admin, do_add_team_member, team_id=team_in, agent_id=ws.agent_id)
    await created(admin_client, shortcut="refund", title="Refund", body="Money back")
    await created(admin_client, shortcut="apology", title="Sorry", body="We will REFUND you")
    await created(admin_client, shortcut="shipping", title="Shipping", body="Parcels")
    await created(admin_client, shortcut="ref-team", scope="team", team_id=team_in)
    await created(admin_client, shortcut="ref-other-team", scope="team", team_id=team_out)
    await created(admin_client, shortcut="ref-site", scope="inbox", inbox_id=ws.inbox_id)
    await created(admin_client, shortcut="ref-billing", scope="inbox", inbox_id=ws.other_inbox_id)
    await created(admin_client, shortcut="ref-admin-own", scope="personal")
    await created(agent_client, shortcut="ref-agent-own", scope="personal", title="Refund steps")

    # Prefix matches first (by shortcut), then text matches (case-insensitive).
    assert await shortcuts(agent_client, q="/REF") == [
        "ref-agent-own",
        "ref-site",
        "ref-team",
        "refund",
        "apology",
    ]
    assert await shortcuts(admin_client, q="ref") == [
        "ref-admin-own",
        "ref-billing",
        "ref-other-team",
        "ref-site",
        "ref-team",
        "refund",
        "apology",
    ]
    assert await shortcuts(agent_client, q="parcel") == ["shipping"]
    assert await shortcuts(agent_client, q="nothing like it") == []
    # LIKE wildcards in a search are plain characters.
    assert await shortcuts(agent_client, q="%") == []
    assert await shortcuts(agent_client, q="ref_") == []
    assert await shortcuts(agent_client) == [
        "apology",
        "ref-agent-own",
        "ref-site",
        "ref-team",
        "refund",
        "shipping",
    ]
    assert await shortcuts(agent_client, scope="personal") == ["ref-agent-own"]
    assert await shortcuts(admin_client, q="ref", inbox_id=str(ws.inbox_id), scope="inbox") == [
        "ref-site"
    ]

    # Pages: stable keyset cursors over the same order.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"q": "ref", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await admin_client.get(C, params=params)).json()
        seen += [item["shortcut"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == await shortcuts(admin_client, q="ref")
    assert_error(await admin_client.get(C, params={"cursor": "garbage"}), 422, "cursor")


async def test_preview_and_send_with_a_response(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    res = await admin_client.post(
        f"{API}/inboxes/{ws.inbox_id}/attachments",
        params={"filename": "prices.pdf"},
        content=PDF,
        headers={"content-type": "application/pdf"},
    )
    assert res.status_code == 201, res.text
    file = res.json()["attachment"]
    item = await created(
        admin_client,
        shortcut="prices",
        body="Hi {{contact.first_name}}, {{agent.first_name}} here: prices attached.",
        attachment_ids=[file["id"]],
    )
    assert item["attachments"] == [file]
    # Whoever can read the response can download its file.
    download = await agent_client.get(f"{API}/attachments/{file['id']}")
    assert (download.status_code, download.content) == (200, PDF)

    preview = await agent_client.post(
        f"{C}/{item['id']}/preview", json={"conversation_id": ws.conversation_id}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json() == {
        "canned_response_id": item["id"],
        "conversation_id": ws.conversation_id,
        "text": "Hi Cora, Gus here: prices attached.",
        "attachments": [file],
    }

    sent = await agent_client.post(
        f"{API}/conversations/{ws.conversation_id}/messages",
        json={"canned_response_id": item["id"]},
    )
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert message["text"] == "Hi Cora, Gus here: prices attached."
    [copy] = message["attachments"]
    assert copy["id"] != file["id"] and copy["filename"] == "prices.pdf"
    assert (await agent_client.get(f"{API}/attachments/{copy['id']}")).content == PDF

    edited = await agent_client.post(
        f"{API}/conversations/{ws.conversation_id}/messages",
        json={"canned_response_id": item["id"], "text": "Edited before sending", "private": True},
    )
    assert edited.status_code == 201, edited.text
    assert (edited.json()["text"], edited.json()["private"]) == ("Edited before sending", True)
    assert (await agent_client.get(f"{C}/{item['id']}")).json()["usage_count"] == 2

    res = await agent_client.post(
        f"{API}/conversations/{ws.conversation_id}/messages", json={"canned_response_id": 10**9}
    )
    assert_error(res, 404, None)


async def test_an_agent_outside_the_conversation_gets_404_on_preview(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    item = await created(admin_client, shortcut="hi")
    bo = await perform(
        runtime, ws.system, do_create_agent, email="bo@acme.test", name="Bo", password=PASSWORD
    )
    assert bo
    async with client(runtime) as c:
        await login(c, "bo@acme.test")
        assert (await c.get(f"{C}/{item['id']}")).status_code == 200  # a workspace response
        res = await c.post(
            f"{C}/{item['id']}/preview", json={"conversation_id": ws.conversation_id}
        )
        assert_error(res, 404, None)
        res = await c.post(
            f"{API}/conversations/{ws.conversation_id}/messages",
            json={"canned_response_id": item["id"]},
        )
        assert_error(res, 404, None)
    assert (await admin_client.get(f"{C}/{item['id']}")).json()["usage_count"] == 0
