"""REST: promo code pools — created by admins, filled from a CSV (a bad
line named) or generated (100k unique codes in one call), counted by
state, and redeemed once: by the shop's API (a second time is a 409) or
by a tracked `order_placed` that carries the code."""

from __future__ import annotations

import time
from typing import Any

import httpx
import sqlalchemy as sa

from server.runtime import Runtime
from server.storage import tables as t
from tests.support import (
    T0,
    Workspace,
    client,
    events_since,
    fetch_all,
    last_event_id,
    login,
    seed_workspace,
)
from tests.touchpoints.support import (
    cart_reminder,
    decisions_of,
    episodes_of,
    make_touchpoint,
    started,
    step,
)

API = "/api/v1"


async def made_pool(c: httpx.AsyncClient, name: str = "Birthday", **fields: Any) -> dict[str, Any]:
    res = await c.post(f"{API}/promo_pools", json={"name": name, **fields})
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


async def add(c: httpx.AsyncClient, pool_id: int, body: dict[str, Any]) -> httpx.Response:
    return await c.post(f"{API}/promo_pools/{pool_id}/codes", json=body)


async def test_pools_are_created_by_admins_and_listed_with_counts(
    admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    pool = await made_pool(admin_client, " Birthday ", valid_days=30, low_stock=5)
    assert pool == {
        "id": pool["id"],
        "name": "Birthday",
        "valid_days": 30,
        "low_stock": 5,
        "free": 0,
        "issued": 0,
        "redeemed": 0,
        "created_at": T0.isoformat(),
    }
    res = await agent_client.post(f"{API}/promo_pools", json={"name": "Mine"})
    assert res.status_code == 403
    res = await admin_client.post(f"{API}/promo_pools", json={"name": "Birthday"})
    assert res.status_code == 409 and res.json()["error"]["field"] == "name"
    res = await admin_client.post(f"{API}/promo_pools", json={"name": "X", "valid_days": 0})
    assert res.status_code == 422 and res.json()["error"]["field"] == "valid_days"
    added = await add(
        admin_client, pool["id"], {"csv": "code,note\nSPRING-AAA1,first\nspring-aaa2\n"}
    )
    assert added.status_code == 200, added.text
    assert added.json() == {"added": 2, "free": 2}
    assert (await add(agent_client, pool["id"], {"csv": "SPRING-AAA3"})).status_code == 403
    listed = (await agent_client.get(f"{API}/promo_pools")).json()["pools"]
    assert [(p["name"], p["free"], p["issued"], p["redeemed"]) for p in listed] == [
        ("Birthday", 2, 0, 0)
    ]


async def test_csv_uploads_skip_codes_held_and_name_a_bad_line(
    runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    first = await made_pool(admin_client, "First")
    second = await made_pool(admin_client, "Second")
    res = await add(admin_client, first["id"], {"csv": "AAAA-1111\nBBBB-2222\n"})
    assert res.json() == {"added": 2, "free": 2}
    # Overlapping files, into the same pool or another: no code twice.
    res = await add(admin_client, first["id"], {"csv": "BBBB-2222\nCCCC-3333\n"})
    assert res.json() == {"added": 1, "free": 3}
    res = await add(admin_client, second["id"], {"csv": "aaaa-1111\nDDDD-4444\n"})
    assert res.json() == {"added": 1, "free": 1}
    res = await add(admin_client, second["id"], {"csv": "EEEE-5555\nFFFF-6666\nbad code!\n"})
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert error["field"].startswith("csv") and "3" in error["message"], error
    codes = await fetch_all(runtime, sa.select(t.promo_codes.c.code).order_by(t.promo_codes.c.code))
    assert [r.code for r in codes] == ["AAAA-1111", "BBBB-2222", "CCCC-3333", "DDDD-4444"]
    res = await add(admin_client, second["id"], {"generate": {"prefix": "ÉTÉ", "count": 2}})
    assert res.status_code == 422 and res.json()["error"]["field"] == "generate.prefix"
    res = await add(admin_client, second["id"], {"generate": {"count": 2, "length": 3}})
    assert res.status_code == 422 and res.json()["error"]["field"] == "generate.length"
    res = await add(admin_client, second["id"], {})
    assert res.status_code == 422 and res.json()["error"]["field"] == "body"
    res = await add(admin_client, 10**12, {"csv": "GGGG-7777"})
    assert res.status_code == 404


async def test_a_hundred_thousand_generated_codes_are_unique(
    runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    pool = await made_pool(admin_client, "Bulk")
    started = time.monotonic()
    res = await add(
        admin_client, pool["id"], {"generate": {"prefix": "XMAS-", "count": 100_000, "length": 8}}
    )
    elapsed = time.monotonic() - started
    assert res.status_code == 200, res.text
    assert res.json() == {"added": 100_000, "free": 100_000}
    c = t.promo_codes.c
    [codes] = await fetch_all(
        runtime, sa.select(sa.func.count().label("n")).select_from(t.promo_codes)
    )
    [distinct] = await fetch_all(runtime, sa.select(sa.func.count(sa.distinct(c.code)).label("n")))
    assert (codes.n, distinct.n) == (100_000, 100_000)
    [sample] = await fetch_all(runtime, sa.select(c.code).limit(1))
    assert sample.code.startswith("XMAS-") and len(sample.code) == len("XMAS-") + 8
    # Batched inserts: seconds, not minutes (generous for a shared machine).
    assert elapsed < 60, elapsed


async def test_redeemed_once_by_the_api(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    pool = await made_pool(admin_client, "Welcome")
    await add(admin_client, pool["id"], {"csv": "WELCOME-AB12\nWELCOME-CD34"})
    before = await last_event_id(runtime)
    res = await admin_client.post(
        f"{API}/promo_codes/redeem",
        json={"code": " welcome-ab12 ", "contact_id": ws.contact_id, "order_id": "o-9"},
    )
    assert res.status_code == 200, res.text
    assert res.json() == {"code": "WELCOME-AB12", "state": "redeemed", "decision_id": None}
    [(kind, event)] = await events_since(runtime, before)
    assert kind == "promo_code.redeemed" and event["contact_id"] == ws.contact_id
    again = await admin_client.post(f"{API}/promo_codes/redeem", json={"code": "WELCOME-AB12"})
    assert again.status_code == 409 and again.json()["error"]["field"] == "code"
    unknown = await admin_client.post(f"{API}/promo_codes/redeem", json={"code": "NOPE-0000"})
    assert unknown.status_code == 404
    [row] = await fetch_all(
        runtime, sa.select(t.promo_codes).where(t.promo_codes.c.code == "WELCOME-AB12")
    )
    assert (row.state, row.redeemed_at, row.contact_id) == ("redeemed", T0, ws.contact_id)
    listed = (await admin_client.get(f"{API}/promo_pools")).json()["pools"]
    assert [(p["free"], p["redeemed"]) for p in listed] == [(1, 1)]
    # Another workspace neither finds the code nor sees the pool.
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        res = await outsider.post(f"{API}/promo_codes/redeem", json={"code": "WELCOME-CD34"})
        assert res.status_code == 404
        assert (await outsider.get(f"{API}/promo_pools")).json() == {"pools": []}
        res = await add(outsider, pool["id"], {"csv": "OTHER-0001"})
        assert res.status_code == 404


async def test_redeemed_once_by_the_code_in_the_path(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    pool = await made_pool(admin_client, "Welcome")
    await add(admin_client, pool["id"], {"csv": "WELCOME-AB12\nWELCOME-CD34"})
    url = f"{API}/promo_codes/welcome-ab12/redeem"
    # No body at all is fine: the shop may know only the code.
    res = await admin_client.post(url)
    assert res.status_code == 200, res.text
    assert res.json() == {"code": "WELCOME-AB12", "state": "redeemed", "decision_id": None}
    again = await admin_client.post(url, json={"contact_id": ws.contact_id})
    assert again.status_code == 409 and again.json()["error"]["field"] == "code"
    for unknown in ("NOPE-0000", "semi%3Bcolon", "x" * 65):
        res = await admin_client.post(f"{API}/promo_codes/{unknown}/redeem")
        assert res.status_code == 404, unknown
        assert res.json()["error"]["field"] == "code", unknown
    res = await admin_client.post(
        f"{API}/promo_codes/WELCOME-CD34/redeem", json={"contact_id": "seven"}
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "contact_id"
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        res = await outsider.post(f"{API}/promo_codes/WELCOME-CD34/redeem")
        assert res.status_code == 404
    [row] = await fetch_all(
        runtime, sa.select(t.promo_codes).where(t.promo_codes.c.code == "WELCOME-CD34")
    )
    assert row.state == "free"


async def test_a_tracked_order_with_the_code_redeems_it(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    pool = await made_pool(admin_client, "Cart")
    await add(admin_client, pool["id"], {"csv": "CART-ZZ99"})
    url = f"{API}/contacts/{ws.contact_id}/events"
    res = await admin_client.post(
        url, json={"name": "order_placed", "properties": {"promo_code": "cart-zz99"}}
    )
    assert res.status_code == 201, res.text
    [row] = await fetch_all(runtime, sa.select(t.promo_codes))
    assert (row.state, row.contact_id) == ("redeemed", ws.contact_id)
    # Used again (or unknown): the order is still recorded, nothing else.
    for code in ("CART-ZZ99", "NOT-A-CODE", "!!"):
        res = await admin_client.post(
            url, json={"name": "order_placed", "properties": {"promo_code": code}}
        )
        assert res.status_code == 201, res.text
    assert len(await fetch_all(runtime, sa.select(t.contact_events))) == 4


async def test_redeeming_a_code_is_the_goal_of_the_decision_that_issued_it(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    touchpoint_id = await make_touchpoint(
        runtime, ws, cart_reminder(steps=[step("1h"), step("1d")])
    )
    episode_id = await started(runtime, ws, touchpoint_id, {"cart_id": "c-1"})
    [decision] = await decisions_of(runtime, touchpoint_id)
    pool = await made_pool(admin_client, "Cart")
    await add(admin_client, pool["id"], {"csv": "CART-GOAL1"})
    # Issued to the decision, as the claim reserves it (fix/claims' reserve_code).
    async with runtime.db.write() as conn:
        await conn.execute(
            t.promo_codes.update().values(
                state="issued", decision_id=decision.id, contact_id=ws.contact_id, issued_at=T0
            )
        )
    res = await admin_client.post(f"{API}/promo_codes/redeem", json={"code": "cart-goal1"})
    assert res.status_code == 200, res.text
    assert res.json() == {"code": "CART-GOAL1", "state": "redeemed", "decision_id": decision.id}
    [episode] = await episodes_of(runtime, touchpoint_id)
    assert (episode.id, episode.state, episode.end_reason) == (
        episode_id,
        "goal",
        "promo code redeemed",
    )
    [after] = await decisions_of(runtime, touchpoint_id)
    assert (after.state, after.reason) == ("cancelled", "promo code redeemed")
