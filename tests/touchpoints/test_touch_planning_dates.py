"""The pure planning rules (server.domain.touch_planning): a broadcast's
local time in each zone across DST, when its planning job is due, yearly
date attributes with Feb 29 and lead days, the local day of an entry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from server.domain.touch_planning import (
    AnnualDate,
    broadcast_at,
    broadcast_plan_due,
    local_day,
    next_occurrence,
    occurrence_due,
    parse_annual_date,
)

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
TOKYO, UTC_ZONE = ZoneInfo("Asia/Tokyo"), ZoneInfo("UTC")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_broadcast_is_ten_on_each_contacts_own_clock() -> None:
    assert broadcast_at("2026-12-20T10:00", BERLIN) == utc(2026, 12, 20, 9)
    assert broadcast_at("2026-12-20T10:00", NEW_YORK) == utc(2026, 12, 20, 15)
    assert broadcast_at("2026-12-20T10:00", TOKYO) == utc(2026, 12, 20, 1)
    # Summer time: the same wall clock is another UTC instant.
    assert broadcast_at("2026-07-01T10:00", BERLIN) == utc(2026, 7, 1, 8)


def test_a_time_skipped_by_the_spring_switch_is_the_end_of_the_gap() -> None:
    # 2027-03-14 02:30 does not exist in New York: the clock jumps from
    # 02:00 EST to 03:00 EDT (07:00Z), the first instant after the gap.
    assert broadcast_at("2027-03-14T02:30", NEW_YORK) == utc(2027, 3, 14, 7)
    # 01:30 on 2026-11-01 happens twice there: the first (EDT) is taken.
    assert broadcast_at("2026-11-01T01:30", NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_the_plan_is_due_26_hours_before_the_earliest_zone() -> None:
    now = utc(2026, 12, 1)
    # 10:00 comes first at UTC+14: 2026-12-19T20:00Z; 26 h before that.
    assert broadcast_plan_due("2026-12-20T10:00", now) == utc(2026, 12, 18, 18)
    late = utc(2026, 12, 20, 3)
    assert broadcast_plan_due("2026-12-20T10:00", late) == late


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1990-05-17", AnnualDate(5, 17, 1990)),
        ("05-17", AnnualDate(5, 17)),
        ("--05-17", AnnualDate(5, 17)),
        ("2025-03-01T12:00:00Z", AnnualDate(3, 1, 2025)),
        ("2000-02-29", AnnualDate(2, 29, 2000)),
        ("02-29", AnnualDate(2, 29)),
        ("1999-02-29", None),
        ("02-30", None),
        ("13-01", None),
        ("yesterday", None),
        ("1990-05-170", None),
        (19900517, None),
        (None, None),
    ],
)
def test_date_attributes_are_read_as_yearly_dates(value: object, parsed: AnnualDate | None) -> None:
    assert parse_annual_date(value) == parsed


def test_the_next_occurrence_is_a_day_in_the_contacts_zone() -> None:
    birthday = AnnualDate(5, 17, 1990)
    # 15:30Z on May 16 is already May 17 in Tokyo: today is the day.
    now = utc(2027, 5, 16, 15, 30)
    tokyo = next_occurrence(birthday, TOKYO, now)
    assert (tokyo.year, tokyo.day) == (2027, date(2027, 5, 17))
    assert tokyo.starts_at == utc(2027, 5, 16, 15)
    # The day after it, the next one is a year away and not due.
    after = utc(2027, 5, 18, 15, 30)
    assert next_occurrence(birthday, TOKYO, after).year == 2028
    assert occurrence_due(birthday, TOKYO, after) is None
    # Within 48 h of its local midnight it is due.
    assert occurrence_due(birthday, TOKYO, utc(2027, 5, 14, 16)) is not None
    assert occurrence_due(birthday, TOKYO, utc(2027, 5, 14, 14)) is None


def test_feb_29_is_kept_on_feb_28_in_other_years() -> None:
    leapling = AnnualDate(2, 29, 2000)
    common = next_occurrence(leapling, UTC_ZONE, utc(2027, 2, 1))
    assert (common.year, common.day) == (2027, date(2027, 2, 28))
    leap = next_occurrence(leapling, UTC_ZONE, utc(2028, 2, 1))
    assert (leap.year, leap.day) == (2028, date(2028, 2, 29))
    assert next_occurrence(leapling, UTC_ZONE, utc(2027, 3, 1)).day == date(2028, 2, 29)


def test_an_anniversary_starts_a_year_after_the_date() -> None:
    signup = AnnualDate(12, 7, 2026)
    assert next_occurrence(signup, UTC_ZONE, utc(2026, 12, 7, 12)).year == 2027


def test_lead_days_plan_ahead_of_the_first_steps_day() -> None:
    birthday = AnnualDate(5, 17)
    # "3 days before": planned for May 14, still the 2027 birthday.
    found = next_occurrence(birthday, UTC_ZONE, utc(2027, 5, 13), lead_days=-3)
    assert (found.year, found.starts_at) == (2027, utc(2027, 5, 14))
    # On May 15 that day has passed: the next is 2028's.
    assert next_occurrence(birthday, UTC_ZONE, utc(2027, 5, 15), lead_days=-3).year == 2028
    # "A week after" a late-December date is planned in the next January.
    found = next_occurrence(AnnualDate(12, 30), UTC_ZONE, utc(2028, 1, 2), lead_days=7)
    assert (found.year, found.starts_at) == (2027, utc(2028, 1, 6))


def test_an_entry_belongs_to_the_local_day() -> None:
    at = utc(2026, 12, 7, 23, 30)
    assert local_day(at, BERLIN) == date(2026, 12, 8)
    assert local_day(at, NEW_YORK) == date(2026, 12, 7)
