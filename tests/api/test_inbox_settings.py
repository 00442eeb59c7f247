"""REST: a widget inbox's settings. A bad value answers 422 naming the
field and writes nothing; good values come back in canonical form."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, last_event_id

API = "/api/v1"


async def snapshot(runtime: Runtime) -> dict[str, Any]:
    """Every inbox row and the last event id: equal before and after
    means nothing was written."""
    async with runtime.db.read() as conn:
        rows = await conn.execute(sa.select(t.inboxes).order_by(t.inboxes.c.id))
        return {
            "inboxes": [tuple(r) for r in rows],
            "last_event_id": await last_event_id(runtime),
        }


def assert_invalid(res: httpx.Response, field: str) -> None:
    assert res.status_code == 422, res.text
    error = res.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field), error
    assert field in error["message"]


async def test_scalar_settings_are_cleaned(ws: Workspace, admin_client: httpx.AsyncClient) -> None:
    res = await admin_client.patch(
        f"{API}/inboxes/{ws.inbox_id}",
        json={
            "settings": {
                "greeting": "Hi there",
                "color": "#1F6FEB",
                "locale": "de",
                "require_verification": True,
                "away_message": "Back at nine",
                "continuity_email_after_minutes": 30,
                # The REST API's settings are scalar: origins come as one string.
                "allowed_domains": "https://Shop.Example/, https://www.shop.example",
            }
        },
    )
    assert res.status_code == 200, res.text
    assert res.json()["settings"] == {
        "greeting": "Hi there",
        "color": "#1f6feb",
        "locale": "de",
        "require_verification": True,
        "away_message": "Back at nine",
        "continuity_email_after_minutes": 30,
        "allowed_domains": ["https://shop.example", "https://www.shop.example"],
    }


BAD: list[tuple[dict[str, Any], str]] = [
    ({"color": "blue"}, "settings.color"),
    ({"require_verification": "false"}, "settings.require_verification"),
    ({"require_verification": 0}, "settings.require_verification"),
    ({"greeting": "x" * 501}, "settings.greeting"),
    ({"locale": "German"}, "settings.locale"),
    ({"away_message": "x" * 1001}, "settings.away_message"),
    ({"allowed_domains": "shop.example"}, "settings.allowed_domains"),
    ({"continuity_email_after_minutes": 2.5}, "settings.continuity_email_after_minutes"),
    ({"continuity_email_after_minutes": 20000}, "settings.continuity_email_after_minutes"),
    ({"prechat": "required"}, "settings.prechat"),
    ({"business_hours": "9-5"}, "settings.business_hours"),
]


@pytest.mark.parametrize(("settings", "field"), BAD)
async def test_bad_settings_answer_422_and_change_nothing(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    settings: dict[str, Any],
    field: str,
) -> None:
    before = await snapshot(runtime)
    res = await admin_client.patch(
        f"{API}/inboxes/{ws.inbox_id}", json={"name": "Renamed", "settings": settings}
    )
    assert_invalid(res, field)
    res = await admin_client.post(
        f"{API}/inboxes", json={"name": "Shop", "kind": "widget", "settings": settings}
    )
    assert_invalid(res, field)
    assert await snapshot(runtime) == before


async def test_structured_values_are_refused_by_field(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    # The REST schema takes scalar settings only, so an object is refused
    # before the widget rules see it; either way the field is named and
    # nothing is written.
    before = await snapshot(runtime)
    for key, value in (
        ("prechat", {"enabled": "yes"}),
        ("business_hours", {"timezone": "Nowhere", "weekly": {}}),
        ("allowed_domains", ["shop.example"]),
    ):
        res = await admin_client.patch(
            f"{API}/inboxes/{ws.inbox_id}", json={"settings": {key: value}}
        )
        assert res.status_code == 422, res.text
        assert res.json()["error"]["field"].startswith(f"settings.{key}")
    assert await snapshot(runtime) == before


async def test_unknown_keys_are_refused_by_name(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    before = await snapshot(runtime)
    res = await admin_client.patch(
        f"{API}/inboxes/{ws.other_inbox_id}", json={"settings": {"color": "blue"}}
    )
    assert_invalid(res, "settings.color")
    res = await admin_client.post(
        f"{API}/inboxes", json={"name": "Team", "kind": "slack", "settings": {"bot_tokn": "x"}}
    )
    assert_invalid(res, "settings.bot_tokn")
    assert await snapshot(runtime) == before
