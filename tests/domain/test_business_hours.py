"""Business hours: parsing refuses bad input by field; `is_open` and
`next_opening` follow the office's wall clock through DST switches and
holidays (checked against fixed instants and, by property, against a
minute-by-minute scan)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.business_hours import (
    DAYS,
    BusinessHours,
    is_open,
    next_opening,
    parse_business_hours,
)
from server.domain.errors import InvalidInput

F = "settings.business_hours"
OFFICE = {"mon": [["09:00", "17:30"]], "tue": [["09:00", "17:30"]], "wed": [["09:00", "17:30"]]}
OFFICE |= {"thu": [["09:00", "17:30"]], "fri": [["09:00", "12:00"], ["13:00", "17:30"]]}


def hours(weekly: dict[str, Any], tz: str = "Europe/Berlin", holidays: Any = ()) -> BusinessHours:
    return parse_business_hours({"timezone": tz, "weekly": weekly, "holidays": list(holidays)})


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- parsing ----------------------------------------------------------------


def test_parse_gives_the_canonical_form() -> None:
    parsed = parse_business_hours(
        {
            "timezone": "Europe/Berlin",
            "weekly": {"tue": [["13:00", "24:00"], ["08:00", "12:00"], ["12:00", "13:00"]]},
            "holidays": ["2026-12-26", "2026-12-25", "2026-12-26"],
        }
    )
    assert parsed.to_settings() == {
        "timezone": "Europe/Berlin",
        "weekly": {
            "mon": [],
            "tue": [["08:00", "12:00"], ["12:00", "13:00"], ["13:00", "24:00"]],
            "wed": [],
            "thu": [],
            "fri": [],
            "sat": [],
            "sun": [],
        },
        "holidays": ["2026-12-25", "2026-12-26"],
    }
    assert parse_business_hours(parsed.to_settings()) == parsed
    assert parse_business_hours({"timezone": "UTC", "weekly": {}}).holidays == frozenset()


BAD: list[tuple[Any, str]] = [
    ([], F),
    ({"timezone": "UTC", "weekly": {}, "tz": "UTC"}, f"{F}.tz"),
    ({"weekly": {}}, f"{F}.timezone"),
    ({"timezone": "UTC"}, f"{F}.weekly"),
    ({"timezone": "Mars/Olympus_Mons", "weekly": {}}, f"{F}.timezone"),
    ({"timezone": "europe/berlin", "weekly": {}}, f"{F}.timezone"),
    ({"timezone": "America", "weekly": {}}, f"{F}.timezone"),
    ({"timezone": "../../etc/passwd", "weekly": {}}, f"{F}.timezone"),
    ({"timezone": "/etc/localtime", "weekly": {}}, f"{F}.timezone"),
    ({"timezone": "localtime", "weekly": {}}, f"{F}.timezone"),
    ({"timezone": "", "weekly": {}}, f"{F}.timezone"),
    ({"timezone": 1, "weekly": {}}, f"{F}.timezone"),
    ({"timezone": "UTC", "weekly": []}, f"{F}.weekly"),
    ({"timezone": "UTC", "weekly": {"monday": []}}, f"{F}.weekly.monday"),
    ({"timezone": "UTC", "weekly": {"mon": "09:00-17:00"}}, f"{F}.weekly.mon"),
    ({"timezone": "UTC", "weekly": {"mon": [["9:00", "17:00"]]}}, f"{F}.weekly.mon[0]"),
    ({"timezone": "UTC", "weekly": {"mon": [["09:00", "17:60"]]}}, f"{F}.weekly.mon[0]"),
    ({"timezone": "UTC", "weekly": {"mon": [["09:00", "25:00"]]}}, f"{F}.weekly.mon[0]"),
    ({"timezone": "UTC", "weekly": {"mon": [["24:00", "24:00"]]}}, f"{F}.weekly.mon[0]"),
    ({"timezone": "UTC", "weekly": {"mon": [["09:00", 1700]]}}, f"{F}.weekly.mon[0]"),
    ({"timezone": "UTC", "weekly": {"mon": [["09:00"]]}}, f"{F}.weekly.mon[0]"),
    ({"timezone": "UTC", "weekly": {"mon": [["09:00", "10:00", "11:00"]]}}, f"{F}.weekly.mon[0]"),
    ({"timezone": "UTC", "weekly": {"tue": [["09:00", "09:00"]]}}, f"{F}.weekly.tue[0]"),
    ({"timezone": "UTC", "weekly": {"sat": [["22:00", "02:00"]]}}, f"{F}.weekly.sat[0]"),
    (
        {"timezone": "UTC", "weekly": {"wed": [["08:00", "09:00"], ["13:00", "12:00"]]}},
        f"{F}.weekly.wed[1]",
    ),
    (
        {"timezone": "UTC", "weekly": {"mon": [["09:00", "12:00"], ["11:59", "13:00"]]}},
        f"{F}.weekly.mon",
    ),
    (
        {"timezone": "UTC", "weekly": {"mon": [["09:00", "12:00"], ["09:00", "12:00"]]}},
        f"{F}.weekly.mon",
    ),
    (
        {"timezone": "UTC", "weekly": {"sun": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(7)]}},
        f"{F}.weekly.sun",
    ),
    ({"timezone": "UTC", "weekly": {}, "holidays": "2026-12-25"}, f"{F}.holidays"),
    (
        {"timezone": "UTC", "weekly": {}, "holidays": ["2026-12-25", "2026-02-30"]},
        f"{F}.holidays[1]",
    ),
    ({"timezone": "UTC", "weekly": {}, "holidays": ["20261225"]}, f"{F}.holidays[0]"),
    ({"timezone": "UTC", "weekly": {}, "holidays": ["25.12.2026"]}, f"{F}.holidays[0]"),
    ({"timezone": "UTC", "weekly": {}, "holidays": [20261225]}, f"{F}.holidays[0]"),
    ({"timezone": "UTC", "weekly": {}, "holidays": ["2026-01-01"] * 401}, f"{F}.holidays"),
]


@pytest.mark.parametrize(("raw", "field"), BAD)
def test_bad_input_is_refused_by_field(raw: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_business_hours(raw)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


def test_the_field_prefix_is_the_callers() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_business_hours({"timezone": "UTC", "weekly": {"fri": 1}}, "hours")
    assert caught.value.field == "hours.weekly.fri"


def test_touching_ranges_and_a_day_open_to_midnight_are_fine() -> None:
    h = hours({"mon": [["00:00", "12:00"], ["12:00", "24:00"]]}, "UTC")
    assert is_open(h, utc(2026, 1, 5, 0, 0))
    assert is_open(h, utc(2026, 1, 5, 12, 0))
    assert is_open(h, utc(2026, 1, 5, 23, 59, 59))
    assert not is_open(h, utc(2026, 1, 6, 0, 0))


# -- open or closed at fixed instants ---------------------------------------

OPEN_AT: list[tuple[datetime, bool]] = [
    # Monday 5 January 2026, Berlin on CET (UTC+1).
    (utc(2026, 1, 5, 7, 59, 59), False),
    (utc(2026, 1, 5, 8, 0), True),
    (utc(2026, 1, 5, 16, 29, 59), True),
    (utc(2026, 1, 5, 16, 30), False),
    # Friday's lunch break.
    (utc(2026, 1, 9, 10, 59), True),
    (utc(2026, 1, 9, 11, 0), False),
    (utc(2026, 1, 9, 12, 0), True),
    # Saturday and Sunday: no ranges.
    (utc(2026, 1, 10, 10, 0), False),
    (utc(2026, 1, 11, 10, 0), False),
    # Monday 6 July 2026, CEST (UTC+2): the same wall clock, an hour earlier in UTC.
    (utc(2026, 7, 6, 6, 59), False),
    (utc(2026, 7, 6, 7, 0), True),
    (utc(2026, 7, 6, 15, 29), True),
    (utc(2026, 7, 6, 15, 30), False),
]


@pytest.mark.parametrize(("now", "expected"), OPEN_AT)
def test_is_open_uses_the_local_wall_clock(now: datetime, expected: bool) -> None:
    assert is_open(hours(OFFICE), now) is expected


def test_now_in_any_zone_means_the_same_instant() -> None:
    tokyo = utc(2026, 1, 5, 8, 0).astimezone(ZoneInfo("Asia/Tokyo"))
    assert is_open(hours(OFFICE), tokyo)
    assert next_opening(hours(OFFICE), tokyo) == utc(2026, 1, 5, 8, 0)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(hours(OFFICE), datetime(2026, 1, 5, 9, 0))
    with pytest.raises(ValueError, match="aware"):
        next_opening(hours(OFFICE), datetime(2026, 1, 5, 9, 0))


# -- next opening -----------------------------------------------------------

NEXT: list[tuple[str, dict[str, Any], list[str], datetime, datetime | None]] = [
    # Open now: now itself.
    ("Europe/Berlin", OFFICE, [], utc(2026, 1, 5, 9, 0), utc(2026, 1, 5, 9, 0)),
    # Monday evening -> Tuesday 09:00 CET.
    ("Europe/Berlin", OFFICE, [], utc(2026, 1, 5, 17, 0), utc(2026, 1, 6, 8, 0)),
    # Friday's lunch -> 13:00 the same day.
    ("Europe/Berlin", OFFICE, [], utc(2026, 1, 9, 11, 30), utc(2026, 1, 9, 12, 0)),
    # Friday evening -> Monday.
    ("Europe/Berlin", OFFICE, [], utc(2026, 1, 9, 17, 0), utc(2026, 1, 12, 8, 0)),
    # Spring forward, Sunday 29 March 2026 (02:00 CET -> 03:00 CEST at 01:00 UTC):
    # Sunday's 09:00 is 07:00 UTC, not 08:00.
    ("Europe/Berlin", {"sun": [["09:00", "17:00"]]}, [], utc(2026, 3, 28, 12), utc(2026, 3, 29, 7)),
    # A range starting in the skipped hour opens when the clock jumps (03:00 CEST).
    ("Europe/Berlin", {"sun": [["02:30", "04:00"]]}, [], utc(2026, 3, 28, 12), utc(2026, 3, 29, 1)),
    # Fall back, Sunday 25 October 2026 (03:00 CEST -> 02:00 CET at 01:00 UTC): the
    # repeated half hour 02:00-02:30 is open twice; between the two it reopens.
    (
        "Europe/Berlin",
        {"sun": [["02:00", "02:30"]]},
        [],
        utc(2026, 10, 24, 12),
        utc(2026, 10, 25, 0),
    ),
    (
        "Europe/Berlin",
        {"sun": [["02:00", "02:30"]]},
        [],
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1),
    ),
    (
        "Europe/Berlin",
        {"sun": [["09:00", "17:00"]]},
        [],
        utc(2026, 10, 24, 12),
        utc(2026, 10, 25, 8),
    ),
    # New York springs forward on Sunday 8 March 2026 at 02:00 EST.
    (
        "America/New_York",
        {"sun": [["09:00", "17:00"]]},
        [],
        utc(2026, 3, 7, 12),
        utc(2026, 3, 8, 13),
    ),
    # Holiday: Christmas Friday is skipped, next is Monday 28 December.
    ("Europe/Berlin", OFFICE, ["2026-12-25"], utc(2026, 12, 24, 17), utc(2026, 12, 28, 8)),
    # Fourteen days ahead exactly is still found; three weeks is too far.
    (
        "UTC",
        {"mon": [["08:00", "09:00"]]},
        ["2026-01-05", "2026-01-12"],
        utc(2026, 1, 5, 8),
        utc(2026, 1, 19, 8),
    ),
    ("UTC", {"mon": [["08:00", "09:00"]]}, ["2026-01-12"], utc(2026, 1, 5, 9), utc(2026, 1, 19, 8)),
    ("UTC", {"mon": [["08:00", "09:00"]]}, ["2026-01-12", "2026-01-19"], utc(2026, 1, 5, 9), None),
    # Never open.
    ("UTC", {}, [], utc(2026, 1, 5, 9), None),
]


@pytest.mark.parametrize(("tz", "weekly", "holidays", "now", "expected"), NEXT)
def test_next_opening(
    tz: str, weekly: dict[str, Any], holidays: list[str], now: datetime, expected: datetime | None
) -> None:
    h = hours(weekly, tz, holidays)
    found = next_opening(h, now)
    assert found == expected
    if found is not None:
        assert found.tzinfo is UTC and is_open(h, found)
        assert found == now or not is_open(h, found - timedelta(seconds=1))


def test_dst_switch_days_open_and_close_on_the_wall_clock() -> None:
    h = hours({"sun": [["02:30", "04:00"]]})
    # Spring forward: 01:59:59 CET, then 03:00 CEST.
    assert not is_open(h, utc(2026, 3, 29, 0, 59, 59))
    assert is_open(h, utc(2026, 3, 29, 1, 0))
    assert is_open(h, utc(2026, 3, 29, 1, 59, 59))
    assert not is_open(h, utc(2026, 3, 29, 2, 0))
    # Fall back: 02:30-02:59 CEST, then the clock shows 02:00 CET (before the
    # range) and reaches 02:30 again; 04:00 CET closes.
    assert is_open(h, utc(2026, 10, 25, 0, 30))
    assert is_open(h, utc(2026, 10, 25, 0, 59, 59))
    assert not is_open(h, utc(2026, 10, 25, 1, 0))
    assert is_open(h, utc(2026, 10, 25, 1, 30))
    assert is_open(h, utc(2026, 10, 25, 2, 59, 59))
    assert not is_open(h, utc(2026, 10, 25, 3, 0))
    assert next_opening(h, utc(2026, 10, 25, 1, 0)) == utc(2026, 10, 25, 1, 30)


def test_a_holiday_is_a_local_date() -> None:
    # Auckland is UTC+13 in December: 20:00 UTC on the 24th is the 25th there.
    h = hours({d: [["08:00", "18:00"]] for d in DAYS}, "Pacific/Auckland", ["2026-12-25"])
    assert not is_open(h, utc(2026, 12, 24, 20, 0))
    assert is_open(h, utc(2026, 12, 23, 20, 0))  # 09:00 on the 24th
    assert next_opening(h, utc(2026, 12, 24, 20, 0)) == utc(2026, 12, 25, 19, 0)


# -- property: next_opening agrees with a minute-by-minute scan ---------------

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",  # DST switches at midnight
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Pacific/Chatham",  # UTC+12:45 / +13:45
    "Asia/Kathmandu",
    "UTC",
]
# Days near 2026's DST switches in those zones, so the scan crosses them.
NEAR = [
    utc(2026, 3, 27),
    utc(2026, 3, 6),
    utc(2026, 4, 3),
    utc(2026, 9, 4),
    utc(2026, 10, 2),
    utc(2026, 10, 23),
    utc(2026, 10, 30),
    utc(2026, 1, 5),
]


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    weekly: dict[str, Any] = {}
    for day in DAYS:
        points = sorted(draw(st.sets(st.sampled_from(range(0, 24 * 60 + 1, 15)), max_size=4)))
        pairs = list(zip(points[::2], points[1::2], strict=False))
        weekly[day] = [
            [f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"] for a, b in pairs
        ]
    return weekly


def scan(h: BusinessHours, now: datetime) -> datetime | None:
    for minute in range(14 * 24 * 60 + 1):
        at = now + timedelta(minutes=minute)
        if is_open(h, at):
            return at
    return None


@settings(max_examples=60, deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    weekly=schedules(),
    base=st.sampled_from(NEAR),
    minutes=st.integers(0, 4 * 24 * 60),
    holidays=st.lists(st.integers(0, 20), max_size=3),
)
def test_next_opening_matches_a_scan(
    tz: str, weekly: dict[str, Any], base: datetime, minutes: int, holidays: list[int]
) -> None:
    now = base + timedelta(minutes=minutes)
    days = [(base.date() + timedelta(days=n)).isoformat() for n in holidays]
    h = hours(weekly, tz, days)
    assert next_opening(h, now) == scan(h, now)


@given(weekly=schedules(), tz=st.sampled_from(ZONES))
def test_canonical_form_round_trips(weekly: dict[str, Any], tz: str) -> None:
    h = hours(weekly, tz, [date(2026, 12, 25).isoformat()])
    assert parse_business_hours(h.to_settings()) == h
