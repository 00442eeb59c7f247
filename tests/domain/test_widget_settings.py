"""A widget inbox's settings: each widget key checked by field and put in
canonical form, other keys passed through; and what a visitor is told
about availability."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.widget_identity import origin_allowed
from server.domain.widget_settings import PUBLIC_KEYS, availability, validate_widget_settings

HOURS = {"timezone": "Europe/Berlin", "weekly": {"mon": [["09:00", "17:00"]]}}


def test_a_full_valid_set_is_cleaned() -> None:
    cleaned = validate_widget_settings(
        {
            "allowed_domains": [
                "HTTPS://Shop.Example/",
                "https://shop.example:443",
                "http://localhost:3000",
            ],
            "require_verification": True,
            "greeting": "Hi! " * 125,
            "color": "#1F6FEB",
            "locale": "pt-BR",
            "away_message": "x" * 1000,
            "prechat": {"enabled": True, "email": "required"},
            "business_hours": HOURS,
            "continuity_email_after_minutes": 10080,
        }
    )
    assert cleaned == {
        "allowed_domains": ["https://shop.example", "http://localhost:3000"],
        "require_verification": True,
        "greeting": "Hi! " * 125,
        "color": "#1f6feb",
        "locale": "pt-BR",
        "away_message": "x" * 1000,
        "prechat": {"enabled": True, "name": "off", "email": "required"},
        "business_hours": {
            "timezone": "Europe/Berlin",
            "weekly": {
                "mon": [["09:00", "17:00"]],
                **{d: [] for d in ("tue", "wed", "thu", "fri", "sat", "sun")},
            },
            "holidays": [],
        },
        "continuity_email_after_minutes": 10080,
    }
    assert validate_widget_settings(cleaned) == cleaned
    assert validate_widget_settings({}) == {}


def test_allowed_domains_as_one_string_becomes_the_list() -> None:
    # The REST API's settings are scalar, so the list can arrive as text.
    cleaned = validate_widget_settings(
        {"allowed_domains": "https://shop.example, https://www.shop.example  http://[::1]:8080"}
    )
    assert cleaned["allowed_domains"] == [
        "https://shop.example",
        "https://www.shop.example",
        "http://[::1]:8080",
    ]
    assert origin_allowed("https://www.shop.example", cleaned["allowed_domains"])
    assert validate_widget_settings({"allowed_domains": ""}) == {"allowed_domains": []}


def test_small_values_at_the_limits() -> None:
    cleaned = validate_widget_settings(
        {"color": "#0AF", "locale": "en", "greeting": "", "continuity_email_after_minutes": 1}
    )
    assert cleaned == {
        "color": "#0af",
        "locale": "en",
        "greeting": "",
        "continuity_email_after_minutes": 1,
    }
    off = validate_widget_settings({"prechat": {"enabled": False}})
    assert off["prechat"] == {"enabled": False, "name": "off", "email": "off"}


BAD: list[tuple[dict[str, Any], str]] = [
    ({"allowed_domains": 5}, "settings.allowed_domains"),
    ({"allowed_domains": {"a": 1}}, "settings.allowed_domains"),
    ({"allowed_domains": ["https://ok.example", 5]}, "settings.allowed_domains[1]"),
    ({"allowed_domains": ["shop.example"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": "shop.example"}, "settings.allowed_domains"),
    ({"allowed_domains": ["https://shop.example/path"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://*.shop.example"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["ftp://shop.example"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://user@shop.example"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://shop.example?x=1"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://shop.example:99999"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://[not-ipv6]"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://bücher.example"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://shop\t.example"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": ["https://"]}, "settings.allowed_domains[0]"),
    ({"allowed_domains": [f"https://s{i}.example" for i in range(51)]}, "settings.allowed_domains"),
    ({"require_verification": "no"}, "settings.require_verification"),
    ({"require_verification": 1}, "settings.require_verification"),
    ({"require_verification": None}, "settings.require_verification"),
    ({"greeting": "x" * 501}, "settings.greeting"),
    ({"greeting": 5}, "settings.greeting"),
    ({"greeting": "a\x00b"}, "settings.greeting"),
    ({"color": "red"}, "settings.color"),
    ({"color": "#12345"}, "settings.color"),
    ({"color": "#gggggg"}, "settings.color"),
    ({"color": 0x1F6FEB}, "settings.color"),
    ({"locale": "english"}, "settings.locale"),
    ({"locale": "en_US"}, "settings.locale"),
    ({"locale": ""}, "settings.locale"),
    ({"locale": ["en"]}, "settings.locale"),
    ({"away_message": "x" * 1001}, "settings.away_message"),
    ({"away_message": False}, "settings.away_message"),
    ({"prechat": True}, "settings.prechat"),
    ({"prechat": "required"}, "settings.prechat"),
    ({"prechat": {}}, "settings.prechat.enabled"),
    ({"prechat": {"enabled": "yes"}}, "settings.prechat.enabled"),
    ({"prechat": {"enabled": True, "email": "must"}}, "settings.prechat.email"),
    ({"prechat": {"enabled": True, "name": True}}, "settings.prechat.name"),
    ({"prechat": {"enabled": True, "phone": "required"}}, "settings.prechat.phone"),
    ({"prechat": {"enabled": True}}, "settings.prechat"),
    ({"business_hours": "9-5"}, "settings.business_hours"),
    ({"business_hours": {**HOURS, "timezone": "Berlin"}}, "settings.business_hours.timezone"),
    (
        {"business_hours": {"timezone": "UTC", "weekly": {"mon": [["17:00", "09:00"]]}}},
        "settings.business_hours.weekly.mon[0]",
    ),
    ({"continuity_email_after_minutes": 0}, "settings.continuity_email_after_minutes"),
    ({"continuity_email_after_minutes": 10081}, "settings.continuity_email_after_minutes"),
    ({"continuity_email_after_minutes": True}, "settings.continuity_email_after_minutes"),
    ({"continuity_email_after_minutes": 5.0}, "settings.continuity_email_after_minutes"),
    ({"continuity_email_after_minutes": "10"}, "settings.continuity_email_after_minutes"),
    # Not a setting of a widget inbox: refused by name, never stored.
    ({"position": "left"}, "settings.position"),
    ({"colour": "#1f6feb"}, "settings.colour"),
    ({"other": {"nested": [1]}}, "settings.other"),
]


@pytest.mark.parametrize(("settings", "field"), BAD)
def test_bad_values_are_refused_by_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_widget_settings({"greeting": "fine", **settings})
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


def test_public_keys_leave_out_the_operators_business() -> None:
    assert set(PUBLIC_KEYS) == {
        "greeting",
        "color",
        "locale",
        "require_verification",
        "prechat",
        "away_message",
    }


# -- availability -------------------------------------------------------------

MONDAY_10 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
MONDAY_18 = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)  # 18:00 in Berlin
AWAY = "We are away; leave a message."

AVAILABILITY: list[tuple[dict[str, Any], datetime, bool, dict[str, Any]]] = [
    # No business hours: always open; the away message only when nobody is online.
    ({}, MONDAY_18, True, {"open_now": True, "next_open_at": None, "away_message": None}),
    (
        {"away_message": AWAY},
        MONDAY_18,
        True,
        {"open_now": True, "next_open_at": None, "away_message": None},
    ),
    (
        {"away_message": AWAY},
        MONDAY_18,
        False,
        {"open_now": True, "next_open_at": None, "away_message": AWAY},
    ),
    # Within hours.
    (
        {"business_hours": HOURS, "away_message": AWAY},
        MONDAY_10,
        True,
        {"open_now": True, "next_open_at": None, "away_message": None},
    ),
    (
        {"business_hours": HOURS, "away_message": AWAY},
        MONDAY_10,
        False,
        {"open_now": True, "next_open_at": None, "away_message": AWAY},
    ),
    # After hours: closed even with agents online; opens next Monday 09:00 CET.
    (
        {"business_hours": HOURS, "away_message": AWAY},
        MONDAY_18,
        True,
        {"open_now": False, "next_open_at": "2026-01-12T08:00:00+00:00", "away_message": AWAY},
    ),
    (
        {"business_hours": HOURS},
        MONDAY_18,
        False,
        {"open_now": False, "next_open_at": "2026-01-12T08:00:00+00:00", "away_message": None},
    ),
    # Closed with no opening in 14 days.
    (
        {"business_hours": {"timezone": "UTC", "weekly": {}}},
        MONDAY_10,
        True,
        {"open_now": False, "next_open_at": None, "away_message": None},
    ),
    # A blank away message is no message.
    (
        {"away_message": "  "},
        MONDAY_10,
        False,
        {"open_now": True, "next_open_at": None, "away_message": None},
    ),
    # Stored before settings were checked: unusable hours count as none.
    (
        {"business_hours": {"timezone": "Nowhere"}},
        MONDAY_18,
        True,
        {"open_now": True, "next_open_at": None, "away_message": None},
    ),
]


@pytest.mark.parametrize(("settings", "now", "online", "expected"), AVAILABILITY)
def test_availability(
    settings: dict[str, Any], now: datetime, online: bool, expected: dict[str, Any]
) -> None:
    assert availability(settings, now, agents_online=online) == {
        "agents_online": online,
        **expected,
    }
