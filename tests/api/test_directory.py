"""REST: agents, teams, inboxes and API tokens — each endpoint's happy path
and main refusals, secrets shown once and never again, CSRF on cookie
writes, bad input answered with a 4xx naming the field and nothing
written, and the login rate limit."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.auth.sessions import SESSION_COOKIE
from server.clock import FrozenClock
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import PASSWORD, T0, Workspace, client, last_event_id, login

API = "/api/v1"
NEW_PASSWORD = "a different long password"


def frozen(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


def assert_error(
    res: httpx.Response, status: int, field: str | None, code: str | None = None
) -> None:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/json")
    error = res.json()["error"]
    assert error["field"] == field, error
    if code is not None:
        assert error["code"] == code, error


async def snapshot(runtime: Runtime) -> dict[str, Any]:
    """Row counts of the directory's tables and the last event id: equal
    before and after means nothing was written."""
    out: dict[str, Any] = {"last_event_id": await last_event_id(runtime)}
    async with runtime.db.read() as conn:
        for table in (
            t.agents,
            t.sessions,
            t.api_tokens,
            t.teams,
            t.team_members,
            t.inboxes,
            t.inbox_members,
        ):
            out[table.name] = await conn.scalar(sa.select(sa.func.count()).select_from(table))
        out["agent_rows"] = [tuple(r) for r in await conn.execute(sa.select(t.agents))]
    return out


async def stored_secrets(runtime: Runtime) -> list[str]:
    """Every hashed or encrypted secret in the database."""
    async with runtime.db.read() as conn:
        found = list(await conn.scalars(sa.select(t.agents.c.password_hash)))
        found += list(await conn.scalars(sa.select(t.api_tokens.c.token_hash)))
        found += list(await conn.scalars(sa.select(t.sessions.c.token_hash)))
        found += [
            s for s in await conn.scalars(sa.select(t.inboxes.c.secret_encrypted)) if s is not None
        ]
    return found


def assert_no_secrets(res: httpx.Response, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in res.text
    for key in ("password_hash", "token_hash", "secret_encrypted", "$argon2"):
        assert key not in res.text


async def create_team(c: httpx.AsyncClient, name: str = "Tier 2") -> dict[str, Any]:
    res = await c.post(f"{API}/teams", json={"name": name, "description": "Escalations"})
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


# -- agents -----------------------------------------------------------------


async def test_list_and_get_agents(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    res = await agent_client.get(f"{API}/agents")
    assert res.status_code == 200
    items = res.json()["items"]
    assert [(a["id"], a["email"], a["role"]) for a in items] == [
        (ws.admin_id, ws.admin_email, "admin"),
        (ws.agent_id, ws.agent_email, "agent"),
    ]
    assert_no_secrets(res, await stored_secrets(runtime))
    one = await agent_client.get(f"{API}/agents/{ws.admin_id}")
    assert one.status_code == 200
    assert one.json() == {
        "id": ws.admin_id,
        "email": ws.admin_email,
        "name": "Ada Admin",
        "role": "admin",
        "availability": "offline",
        "capacity": None,
        "active": True,
        "created_at": T0.isoformat(),
    }
    assert_no_secrets(one, await stored_secrets(runtime))
    # A malformed id names nothing (the wrapper says which parameter).
    for bad, field in (
        ("999999", None),
        ("0", "agent_id"),
        ("abc", "agent_id"),
        ("1.5", "agent_id"),
    ):
        assert_error(await agent_client.get(f"{API}/agents/{bad}"), 404, field, "not_found")


async def test_admin_creates_an_agent_who_can_log_in(
    runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    res = await admin_client.post(
        f"{API}/agents",
        json={
            "email": " Nina@Acme.test",
            "name": "Nina",
            "password": NEW_PASSWORD,
            "role": "admin",
            "capacity": 4,
        },
    )
    assert res.status_code == 201, res.text
    agent = res.json()
    assert {k: agent[k] for k in ("email", "name", "role", "capacity", "active")} == {
        "email": "nina@acme.test",
        "name": "Nina",
        "role": "admin",
        "capacity": 4,
        "active": True,
    }
    assert NEW_PASSWORD not in res.text
    assert_no_secrets(res, await stored_secrets(runtime))
    async with client(runtime) as nina:
        await login(nina, "nina@acme.test", NEW_PASSWORD)
        me = await nina.get(f"{API}/auth/me")
        assert me.json()["agent"]["id"] == agent["id"]
    # Defaults: the agent role, no capacity.
    res = await admin_client.post(
        f"{API}/agents", json={"email": "otto@acme.test", "name": "Otto", "password": PASSWORD}
    )
    assert res.status_code == 201
    assert (res.json()["role"], res.json()["capacity"]) == ("agent", None)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "AGENT@acme.test", "name": "Dup", "password": PASSWORD}, 409, "email"),
        ({"email": "new@acme.test", "name": "Weak", "password": "short"}, 422, "password"),
        ({"email": "not-an-email", "name": "Bad", "password": PASSWORD}, 422, "email"),
        ({"email": "new@acme.test", "name": "No password"}, 422, "password"),
        (
            {"email": "new@acme.test", "name": "R", "password": PASSWORD, "role": "owner"},
            422,
            "role",
        ),
        (
            {"email": "new@acme.test", "name": "C", "password": PASSWORD, "capacity": -1},
            422,
            "capacity",
        ),
        (
            {"email": "new@acme.test", "name": "C", "password": PASSWORD, "capacity": "3"},
            422,
            "capacity",
        ),
        ({"email": "new@acme.test", "name": "  ", "password": PASSWORD}, 422, "name"),
    ],
)
async def test_create_agent_refusals(
    runtime: Runtime,
    admin_client: httpx.AsyncClient,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    before = await snapshot(runtime)
    assert_error(await admin_client.post(f"{API}/agents", json=body), status, field)
    assert await snapshot(runtime) == before


async def test_only_admins_create_agents(runtime: Runtime, agent_client: httpx.AsyncClient) -> None:
    before = await snapshot(runtime)
    res = await agent_client.post(
        f"{API}/agents",
        json={"email": "sneaky@acme.test", "name": "S", "password": PASSWORD, "role": "admin"},
    )
    assert_error(res, 403, None, "forbidden")
    assert await snapshot(runtime) == before


async def test_admin_updates_an_agent(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    res = await admin_client.patch(
        f"{API}/agents/{ws.agent_id}",
        json={"name": "Gus B.", "role": "admin", "availability": "busy", "capacity": 7},
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert (body["name"], body["role"], body["availability"], body["capacity"]) == (
        "Gus B.",
        "admin",
        "busy",
        7,
    )
    assert_no_secrets(res, await stored_secrets(runtime))
    # null clears the capacity; leaving it out leaves it alone.
    res = await admin_client.patch(f"{API}/agents/{ws.agent_id}", json={"name": "Gus"})
    assert res.json()["capacity"] == 7
    res = await admin_client.patch(f"{API}/agents/{ws.agent_id}", json={"capacity": None})
    assert res.json()["capacity"] is None
    assert_error(await admin_client.patch(f"{API}/agents/{ws.agent_id}", json={}), 422, "body")
    assert_error(
        await admin_client.patch(f"{API}/agents/{ws.agent_id}", json={"availability": "away"}),
        422,
        "availability",
    )
    assert_error(
        await admin_client.patch(f"{API}/agents/{ws.agent_id}", json={"active": "no"}),
        422,
        "active",
    )
    # An admin can neither deactivate nor demote itself.
    assert_error(
        await admin_client.patch(f"{API}/agents/{ws.admin_id}", json={"active": False}), 403, None
    )
    assert_error(
        await admin_client.patch(f"{API}/agents/{ws.admin_id}", json={"role": "agent"}), 403, None
    )


async def test_an_agent_updates_only_its_own_name_and_availability(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    res = await agent_client.patch(
        f"{API}/agents/{ws.agent_id}", json={"name": "Gus", "availability": "online"}
    )
    assert res.status_code == 200, res.text
    assert (res.json()["name"], res.json()["availability"]) == ("Gus", "online")
    before = await snapshot(runtime)
    for change in ({"capacity": 3}, {"capacity": None}, {"role": "admin"}, {"active": False}):
        assert_error(
            await agent_client.patch(f"{API}/agents/{ws.agent_id}", json=change), 403, None
        )
    assert_error(
        await agent_client.patch(f"{API}/agents/{ws.admin_id}", json={"name": "Hacked"}), 403, None
    )
    assert await snapshot(runtime) == before


async def test_deactivating_an_agent_logs_it_out(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    assert (await agent_client.get(f"{API}/auth/me")).status_code == 200
    res = await admin_client.patch(f"{API}/agents/{ws.agent_id}", json={"active": False})
    assert res.status_code == 200
    assert res.json()["active"] is False
    assert_error(await agent_client.get(f"{API}/auth/me"), 401, None, "unauthenticated")
    res = await agent_client.post(
        f"{API}/auth/login", json={"email": ws.agent_email, "password": PASSWORD}
    )
    assert res.status_code == 401


async def test_admin_resets_an_agents_password(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    res = await admin_client.post(
        f"{API}/agents/{ws.agent_id}/password", json={"new_password": NEW_PASSWORD}
    )
    assert res.status_code == 200, res.text
    assert res.json() == {"changed": True}
    assert NEW_PASSWORD not in res.text
    # The agent's sessions ended; the admin's did not.
    assert_error(await agent_client.get(f"{API}/auth/me"), 401, None)
    assert (await admin_client.get(f"{API}/auth/me")).status_code == 200
    async with client(runtime) as again:
        bad = await again.post(
            f"{API}/auth/login", json={"email": ws.agent_email, "password": PASSWORD}
        )
        assert bad.status_code == 401
        await login(again, ws.agent_email, NEW_PASSWORD)


async def test_password_endpoint_refusals(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    before = await snapshot(runtime)
    path = f"{API}/agents/{ws.agent_id}/password"
    assert_error(await admin_client.post(path, json={"new_password": "short"}), 422, "new_password")
    assert_error(await admin_client.post(path, json={}), 422, "new_password")
    assert_error(
        await agent_client.post(
            f"{API}/agents/{ws.admin_id}/password", json={"new_password": NEW_PASSWORD}
        ),
        403,
        None,
    )
    # One's own password through this endpoint needs the current one.
    assert_error(
        await agent_client.post(path, json={"new_password": NEW_PASSWORD}), 422, "current_password"
    )
    assert_error(
        await admin_client.post(
            f"{API}/agents/424242/password", json={"new_password": NEW_PASSWORD}
        ),
        404,
        None,
    )
    assert await snapshot(runtime) == before
    res = await agent_client.post(
        path, json={"new_password": NEW_PASSWORD, "current_password": PASSWORD}
    )
    assert res.status_code == 200, res.text
    # The session that changed it lives on.
    assert (await agent_client.get(f"{API}/auth/me")).status_code == 200


# -- teams ------------------------------------------------------------------


async def test_team_lifecycle(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team = await create_team(admin_client)
    assert team == {
        "id": team["id"],
        "name": "Tier 2",
        "description": "Escalations",
        "member_ids": [],
        "created_at": T0.isoformat(),
    }
    path = f"{API}/teams/{team['id']}"
    res = await admin_client.put(f"{path}/members/{ws.agent_id}")
    assert res.status_code == 200, res.text
    assert res.json()["member_ids"] == [ws.agent_id]
    res = await admin_client.put(f"{path}/members/{ws.admin_id}")
    assert res.json()["member_ids"] == [ws.admin_id, ws.agent_id]
    # PUT is idempotent.
    since = await last_event_id(runtime)
    res = await admin_client.put(f"{path}/members/{ws.agent_id}")
    assert res.status_code == 200
    assert await last_event_id(runtime) == since
    # Any agent reads teams.
    listed = await agent_client.get(f"{API}/teams")
    assert listed.status_code == 200
    assert listed.json()["items"] == [{**team, "member_ids": [ws.admin_id, ws.agent_id]}]
    assert (await agent_client.get(path)).json()["member_ids"] == [ws.admin_id, ws.agent_id]

    res = await admin_client.patch(path, json={"name": "Tier 3", "description": ""})
    assert res.status_code == 200, res.text
    assert (res.json()["name"], res.json()["description"]) == ("Tier 3", "")

    res = await admin_client.delete(f"{path}/members/{ws.agent_id}")
    assert (res.status_code, res.json()) == (200, {"deleted": True})
    res = await admin_client.delete(f"{path}/members/{ws.agent_id}")
    assert (res.status_code, res.json()) == (200, {"deleted": False})
    assert (await admin_client.get(path)).json()["member_ids"] == [ws.admin_id]

    res = await admin_client.delete(path)
    assert (res.status_code, res.json()) == (200, {"deleted": True})
    assert_error(await admin_client.get(path), 404, None, "not_found")
    assert_error(await admin_client.delete(path), 404, None, "not_found")
    assert (await admin_client.get(f"{API}/teams")).json()["items"] == []


async def test_team_refusals(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team = await create_team(admin_client)
    await create_team(admin_client, "Billing")
    path = f"{API}/teams/{team['id']}"
    before = await snapshot(runtime)
    assert_error(await admin_client.post(f"{API}/teams", json={"name": "Billing"}), 409, "name")
    assert_error(await admin_client.patch(path, json={"name": "Billing"}), 409, "name")
    assert_error(await admin_client.patch(path, json={}), 422, "body")
    assert_error(await admin_client.post(f"{API}/teams", json={}), 422, "name")
    assert_error(
        await admin_client.post(f"{API}/teams", json={"name": "X", "description": "d" * 2001}),
        422,
        "description",
    )
    assert_error(await admin_client.put(f"{path}/members/424242"), 404, None)
    assert_error(await agent_client.post(f"{API}/teams", json={"name": "Mine"}), 403, None)
    assert_error(await agent_client.patch(path, json={"name": "Mine"}), 403, None)
    assert_error(await agent_client.delete(path), 403, None)
    assert_error(await agent_client.put(f"{path}/members/{ws.agent_id}"), 403, None)
    assert_error(await agent_client.delete(f"{path}/members/{ws.agent_id}"), 403, None)
    assert await snapshot(runtime) == before


# -- inboxes ----------------------------------------------------------------


async def test_widget_inbox_secret_is_shown_once(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    res = await admin_client.post(
        f"{API}/inboxes",
        json={"name": "Shop", "kind": "widget", "settings": {"color": "#0af", "greeting": None}},
    )
    assert res.status_code == 201, res.text
    created = res.json()
    secret = created.pop("secret")
    assert isinstance(secret, str) and len(secret) == 64
    assert created == {
        "id": created["id"],
        "name": "Shop",
        "kind": "widget",
        "settings": {"color": "#0af"},
        "public_token": created["public_token"],
        "member_ids": [],
        "created_at": T0.isoformat(),
    }
    secrets = [secret, *await stored_secrets(runtime)]
    one = await admin_client.get(f"{API}/inboxes/{created['id']}")
    assert one.status_code == 200
    assert one.json() == created
    listed = await admin_client.get(f"{API}/inboxes")
    assert created in listed.json()["items"]
    patched = await admin_client.patch(f"{API}/inboxes/{created['id']}", json={"name": "Shop 2"})
    assert patched.status_code == 200
    for later in (one, listed, patched):
        assert "secret" not in later.text
        assert_no_secrets(later, secrets)


async def test_email_inbox_has_no_secret(admin_client: httpx.AsyncClient) -> None:
    res = await admin_client.post(f"{API}/inboxes", json={"name": "Mail", "kind": "email"})
    assert res.status_code == 201, res.text
    assert (res.json()["secret"], res.json()["settings"], res.json()["kind"]) == (None, {}, "email")


async def test_agents_see_only_their_inboxes(
    ws: Workspace, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    res = await agent_client.get(f"{API}/inboxes")
    assert res.status_code == 200
    assert [i["id"] for i in res.json()["items"]] == [ws.inbox_id]
    mine = await agent_client.get(f"{API}/inboxes/{ws.inbox_id}")
    assert mine.status_code == 200
    assert mine.json()["member_ids"] == [ws.agent_id]
    assert_error(await agent_client.get(f"{API}/inboxes/{ws.other_inbox_id}"), 404, None)
    admin_sees = await admin_client.get(f"{API}/inboxes")
    assert {i["id"] for i in admin_sees.json()["items"]} == {ws.inbox_id, ws.other_inbox_id}


async def test_inbox_membership_gives_and_takes_access(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    member = f"{API}/inboxes/{ws.other_inbox_id}/members/{ws.agent_id}"
    res = await admin_client.put(member)
    assert res.status_code == 200, res.text
    assert res.json()["member_ids"] == [ws.agent_id]
    assert (await agent_client.get(f"{API}/inboxes/{ws.other_inbox_id}")).status_code == 200
    since = await last_event_id(runtime)
    assert (await admin_client.put(member)).status_code == 200
    assert await last_event_id(runtime) == since
    res = await admin_client.delete(member)
    assert (res.status_code, res.json()) == (200, {"deleted": True})
    res = await admin_client.delete(member)
    assert (res.status_code, res.json()) == (200, {"deleted": False})
    assert_error(await agent_client.get(f"{API}/inboxes/{ws.other_inbox_id}"), 404, None)


async def test_update_inbox(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    path = f"{API}/inboxes/{ws.inbox_id}"
    res = await admin_client.patch(path, json={"settings": {"color": "#000", "greeting": "Hi"}})
    assert res.json()["settings"] == {"color": "#000", "greeting": "Hi"}
    res = await admin_client.patch(
        path, json={"name": "Website chat", "settings": {"greeting": None, "locale": "de"}}
    )
    assert res.status_code == 200, res.text
    assert (res.json()["name"], res.json()["settings"]) == (
        "Website chat",
        {"color": "#000", "locale": "de"},
    )
    before = await snapshot(runtime)
    assert_error(await agent_client.patch(path, json={"name": "Mine"}), 403, None)
    assert_error(
        await agent_client.patch(f"{API}/inboxes/{ws.other_inbox_id}", json={"name": "M"}),
        404,
        None,
    )
    assert_error(await agent_client.put(f"{path}/members/{ws.admin_id}"), 403, None)
    assert_error(
        await agent_client.put(f"{API}/inboxes/{ws.other_inbox_id}/members/{ws.agent_id}"),
        404,
        None,
    )
    assert_error(await agent_client.delete(f"{path}/members/{ws.agent_id}"), 403, None)
    assert_error(
        await agent_client.post(f"{API}/inboxes", json={"name": "Mine", "kind": "api"}), 403, None
    )
    assert_error(
        await admin_client.patch(path, json={"settings": {"a": {"b": {"c": {"d": {"e": {}}}}}}}),
        422,
        "settings.a.b.c.d.e",
    )
    assert_error(await admin_client.patch(path, json={"settings": []}), 422, "settings")
    assert_error(
        await admin_client.post(f"{API}/inboxes", json={"name": "X", "kind": "fax"}), 422, "kind"
    )
    assert_error(await admin_client.post(f"{API}/inboxes", json={"name": "X"}), 422, "kind")
    assert await snapshot(runtime) == before


# -- API tokens -------------------------------------------------------------


async def test_token_lifecycle(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    res = await agent_client.post(f"{API}/tokens", json={"name": "CI"})
    assert res.status_code == 201, res.text
    created = res.json()
    token = created.pop("token")
    assert token.startswith("tlp_")
    assert created == {
        "id": created["id"],
        "name": "CI",
        "prefix": token[:10],
        "agent_id": ws.agent_id,
        "created_at": T0.isoformat(),
        "last_used_at": None,
        "revoked_at": None,
    }
    secrets = [token, *await stored_secrets(runtime)]
    listed = await agent_client.get(f"{API}/tokens")
    assert listed.status_code == 200
    assert listed.json()["items"] == [created]
    assert '"token"' not in listed.text
    assert_no_secrets(listed, secrets)

    async with client(runtime) as bearer:
        bearer.headers["authorization"] = f"Bearer {token}"
        me = await bearer.get(f"{API}/auth/me")
        assert me.status_code == 200
        assert me.json()["agent"]["id"] == ws.agent_id
        # Bearer writes need no CSRF token.
        res = await bearer.patch(f"{API}/agents/{ws.agent_id}", json={"availability": "online"})
        assert res.status_code == 200, res.text

        frozen(runtime).advance(minutes=1)
        res = await agent_client.delete(f"{API}/tokens/{created['id']}")
        assert (res.status_code, res.json()) == (200, {"deleted": True})
        assert_error(await bearer.get(f"{API}/auth/me"), 401, "Authorization", "unauthenticated")
        assert_error(await bearer.get(f"{API}/tokens"), 401, "Authorization")

    res = await agent_client.delete(f"{API}/tokens/{created['id']}")
    assert (res.status_code, res.json()) == (200, {"deleted": False})
    listed = await agent_client.get(f"{API}/tokens")
    assert listed.json()["items"][0]["revoked_at"] == "2026-01-05T09:01:00+00:00"


async def test_listing_tokens_of_the_workspace_is_for_admins(
    ws: Workspace, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    agents = (await agent_client.post(f"{API}/tokens", json={"name": "agent's"})).json()
    admins = (await admin_client.post(f"{API}/tokens", json={"name": "admin's"})).json()
    own = await admin_client.get(f"{API}/tokens")
    assert [i["id"] for i in own.json()["items"]] == [admins["id"]]
    everyone = await admin_client.get(f"{API}/tokens", params={"all": "true"})
    assert everyone.status_code == 200
    assert [i["id"] for i in everyone.json()["items"]] == [agents["id"], admins["id"]]
    assert agents["token"] not in everyone.text and admins["token"] not in everyone.text
    assert_error(await agent_client.get(f"{API}/tokens", params={"all": "true"}), 403, None)
    assert_error(await admin_client.get(f"{API}/tokens", params={"all": "maybe"}), 422, "all")
    assert_error(await admin_client.get(f"{API}/tokens", params={"mine": "1"}), 422, "mine")
    # A plain agent can't see, let alone revoke, the admin's token; the admin
    # can revoke the agent's.
    assert_error(await agent_client.delete(f"{API}/tokens/{admins['id']}"), 404, None)
    res = await admin_client.delete(f"{API}/tokens/{agents['id']}")
    assert (res.status_code, res.json()) == (200, {"deleted": True})


# -- CSRF, bad input, rate limits -------------------------------------------


async def test_cookie_writes_need_the_csrf_header(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    team = await create_team(admin_client)
    token = (await admin_client.post(f"{API}/tokens", json={"name": "x"})).json()
    cookie = admin_client.cookies[SESSION_COOKIE]
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/agents", {"email": "c@acme.test", "name": "C", "password": PASSWORD}),
        ("PATCH", f"/agents/{ws.agent_id}", {"name": "CSRF"}),
        ("POST", f"/agents/{ws.agent_id}/password", {"new_password": NEW_PASSWORD}),
        ("POST", "/teams", {"name": "CSRF"}),
        ("PATCH", f"/teams/{team['id']}", {"name": "CSRF"}),
        ("DELETE", f"/teams/{team['id']}", None),
        ("PUT", f"/teams/{team['id']}/members/{ws.agent_id}", None),
        ("POST", "/inboxes", {"name": "CSRF", "kind": "api"}),
        ("PATCH", f"/inboxes/{ws.inbox_id}", {"name": "CSRF"}),
        ("DELETE", f"/inboxes/{ws.inbox_id}/members/{ws.agent_id}", None),
        ("POST", "/tokens", {"name": "CSRF"}),
        ("DELETE", f"/tokens/{token['id']}", None),
    ]
    before = await snapshot(runtime)
    async with client(runtime) as bare, client(runtime) as wrong, client(runtime) as foreign:
        for c in (bare, wrong, foreign):
            c.cookies.set(SESSION_COOKIE, cookie)
        wrong.headers["x-csrf-token"] = "not-the-token"
        foreign.headers["x-csrf-token"] = admin_client.headers["x-csrf-token"]
        foreign.headers["origin"] = "https://evil.example"
        for method, path, body in writes:
            res = await bare.request(method, API + path, json=body)
            assert_error(res, 403, "X-CSRF-Token", "forbidden")
            res = await wrong.request(method, API + path, json=body)
            assert_error(res, 403, "X-CSRF-Token", "forbidden")
            res = await foreign.request(method, API + path, json=body)
            assert_error(res, 403, "Origin", "forbidden")
        # Reads need no CSRF token.
        assert (await bare.get(f"{API}/teams")).status_code == 200
    assert await snapshot(runtime) == before


# A dict is merged into a valid body; bytes are the raw JSON text of the
# `name` value, spliced into one (so only `name` is wrong); bytes starting
# with RAW are the whole body.
RAW = b"RAW:"
BAD_BODIES: list[tuple[str, dict[str, Any] | bytes, int, str]] = [
    ("wrong type", {"name": 123}, 422, "name"),
    ("null", {"name": None}, 422, "name"),
    ("list", {"name": ["a"]}, 422, "name"),
    ("NUL byte", {"name": "bad\u0000name"}, 422, "name"),
    ("huge", {"name": "x" * 20_000}, 422, "name"),
    ("empty", {"name": " "}, 422, "name"),
    ("unknown field", {"name": "ok", "bogus": 1}, 422, "bogus"),
    ("lone surrogate", b'"\\ud800"', 422, "name"),
    ("invalid UTF-8", b'"\xff"', 400, "body"),
    ("not JSON", RAW + b'{"name": ', 400, "body"),
    ("not an object", RAW + b'["name"]', 422, "body"),
]


def raw_body(rest: dict[str, Any], bad: bytes) -> bytes:
    if bad.startswith(RAW):
        return bad.removeprefix(RAW)
    return json.dumps({**rest, "name": "@"}).encode().replace(b'"@"', bad)


# Each endpoint that takes a `name`, with the rest of a valid body.
NAMED: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/agents", {"email": "b@acme.test", "password": PASSWORD}),
    ("PATCH", "/agents/{agent_id}", {}),
    ("POST", "/teams", {}),
    ("PATCH", "/teams/{team_id}", {}),
    ("POST", "/inboxes", {"kind": "widget"}),
    ("PATCH", "/inboxes/{inbox_id}", {}),
    ("POST", "/tokens", {}),
]


@pytest.mark.parametrize(("method", "path", "rest"), NAMED, ids=[f"{m} {p}" for m, p, _ in NAMED])
async def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    method: str,
    path: str,
    rest: dict[str, Any],
) -> None:
    team = await create_team(admin_client)
    url = API + path.format(agent_id=ws.agent_id, team_id=team["id"], inbox_id=ws.inbox_id)
    before = await snapshot(runtime)
    for label, bad, status, field in BAD_BODIES:
        if isinstance(bad, bytes):
            res = await admin_client.request(
                method,
                url,
                content=raw_body(rest, bad),
                headers={"content-type": "application/json"},
            )
        else:
            res = await admin_client.request(method, url, json={**rest, **bad})
        assert res.status_code == status, f"{label}: {res.status_code} {res.text}"
        assert res.json()["error"]["field"] == field, f"{label}: {res.text}"
    res = await admin_client.request(
        method, url, content=b'{"name": "x"}', headers={"content-type": "text/plain"}
    )
    assert_error(res, 415, "body", "unsupported_media_type")
    assert await snapshot(runtime) == before


async def test_login_is_rate_limited(
    runtime: Runtime, ws: Workspace, anon_client: httpx.AsyncClient
) -> None:
    login_url = f"{API}/auth/login"
    for _ in range(5):
        res = await anon_client.post(login_url, json={"email": ws.agent_email, "password": "nope"})
        assert_error(res, 401, None, "unauthenticated")
    # The sixth try is refused before the password is even checked.
    res = await anon_client.post(login_url, json={"email": ws.agent_email, "password": PASSWORD})
    assert_error(res, 429, None, "rate_limited")
    assert res.headers["retry-after"] == "300"
    assert SESSION_COOKIE not in res.cookies
    frozen(runtime).advance(seconds=120)
    res = await anon_client.post(login_url, json={"email": ws.agent_email, "password": PASSWORD})
    assert res.status_code == 429
    assert res.headers["retry-after"] == "180"
    # The same IP is limited for other accounts too.
    res = await anon_client.post(login_url, json={"email": ws.admin_email, "password": PASSWORD})
    assert res.status_code == 429
    frozen(runtime).advance(seconds=180)
    await login(anon_client, ws.agent_email)
