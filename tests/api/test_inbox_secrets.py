"""REST: an inbox's secrets (Slack bot token and signing secret, a social
app's secret and access token, mail server passwords) are write-only
(PROTOCOLS.md P7). Create, update, get and list show only whether each is
set; the event log (what the websocket streams) and the audit log never
hold one; the rows' settings never do either. The server still reads each
back decrypted, and a write can set, replace or clear one."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.queries.inbox_secrets import inbox_secrets
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, last_event_id

API = "/api/v1"

# kind -> (plain settings, its secrets as written, the same by stored name)
CASES: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, str]]] = {
    "slack": (
        {"team_id": "T0123ABCD", "channel_ids": "C0123ABCD, C0456EFGH"},
        {"bot_token": "xoxb-1111-2222-secretbot", "signing_secret": "8f14e45fceea167a5a36dedd"},
        {"bot_token": "xoxb-1111-2222-secretbot", "signing_secret": "8f14e45fceea167a5a36dedd"},
    ),
    "social": (
        {"platform": "x", "account": "@acme"},
        {"app_secret": "app-secret-0f3c9a", "access_token": "access-token-77e1b2"},
        {"app_secret": "app-secret-0f3c9a", "access_token": "access-token-77e1b2"},
    ),
}
KINDS = [*CASES, "email"]


def created_with(kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(settings for POST, the secrets in them by stored name)."""
    if kind == "email":
        settings = {
            "address": "help@acme.test",
            "smtp": {"host": "smtp.acme.test", "username": "help", "password": "smtp-pw-91c2"},
            "imap": {"host": "imap.acme.test", "username": "help", "password": "imap-pw-4d7e"},
        }
        return settings, {"smtp_password": "smtp-pw-91c2", "imap_password": "imap-pw-4d7e"}
    plain, secrets, stored = CASES[kind]
    return {**plain, **secrets}, stored


def flags(kind: str, settings: dict[str, Any]) -> dict[str, bool]:
    if kind == "email":
        return {s: settings[s]["password_set"] for s in ("smtp", "imap")}
    return {k: v for k, v in settings.items() if k.endswith("_set")}


async def leaks(runtime: Runtime, values: list[str], *texts: str) -> list[str]:
    """Every place one of `values` shows up: the responses given, every
    event payload, every audit entry, every inbox's stored settings."""
    async with runtime.db.read() as conn:
        events = [json.dumps(r.payload) for r in await conn.execute(sa.select(t.events))]
        audit = [json.dumps(r.details) for r in await conn.execute(sa.select(t.audit_log))]
        rows = [json.dumps(r.settings) for r in await conn.execute(sa.select(t.inboxes))]
    places = [("response", x) for x in texts]
    places += [("event", x) for x in events] + [("audit", x) for x in audit]
    places += [("settings", x) for x in rows]
    return [f"{where}: {text}" for where, text in places for v in values if v in text]


@pytest.mark.parametrize("kind", KINDS)
async def test_secrets_are_never_shown(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient, kind: str
) -> None:
    settings, stored = created_with(kind)
    since = await last_event_id(runtime)
    created = await admin_client.post(
        f"{API}/inboxes", json={"name": "Channel", "kind": kind, "settings": settings}
    )
    assert created.status_code == 201, created.text
    inbox_id = created.json()["id"]
    view = created.json()["settings"]
    assert set(flags(kind, view).values()) == {True}
    async with runtime.db.read() as conn:
        assert await inbox_secrets(conn, runtime.secrets, inbox_id) == stored

    # Settings read back can be sent back as they are: the flags are ignored.
    patched = await admin_client.patch(f"{API}/inboxes/{inbox_id}", json={"settings": view})
    assert patched.status_code == 200, patched.text
    assert patched.json()["settings"] == view
    renamed = await admin_client.patch(f"{API}/inboxes/{inbox_id}", json={"name": "Renamed"})
    got = await admin_client.get(f"{API}/inboxes/{inbox_id}")
    listed = await admin_client.get(f"{API}/inboxes")
    audit = await admin_client.get(f"{API}/audit_log")
    assert got.json()["settings"] == view
    assert [i["settings"] for i in listed.json()["items"] if i["id"] == inbox_id] == [view]
    texts = [r.text for r in (created, patched, renamed, got, listed, audit)]
    assert await leaks(runtime, list(stored.values()), *texts) == []
    assert await last_event_id(runtime) > since  # the events checked include this inbox's


async def test_a_write_sets_replaces_and_clears_a_secret(
    runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    res = await admin_client.post(
        f"{API}/inboxes", json={"name": "Slack", "kind": "slack", "settings": {}}
    )
    inbox_id = res.json()["id"]
    assert res.json()["settings"] == {"bot_token_set": False, "signing_secret_set": False}

    async def patch(settings: dict[str, Any]) -> dict[str, Any]:
        res = await admin_client.patch(f"{API}/inboxes/{inbox_id}", json={"settings": settings})
        assert res.status_code == 200, res.text
        assert "xoxb-" not in res.text
        found: dict[str, Any] = res.json()["settings"]
        return found

    async def stored() -> dict[str, str]:
        async with runtime.db.read() as conn:
            return await inbox_secrets(conn, runtime.secrets, inbox_id)

    assert (await patch({"bot_token": "xoxb-first"}))["bot_token_set"] is True
    assert await stored() == {"bot_token": "xoxb-first"}
    await patch({"bot_token": "xoxb-second", "signing_secret": "s1"})
    assert await stored() == {"bot_token": "xoxb-second", "signing_secret": "s1"}
    view = await patch({"bot_token": None})
    assert (view["bot_token_set"], view["signing_secret_set"]) == (False, True)
    assert await stored() == {"signing_secret": "s1"}


@pytest.mark.parametrize(
    ("kind", "settings", "field"),
    [
        ("slack", {"bot_tokn": "xoxb-1"}, "settings.bot_tokn"),
        ("slack", {"bot_token": 12}, "settings.bot_token"),
        ("slack", {"bot_token": ""}, "settings.bot_token"),
        ("slack", {"team_id": "acme"}, "settings.team_id"),
        ("slack", {"channel_ids": "general"}, "settings.channel_ids[0]"),
        ("social", {"platform": "myspace"}, "settings.platform"),
        ("social", {"access_tokn": "x"}, "settings.access_tokn"),
        ("email", {"smtp": {"host": "smtp.acme.test", "pasword": "x"}}, "settings.smtp.pasword"),
        ("api", {"bot_token": "x"}, "settings.bot_token"),
    ],
)
async def test_bad_settings_name_the_field(
    runtime: Runtime,
    admin_client: httpx.AsyncClient,
    kind: str,
    settings: dict[str, Any],
    field: str,
) -> None:
    before = await last_event_id(runtime)
    res = await admin_client.post(
        f"{API}/inboxes", json={"name": "Channel", "kind": kind, "settings": settings}
    )
    assert res.status_code == 422, res.text
    assert res.json()["error"]["field"] == field
    assert await last_event_id(runtime) == before
