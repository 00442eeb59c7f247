"""REST: touchpoints as API.md has them — the list with counts, the
editor's create / read / replace / status with every template checked,
previews with a contact's latest data, seeds installed as drafts,
decisions listed and settled, a contact's touches and the workspace's
touchpoint settings; refusals name the field, non-admin writes are 403,
another workspace finds nothing."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.visitors import do_track_contact_event
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, client, fetch_all, login, seed_workspace
from tests.touchpoints.support import cart_reminder, decisions_of, make_touchpoint, start, step

API = "/api/v1"
TP = f"{API}/touchpoints"


async def created(c: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    res = await c.post(TP, json=body)
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


def assert_error(res: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert res.status_code == status, res.text
    error: dict[str, Any] = res.json()["error"]
    assert error["field"] == field, error
    return error


async def test_create_read_replace_and_switch_a_touchpoint(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    made = await created(admin_client, cart_reminder(description="Carts left behind"))
    assert {k: made[k] for k in ("name", "description", "kind", "status", "version", "seed")} == {
        "name": "Abandoned cart",
        "description": "Carts left behind",
        "kind": "marketing",
        "status": "draft",
        "version": 1,
        "seed": None,
    }
    assert made["trigger"] == {"kind": "contact_event", "name": "cart_updated"}
    assert made["episode_key"] == "cart:{cart_id}"
    assert made["counts"] == {
        "scheduled": 0,
        "deferred": 0,
        "sending": 0,
        "sent": 0,
        "unknown": 0,
        "skipped": 0,
        "cancelled": 0,
        "expired": 0,
        "failed": 0,
    }
    assert made["skipped_by_reason"] == {}
    assert [s["position"] for s in made["steps"]] == [0]
    assert made["updated_at"] == T0.isoformat()
    for key in ("exit_rules", "goal", "reentry", "cooldown", "priority", "holdout_percent"):
        assert key in made, key
    assert {"max_lateness", "quiet_hours", "entry_segment_id", "inbox_id"} <= set(made)

    one = f"{TP}/{made['id']}"
    assert (await agent_client.get(one)).json() == made
    # The detail goes back as a PUT as it is, and makes a new version.
    sent_back = {
        k: made[k]
        for k in made
        if k not in ("id", "status", "version", "seed", "updated_at", "counts", "skipped_by_reason")
    }
    sent_back["steps"] = [*sent_back["steps"], step("1d")]
    replaced = await admin_client.put(one, json=sent_back)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2 and len(replaced.json()["steps"]) == 2

    live = await admin_client.post(f"{one}/status", json={"status": "live"})
    assert live.status_code == 200 and live.json()["status"] == "live"
    listed = (await agent_client.get(TP)).json()["touchpoints"]
    assert [(x["id"], x["status"], x["version"]) for x in listed] == [(made["id"], "live", 2)]

    # Created live in one call.
    other = await created(admin_client, cart_reminder(name="Second", status="live"))
    assert other["status"] == "live"


async def test_refusals_name_the_field_and_writes_are_admins(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    broken = cart_reminder(
        steps=[
            {
                "variants": [
                    {"subject": "Fine", "body": "Hi"},
                    {"subject": "Also fine", "body": "Line one\n{% if contact.name %}\nno end"},
                ]
            }
        ]
    )
    error = assert_error(await admin_client.post(TP, json=broken), 422, "steps[0].variants[1].body")
    assert "line" in error["message"], error
    res = await admin_client.post(TP, json=cart_reminder(trigger={"kind": "nonsense"}))
    assert_error(res, 422, "trigger.kind")
    res = await admin_client.post(TP, json=cart_reminder(steps=[]))
    assert_error(res, 422, "steps")
    res = await admin_client.post(TP, json=cart_reminder(cooldown=[1]))
    assert_error(res, 422, "cooldown")
    res = await admin_client.post(TP, json=cart_reminder(status="sometimes"))
    assert_error(res, 422, "status")
    assert (await agent_client.post(TP, json=cart_reminder())).status_code == 403
    made = await created(admin_client, cart_reminder())
    assert_error(await admin_client.post(TP, json=cart_reminder()), 409, "name")
    one = f"{TP}/{made['id']}"
    assert (await agent_client.put(one, json=cart_reminder(name="X"))).status_code == 403
    res = await agent_client.post(f"{one}/status", json={"status": "live"})
    assert res.status_code == 403
    assert_error(await admin_client.put(one, json=broken), 422, "steps[0].variants[1].body")
    assert (await admin_client.get(one)).json()["version"] == 1

    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        assert (await outsider.get(one)).status_code == 404
        assert (await outsider.put(one, json=cart_reminder(name="Mine"))).status_code == 404
        assert (await outsider.get(TP)).json() == {"touchpoints": []}
        res = await outsider.post(f"{one}/preview", json={"contact_id": ws.contact_id})
        assert res.status_code == 404


async def test_previews_render_a_contacts_latest_cart(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    await perform(
        runtime,
        ws.system,
        do_track_contact_event,
        contact_id=ws.contact_id,
        name="cart_updated",
        properties={"cart_id": "c-1", "items": [{"name": "Blue mug", "price": 12}]},
    )
    body = "{% for item in events.cart.items %}- {{ item.name }}\n{% endfor %}"
    made = await created(
        admin_client,
        cart_reminder(
            steps=[
                {
                    "variants": [
                        {"id": "a", "subject": "Hi {{ contact.name }}", "body": "plain"},
                        {"id": "b", "subject": "Your cart", "body": body},
                    ]
                }
            ]
        ),
    )
    res = await agent_client.post(
        f"{TP}/{made['id']}/preview", json={"contact_id": ws.contact_id, "variant": "b"}
    )
    assert res.status_code == 200, res.text
    assert res.json()["subject"] == "Your cart"
    assert "Blue mug" in res.json()["text"] and "Blue mug" in res.json()["html"]
    res = await agent_client.post(
        f"{TP}/{made['id']}/preview", json={"contact_id": ws.contact_id, "variant": "z"}
    )
    assert_error(res, 422, "variant")
    res = await agent_client.post(
        f"{TP}/{made['id']}/preview", json={"contact_id": ws.contact_id, "position": 3}
    )
    assert_error(res, 422, "position")
    # The editor's preview before saving: sample data, or a real contact.
    res = await agent_client.post(f"{TP}/preview", json={"subject": "S", "body": body})
    assert res.status_code == 200 and "- " in res.json()["text"], res.text
    res = await agent_client.post(
        f"{TP}/preview", json={"contact_id": ws.contact_id, "subject": "S", "body": body}
    )
    assert "Blue mug" in res.json()["text"]
    res = await agent_client.post(f"{TP}/preview", json={"body": "{{ 1 | no_such_filter }}"})
    assert res.status_code == 422 and res.json()["error"]["field"].startswith("body"), res.text


async def test_seeds_install_as_editable_drafts_with_unique_names(
    runtime: Runtime, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    seeds = (await agent_client.get(f"{API}/touchpoint_seeds")).json()["seeds"]
    assert {"welcome", "birthday", "abandoned_cart"} <= {s["id"] for s in seeds}
    assert all(set(s) == {"id", "name", "description", "kind"} for s in seeds)
    install = f"{API}/touchpoint_seeds/install"
    first = await admin_client.post(install, json={"seed": "birthday"})
    assert first.status_code == 201, first.text
    again = await admin_client.post(install, json={"seed": "birthday"})
    assert again.status_code == 201, again.text
    a, b = first.json(), again.json()
    assert (a["status"], a["seed"]) == ("draft", "birthday")
    assert b["name"] == f"{a['name']} (2)"
    # Its promo pool was made once, and both drafts use it.
    pools = (await agent_client.get(f"{API}/promo_pools")).json()["pools"]
    assert len(pools) == 1
    assert_error(await admin_client.post(install, json={"seed": "nope"}), 404, "seed")
    assert (await agent_client.post(install, json={"seed": "welcome"})).status_code == 403


async def test_decisions_a_contacts_touches_and_settling_unknown(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    touchpoint_id = await make_touchpoint(runtime, ws, cart_reminder())
    for cart in ("c-1", "c-2", "c-3"):
        await start(runtime, ws, touchpoint_id, {"cart_id": cart})
    first, second, third = await decisions_of(runtime, touchpoint_id)
    # c-2's touch went out; c-3's may or may not have (a crash after SMTP).
    async with runtime.db.write() as conn:
        d = t.decisions.c
        await conn.execute(
            t.decisions.update().where(d.id == second.id).values(state="sent", settled_at=T0)
        )
        await conn.execute(t.decisions.update().where(d.id == third.id).values(state="unknown"))

    res = await agent_client.get(f"{API}/decisions", params={"limit": 2})
    page = res.json()
    assert [x["id"] for x in page["decisions"]] == [third.id, second.id]
    x = page["decisions"][0]
    assert (x["touchpoint_name"], x["contact_id"], x["state"], x["position"]) == (
        "Abandoned cart",
        ws.contact_id,
        "unknown",
        0,
    )
    rest = await agent_client.get(f"{API}/decisions", params={"cursor": page["next_cursor"]})
    assert [x["id"] for x in rest.json()["decisions"]] == [first.id]
    assert rest.json()["next_cursor"] is None
    unknown = await agent_client.get(f"{API}/decisions", params={"state": "unknown"})
    assert [x["id"] for x in unknown.json()["decisions"]] == [third.id]

    touches = (await agent_client.get(f"{API}/contacts/{ws.contact_id}/touchpoints")).json()
    assert [x["id"] for x in touches["upcoming"]] == [first.id]
    assert {x["id"] for x in touches["past"]} == {second.id, third.id}

    settle = f"{API}/decisions/{third.id}/settle"
    assert (await agent_client.post(settle, json={"outcome": "sent"})).status_code == 403
    res = await admin_client.post(settle, json={"outcome": "sent"})
    assert res.status_code == 200, res.text
    assert (res.json()["id"], res.json()["state"]) == (third.id, "sent")
    again = await admin_client.post(settle, json={"outcome": "sent"})
    assert again.status_code == 409
    assert_error(await admin_client.post(settle, json={"outcome": "maybe"}), 422, "outcome")
    counts = (await agent_client.get(TP)).json()["touchpoints"][0]["counts"]
    assert (counts["scheduled"], counts["sent"], counts["unknown"]) == (1, 2, 0)


async def test_touchpoint_settings(
    runtime: Runtime, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    url = f"{API}/settings/touchpoints"
    defaults = (await agent_client.get(url)).json()
    assert defaults["consent"] == "opt_out" and defaults["timezone"] == "UTC"
    assert defaults["caps"]["marketing"]
    res = await admin_client.patch(
        url,
        json={
            "timezone": "Europe/Berlin",
            "caps": {
                "marketing": [
                    {"count": 1, "window": "16h"},
                    {"count": 2, "window": "3d"},
                    {"count": 4, "window": "30d"},
                ]
            },
            "quiet_hours": {"start": "22:00", "end": "07:30"},
            "consent": "opt_in",
        },
    )
    assert res.status_code == 200, res.text
    changed = res.json()
    assert (changed["timezone"], changed["consent"]) == ("Europe/Berlin", "opt_in")
    assert changed["quiet_hours"] == {"start": "22:00", "end": "07:30"}
    assert [c["count"] for c in changed["caps"]["marketing"]] == [1, 2, 4]
    assert changed["caps"]["service"] == defaults["caps"]["service"]
    assert (await agent_client.get(url)).json() == changed
    assert_error(await admin_client.patch(url, json={"timezone": "Mars/Base"}), 422, "timezone")
    res = await admin_client.patch(url, json={"caps": {"marketing": [{"count": 0}]}})
    assert res.status_code == 422 and res.json()["error"]["field"].startswith("caps.marketing")
    assert (await agent_client.patch(url, json={"consent": "opt_out"})).status_code == 403
    assert_error(await admin_client.patch(url, json={}), 422, "body")
    # The workspace's other settings are left alone.
    [row] = await fetch_all(runtime, sa.select(t.workspaces.c.settings).limit(1))
    assert set(row.settings) >= {"touchpoints"}


async def test_the_shops_event_starts_a_live_touchpoint_once(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    touchpoint_id = await make_touchpoint(runtime, ws, cart_reminder())
    url = f"{API}/contacts/{ws.contact_id}/events"
    sent = {"name": "cart_updated", "properties": {"cart_id": "c-9"}}
    key = {"Idempotency-Key": "cart-c-9"}
    for _ in range(2):  # the shop retries: one event, one episode, one decision
        res = await admin_client.post(url, json=sent, headers=key)
        assert res.status_code == 201, res.text
    assert len(await fetch_all(runtime, sa.select(t.contact_events))) == 1
    [decision] = await decisions_of(runtime, touchpoint_id)
    assert decision.state == "scheduled"
    touches = (await admin_client.get(f"{API}/contacts/{ws.contact_id}/touchpoints")).json()
    assert [x["id"] for x in touches["upcoming"]] == [decision.id]


async def test_a_draft_preview_of_another_workspaces_contact_is_404(
    runtime: Runtime, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        res = await outsider.post(
            f"{TP}/preview", json={"contact_id": ws.contact_id, "body": "{{ contact.name }}"}
        )
        assert res.status_code == 404
