"""Workspace touchpoint settings: defaults, parsing by field, round trip."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.touch_settings import (
    DEFAULTS,
    ConsentMode,
    parse_touch_settings,
    settings_json,
    touch_settings_of,
)
from server.domain.touch_timing import DEFAULT_MARKETING_CAPS, FrequencyCap


def test_absent_settings_are_the_defaults() -> None:
    settings = touch_settings_of({})
    assert settings == DEFAULTS
    assert settings.timezone == "UTC"
    assert settings.caps_for("marketing") == DEFAULT_MARKETING_CAPS
    assert settings.caps_for("service") == (FrequencyCap(2, 24 * 3600),)
    assert settings.caps_for("transactional") == ()
    assert (settings.quiet_hours.start, settings.quiet_hours.end) == (time(21), time(8))
    assert settings.consent is ConsentMode.OPT_OUT


def test_settings_parse_and_round_trip() -> None:
    raw: Any = {
        "timezone": "Europe/Berlin",
        "caps": {"marketing": [{"count": 2, "window": "1d"}], "service": []},
        "quiet_hours": {"start": "22:00", "end": "07:30"},
        "consent": "opt_in",
    }
    settings = parse_touch_settings(raw)
    assert settings.zone.key == "Europe/Berlin"
    assert settings.caps_for("marketing") == (FrequencyCap(2, 86400),)
    assert settings.caps_for("service") == ()
    assert settings.consent is ConsentMode.OPT_IN
    assert parse_touch_settings(settings_json(settings)) == settings


def test_a_patch_keeps_what_it_leaves_out() -> None:
    base = parse_touch_settings({"timezone": "Asia/Tokyo"})
    assert parse_touch_settings({"consent": "opt_in"}, base=base).timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "touchpoints.timezone"),
        ({"caps": {"transactional": []}}, "touchpoints.caps.transactional"),
        (
            {"caps": {"marketing": [{"count": 0, "window": "1d"}]}},
            "touchpoints.caps.marketing[0].count",
        ),
        ({"quiet_hours": None}, "touchpoints.quiet_hours"),
        ({"consent": "maybe"}, "touchpoints.consent"),
        ({"colour": "red"}, "touchpoints.colour"),
    ],
)
def test_bad_settings_name_their_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_touch_settings(raw)  # type: ignore[arg-type]
    assert err.value.field == field


def test_unreadable_stored_settings_fall_back_to_the_defaults() -> None:
    assert touch_settings_of({"touchpoints": {"timezone": 7}}) == DEFAULTS
