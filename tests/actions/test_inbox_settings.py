"""A widget inbox's settings through do_create_inbox / do_update_inbox:
stored in canonical form when valid; refused by field when not, with no
row and no event written. Every kind refuses keys it does not know."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.inboxes import do_create_inbox, do_update_inbox
from server.domain.errors import Forbidden, InvalidInput
from server.domain.values import InboxKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, events_since, fetch_all, fetch_one, last_event_id

HOURS = {"timezone": "Europe/Berlin", "weekly": {"fri": [["13:00", "17:00"], ["09:00", "12:00"]]}}
CANONICAL_HOURS = {
    "timezone": "Europe/Berlin",
    "weekly": {
        **{d: [] for d in ("mon", "tue", "wed", "thu", "sat", "sun")},
        "fri": [["09:00", "12:00"], ["13:00", "17:00"]],
    },
    "holidays": [],
}


async def inbox_rows(runtime: Runtime) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in await fetch_all(
            runtime,
            sa.select(t.inboxes.c.id, t.inboxes.c.name, t.inboxes.c.settings).order_by(
                t.inboxes.c.id
            ),
        )
    ]


async def stored_settings(runtime: Runtime, inbox_id: int) -> dict[str, Any]:
    row = await fetch_one(
        runtime, sa.select(t.inboxes.c.settings).where(t.inboxes.c.id == inbox_id)
    )
    settings: dict[str, Any] = row.settings
    return settings


async def create(runtime: Runtime, ws: Workspace, kind: InboxKind, settings: dict[str, Any]) -> int:
    new = await perform(
        runtime,
        ws.admin,
        do_create_inbox,
        name="Shop chat",
        kind=kind,
        settings=settings,
        box=runtime.secrets,
    )
    return new.inbox_id


async def test_create_stores_the_cleaned_settings(runtime: Runtime, ws: Workspace) -> None:
    since = await last_event_id(runtime)
    inbox_id = await create(
        runtime,
        ws,
        InboxKind.WIDGET,
        {
            "allowed_domains": "HTTPS://Shop.Example/ https://www.shop.example",
            "color": "#1F6FEB",
            "prechat": {"enabled": True, "email": "required"},
            "business_hours": HOURS,
            "locale": "pt-BR",
        },
    )
    assert await stored_settings(runtime, inbox_id) == {
        "allowed_domains": ["https://shop.example", "https://www.shop.example"],
        "color": "#1f6feb",
        "prechat": {"enabled": True, "name": "off", "email": "required"},
        "business_hours": CANONICAL_HOURS,
        "locale": "pt-BR",
    }
    assert [e[0] for e in await events_since(runtime, since)] == ["inbox.created"]


BAD: list[tuple[dict[str, Any], str]] = [
    ({"color": "blue"}, "settings.color"),
    ({"require_verification": "yes"}, "settings.require_verification"),
    ({"allowed_domains": ["shop.example"]}, "settings.allowed_domains[0]"),
    ({"prechat": {"enabled": True, "email": "always"}}, "settings.prechat.email"),
    (
        {"business_hours": {**HOURS, "weekly": {"fri": [["09:00", "12:00"], ["11:00", "13:00"]]}}},
        "settings.business_hours.weekly.fri",
    ),
    (
        {"business_hours": {**HOURS, "timezone": "Europe/Atlantis"}},
        "settings.business_hours.timezone",
    ),
    ({"continuity_email_after_minutes": 0}, "settings.continuity_email_after_minutes"),
]


@pytest.mark.parametrize(("settings", "field"), BAD)
async def test_create_refuses_bad_settings_and_writes_nothing(
    runtime: Runtime, ws: Workspace, settings: dict[str, Any], field: str
) -> None:
    since, before = await last_event_id(runtime), await inbox_rows(runtime)
    with pytest.raises(InvalidInput) as caught:
        await create(runtime, ws, InboxKind.WIDGET, {"greeting": "Hi", **settings})
    assert caught.value.field == field
    assert await inbox_rows(runtime) == before
    assert await events_since(runtime, since) == []


@pytest.mark.parametrize(("settings", "field"), BAD)
async def test_update_refuses_bad_settings_and_changes_nothing(
    runtime: Runtime, ws: Workspace, settings: dict[str, Any], field: str
) -> None:
    await perform(
        runtime, ws.admin, do_update_inbox, inbox_id=ws.inbox_id, settings={"greeting": "Hi"}
    )
    since, before = await last_event_id(runtime), await inbox_rows(runtime)
    with pytest.raises(InvalidInput) as caught:
        # The rename in the same call is refused with the settings.
        await perform(
            runtime,
            ws.admin,
            do_update_inbox,
            inbox_id=ws.inbox_id,
            name="Renamed",
            settings=settings,
        )
    assert caught.value.field == field
    assert await inbox_rows(runtime) == before
    assert await events_since(runtime, since) == []


async def test_update_merges_then_cleans(runtime: Runtime, ws: Workspace) -> None:
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.inbox_id,
        settings={"color": "#ABC", "business_hours": HOURS, "away_message": "Back at nine"},
    )
    since = await last_event_id(runtime)
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.inbox_id,
        settings={"away_message": None, "allowed_domains": ["https://shop.example:443"]},
    )
    assert await stored_settings(runtime, ws.inbox_id) == {
        "color": "#abc",
        "business_hours": CANONICAL_HOURS,
        "allowed_domains": ["https://shop.example"],
    }
    events = await events_since(runtime, since)
    assert [(kind, payload["changes"]) for kind, payload in events] == [
        ("inbox.updated", ["settings"])
    ]
    # The same values again, in their long form: nothing changes, nothing is emitted.
    since = await last_event_id(runtime)
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.inbox_id,
        settings={"color": "#ABC", "business_hours": HOURS},
    )
    assert await events_since(runtime, since) == []


async def test_the_merged_result_is_checked(runtime: Runtime, ws: Workspace) -> None:
    # A value written before settings were checked (raw, as an old release
    # would have left it) blocks every settings change until it is fixed or
    # removed, and the error says which one it is.
    async with runtime.db.write() as conn:
        await conn.execute(
            t.inboxes.update()
            .where(t.inboxes.c.id == ws.inbox_id)
            .values(settings={"color": "teal", "greeting": "Hi"})
        )
    with pytest.raises(InvalidInput) as caught:
        await perform(
            runtime, ws.admin, do_update_inbox, inbox_id=ws.inbox_id, settings={"greeting": "Yo"}
        )
    assert caught.value.field == "settings.color"
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.inbox_id,
        settings={"greeting": "Yo", "color": None},
    )
    assert await stored_settings(runtime, ws.inbox_id) == {"greeting": "Yo"}


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (InboxKind.WIDGET, "colour"),
        (InboxKind.WIDGET, "bot_token"),
        (InboxKind.EMAIL, "color"),
        (InboxKind.API, "greeting"),
        (InboxKind.SLACK, "bot_tokn"),
        (InboxKind.SOCIAL, "smtp"),
    ],
)
async def test_every_kind_refuses_keys_it_does_not_know(
    runtime: Runtime, ws: Workspace, kind: InboxKind, key: str
) -> None:
    # A key another kind owns means nothing here; a typo would sit in the
    # settings doing nothing. Either way the key is named.
    before = await inbox_rows(runtime)
    with pytest.raises(InvalidInput) as caught:
        await create(runtime, ws, kind, {key: "x"})
    assert caught.value.field == f"settings.{key}"
    assert await inbox_rows(runtime) == before


async def test_permission_is_checked_before_the_settings(runtime: Runtime, ws: Workspace) -> None:
    with pytest.raises(Forbidden):
        await perform(
            runtime,
            ws.agent,
            do_update_inbox,
            inbox_id=ws.inbox_id,
            settings={"color": "blue"},
        )
