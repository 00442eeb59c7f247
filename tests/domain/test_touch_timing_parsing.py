"""Touchpoint timing settings: each parser reads the good shapes, refuses
the bad ones naming the exact field, and round-trips with its `*_json`."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_timing import (
    DEFAULT_MARKETING_CAPS,
    AfterDelay,
    AtLocalDelay,
    FrequencyCap,
    QuietHours,
    RelativeDelay,
    caps_json,
    delay_json,
    duration_json,
    parse_caps,
    parse_delay,
    parse_quiet_hours,
    parse_zone,
    quiet_hours_json,
)

F = "steps[0].delay"


def refused(call: Any, *args: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    assert caught.value.field is not None
    assert caught.value.message.startswith(caught.value.field + ": ")
    return caught.value


# -- delays -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ({"after": 14400}, 14400),
        ({"after": 0}, 0),
        ({"after": "90s"}, 90),
        ({"after": "10m"}, 600),
        ({"after": "4h"}, 14400),
        ({"after": "3d"}, 3 * 86400),
        ({"after": "2w"}, 14 * 86400),  # the unit segments take too
        ({"after": "366d"}, 366 * 86400),
        ({"after": 366 * 86400}, 366 * 86400),
        ({"after": "0s"}, 0),
    ],
)
def test_after_delays_read_seconds_and_units(raw: Any, seconds: int) -> None:
    assert parse_delay(raw, F) == AfterDelay(seconds)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"after": -1}, f"{F}.after"),
        ({"after": 366 * 86400 + 1}, f"{F}.after"),
        ({"after": "367d"}, f"{F}.after"),
        ({"after": "4 h"}, f"{F}.after"),
        ({"after": "4H"}, f"{F}.after"),
        ({"after": "53w"}, f"{F}.after"),  # weeks are fine, but 53 is over a year
        ({"after": "4W"}, f"{F}.after"),
        ({"after": "h"}, f"{F}.after"),
        ({"after": "1h30m"}, f"{F}.after"),
        ({"after": "-4h"}, f"{F}.after"),
        ({"after": "४h"}, f"{F}.after"),  # a non-ASCII digit
        ({"after": "9999999999s"}, f"{F}.after"),
        ({"after": 1.5}, f"{F}.after"),
        ({"after": True}, f"{F}.after"),
        ({"after": None}, f"{F}.after"),
        ({"after": "14400"}, f"{F}.after"),
        ({"after": "4h", "day_offset": 1}, f"{F}.day_offset"),
        ({"after": "4h", "at_local": "09:00"}, f"{F}.at_local"),
        ({}, F),
        ({"day_offset": 1}, F),
        ([], F),
        ("4h", F),
        (None, F),
    ],
)
def test_bad_after_delays_name_the_field(raw: Any, field: str) -> None:
    assert refused(parse_delay, raw, F).field == field


def test_at_local_delays() -> None:
    assert parse_delay({"at_local": "09:30", "day_offset": 1}, F) == AtLocalDelay(time(9, 30), 1)
    assert parse_delay({"at_local": "00:00"}, F) == AtLocalDelay(time(0, 0), 0)
    assert parse_delay({"at_local": "23:59", "day_offset": 366}, F) == AtLocalDelay(
        time(23, 59), 366
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"at_local": "24:00"}, f"{F}.at_local"),
        ({"at_local": "9:30"}, f"{F}.at_local"),
        ({"at_local": "09:60"}, f"{F}.at_local"),
        ({"at_local": "09:30:00"}, f"{F}.at_local"),
        ({"at_local": 930}, f"{F}.at_local"),
        ({"at_local": None}, f"{F}.at_local"),
        ({"at_local": "09:30", "day_offset": -1}, f"{F}.day_offset"),
        ({"at_local": "09:30", "day_offset": 367}, f"{F}.day_offset"),
        ({"at_local": "09:30", "day_offset": "1"}, f"{F}.day_offset"),
        ({"at_local": "09:30", "day_offset": False}, f"{F}.day_offset"),
        ({"at_local": "09:30", "offset_days": 1}, f"{F}.offset_days"),
        ({"at_local": "09:30", "zone": "UTC"}, f"{F}.zone"),
    ],
)
def test_bad_at_local_delays_name_the_field(raw: Any, field: str) -> None:
    assert refused(parse_delay, raw, F).field == field


def test_relative_delays() -> None:
    raw: JsonValue = {"relative_to": "birthday", "offset_days": 0, "at_local": "09:00"}
    assert parse_delay(raw, F) == RelativeDelay("birthday", 0, time(9, 0))
    raw = {"relative_to": "signup.date", "offset_days": -3, "at_local": "18:15"}
    assert parse_delay(raw, F) == RelativeDelay("signup.date", -3, time(18, 15))
    assert parse_delay({"relative_to": "b", "at_local": "09:00"}, F) == RelativeDelay(
        "b", 0, time(9, 0)
    )


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"relative_to": "birthday"}, f"{F}.at_local"),
        ({"relative_to": "birthday", "at_local": "9am"}, f"{F}.at_local"),
        ({"relative_to": "", "at_local": "09:00"}, f"{F}.relative_to"),
        ({"relative_to": "1st", "at_local": "09:00"}, f"{F}.relative_to"),
        ({"relative_to": "a b", "at_local": "09:00"}, f"{F}.relative_to"),
        ({"relative_to": "x" * 65, "at_local": "09:00"}, f"{F}.relative_to"),
        ({"relative_to": 7, "at_local": "09:00"}, f"{F}.relative_to"),
        ({"relative_to": "b", "at_local": "09:00", "offset_days": 367}, f"{F}.offset_days"),
        ({"relative_to": "b", "at_local": "09:00", "offset_days": -367}, f"{F}.offset_days"),
        ({"relative_to": "b", "at_local": "09:00", "offset_days": 0.5}, f"{F}.offset_days"),
        ({"relative_to": "b", "at_local": "09:00", "day_offset": 1}, f"{F}.day_offset"),
        ({"relative_to": "b", "at_local": "09:00", "after": "1h"}, f"{F}.after"),
    ],
)
def test_bad_relative_delays_name_the_field(raw: Any, field: str) -> None:
    assert refused(parse_delay, raw, F).field == field


def test_error_messages_say_what_is_wrong() -> None:
    error = refused(parse_delay, {"at_local": "25:00"}, F)
    assert error.message == "steps[0].delay.at_local: '25:00' is not a HH:MM time"
    error = refused(parse_delay, {"after": "400d"}, F)
    assert error.message == "steps[0].delay.after: must be between 0s and 366d"


@pytest.mark.parametrize(
    "delay",
    [
        AfterDelay(0),
        AfterDelay(59),
        AfterDelay(90),
        AfterDelay(5400),
        AfterDelay(14400),
        AfterDelay(3 * 86400),
        AfterDelay(86401),
        AtLocalDelay(time(9, 30), 0),
        AtLocalDelay(time(0, 5), 366),
        RelativeDelay("birthday", -366, time(23, 59)),
        RelativeDelay("signup_anniversary", 7, time(0, 0)),
    ],
)
def test_delays_round_trip(delay: AfterDelay | AtLocalDelay | RelativeDelay) -> None:
    assert parse_delay(delay_json(delay), F) == delay


def test_durations_are_written_in_the_largest_exact_unit() -> None:
    assert [duration_json(s) for s in (0, 59, 60, 90, 5400, 14400, 86400, 90000)] == [
        "0s",
        "59s",
        "1m",
        "90s",
        "90m",
        "4h",
        "1d",
        "25h",
    ]


# -- quiet hours ------------------------------------------------------------

Q = "settings.quiet_hours"


def test_quiet_hours() -> None:
    assert parse_quiet_hours(None, Q) is None
    wrapping = parse_quiet_hours({"start": "21:00", "end": "08:00"}, Q)
    assert wrapping == QuietHours(time(21, 0), time(8, 0))
    assert wrapping.wraps
    daytime = parse_quiet_hours({"start": "12:00", "end": "13:30"}, Q)
    assert daytime == QuietHours(time(12, 0), time(13, 30))
    assert not daytime.wraps
    for quiet in (wrapping, daytime):
        assert parse_quiet_hours(quiet_hours_json(quiet), Q) == quiet


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"start": "21:00", "end": "21:00"}, f"{Q}.end"),
        ({"start": "21:00"}, f"{Q}.end"),
        ({"end": "08:00"}, f"{Q}.start"),
        ({"start": "21:00", "end": "24:00"}, f"{Q}.end"),
        ({"start": "2100", "end": "08:00"}, f"{Q}.start"),
        ({"start": "21:00", "end": "08:00", "zone": "UTC"}, f"{Q}.zone"),
        ("21:00-08:00", Q),
        ([], Q),
        (False, Q),
    ],
)
def test_bad_quiet_hours_name_the_field(raw: Any, field: str) -> None:
    assert refused(parse_quiet_hours, raw, Q).field == field


# -- caps -------------------------------------------------------------------

C = "settings.caps"


def test_caps() -> None:
    raw: JsonValue = [{"count": 1, "window": "16h"}, {"count": 3, "window": 7 * 86400}]
    assert parse_caps(raw, C) == DEFAULT_MARKETING_CAPS
    assert parse_caps([], C) == ()
    assert parse_caps(caps_json(DEFAULT_MARKETING_CAPS), C) == DEFAULT_MARKETING_CAPS
    assert caps_json(DEFAULT_MARKETING_CAPS) == [
        {"count": 1, "window": "16h"},
        {"count": 3, "window": "7d"},
    ]
    assert parse_caps([{"count": 1000, "window": "1s"}] * 5, C) == (FrequencyCap(1000, 1),) * 5


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (None, C),
        ({"count": 1, "window": "16h"}, C),
        ("1/16h", C),
        ([{"count": 1, "window": "16h"}] * 6, C),
        ([{"count": 1, "window": "16h"}, 3], f"{C}[1]"),
        ([{"count": 0, "window": "16h"}], f"{C}[0].count"),
        ([{"count": 1001, "window": "16h"}], f"{C}[0].count"),
        ([{"count": "1", "window": "16h"}], f"{C}[0].count"),
        ([{"window": "16h"}], f"{C}[0].count"),
        ([{"count": 1}], f"{C}[0].window"),
        ([{"count": 1, "window": 0}], f"{C}[0].window"),
        ([{"count": 1, "window": "0s"}], f"{C}[0].window"),
        ([{"count": 1, "window": "367d"}], f"{C}[0].window"),
        ([{"count": 1, "window": "16 hours"}], f"{C}[0].window"),
        ([{"count": 1, "window": "16h", "kind": "email"}], f"{C}[0].kind"),
    ],
)
def test_bad_caps_name_the_field(raw: Any, field: str) -> None:
    assert refused(parse_caps, raw, C).field == field


# -- zones ------------------------------------------------------------------


def test_zones_are_the_business_hours_reading() -> None:
    assert parse_zone("Europe/Berlin", "contact.timezone").key == "Europe/Berlin"
    for bad in ("Mars/Olympus", "localtime", "", None, 3, "../etc/passwd"):
        assert refused(parse_zone, bad, "contact.timezone").field == "contact.timezone"
