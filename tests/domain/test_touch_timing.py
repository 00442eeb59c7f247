"""When a touchpoint step is due and when quiet hours let it go: wall-clock
times in the contact's zone through the 2026 DST switches of Berlin and New
York, birthdays (Feb 29, the year's end), and the zone a contact is in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.json_types import JsonValue
from server.domain.touch_guards import (
    in_quiet_hours,
    local_instant,
    quiet_until,
    resolve_zone,
    step_due_at,
)
from server.domain.touch_timing import AfterDelay, AtLocalDelay, QuietHours, RelativeDelay

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NIGHT = QuietHours(time(21, 0), time(8, 0))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def at_local(wall: str, offset: int, anchor: datetime, zone: ZoneInfo = BERLIN) -> datetime | None:
    hour, minute = map(int, wall.split(":"))
    return step_due_at(
        AtLocalDelay(time(hour, minute), offset), anchor=anchor, zone=zone, attributes={}
    )


# -- zones ------------------------------------------------------------------


def test_the_first_valid_zone_wins() -> None:
    assert resolve_zone("Europe/Berlin", "America/New_York", "Asia/Tokyo").key == "Europe/Berlin"
    assert resolve_zone(None, "America/New_York", "Asia/Tokyo").key == "America/New_York"
    assert resolve_zone(None, None, "Asia/Tokyo").key == "Asia/Tokyo"


def test_invalid_zones_are_skipped_and_utc_is_the_default() -> None:
    assert resolve_zone("Mars/Olympus", "", "Asia/Tokyo").key == "Asia/Tokyo"
    assert resolve_zone("localtime", "../../etc/passwd", "/etc/localtime").key == "UTC"
    assert resolve_zone("Europe", "x" * 500, "\0").key == "UTC"
    assert resolve_zone(None, None, None).key == "UTC"


# -- local instants ---------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected"),
    [
        # Berlin springs forward at 01:00 UTC: 02:00 CET becomes 03:00 CEST.
        (BERLIN, date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1, 0)),
        (BERLIN, date(2026, 3, 29), time(2, 0), utc(2026, 3, 29, 1, 0)),
        (BERLIN, date(2026, 3, 29), time(2, 59), utc(2026, 3, 29, 1, 0)),
        (BERLIN, date(2026, 3, 29), time(1, 59), utc(2026, 3, 29, 0, 59)),
        (BERLIN, date(2026, 3, 29), time(3, 0), utc(2026, 3, 29, 1, 0)),
        (BERLIN, date(2026, 3, 29), time(3, 1), utc(2026, 3, 29, 1, 1)),
        # and falls back at 01:00 UTC: 03:00 CEST becomes 02:00 CET.
        (BERLIN, date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),
        (BERLIN, date(2026, 10, 25), time(3, 0), utc(2026, 10, 25, 2, 0)),
        # New York springs forward at 07:00 UTC: 02:00 EST becomes 03:00 EDT.
        (NEW_YORK, date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7, 0)),
        (NEW_YORK, date(2026, 3, 8), time(3, 30), utc(2026, 3, 8, 7, 30)),
        # and falls back at 06:00 UTC: 02:00 EDT becomes 01:00 EST.
        (NEW_YORK, date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
        (NEW_YORK, date(2026, 11, 1), time(2, 30), utc(2026, 11, 1, 7, 30)),
    ],
)
def test_local_instants_through_dst(
    zone: ZoneInfo, day: date, wall: time, expected: datetime
) -> None:
    found = local_instant(day, wall, zone)
    assert found == expected
    assert found.tzinfo is UTC


def test_the_second_occurrence_of_a_repeated_time_on_request() -> None:
    assert local_instant(date(2026, 10, 25), time(2, 30), BERLIN, fold=1) == utc(
        2026, 10, 25, 1, 30
    )
    assert local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK, fold=1) == utc(
        2026, 11, 1, 6, 30
    )
    # Outside an overlap fold changes nothing.
    assert local_instant(date(2026, 7, 1), time(9, 0), BERLIN, fold=1) == utc(2026, 7, 1, 7)


# -- after a span -----------------------------------------------------------


def test_after_is_elapsed_time_through_dst() -> None:
    anchor = utc(2026, 3, 29, 0, 30)  # 01:30 CET; four hours later it is 06:30 CEST
    due = step_due_at(AfterDelay(4 * 3600), anchor=anchor, zone=BERLIN, attributes={})
    assert due == utc(2026, 3, 29, 4, 30)
    anchor_in_berlin = anchor.astimezone(BERLIN)
    assert step_due_at(AfterDelay(0), anchor=anchor_in_berlin, zone=BERLIN, attributes={}) == (
        anchor
    )


def test_a_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        step_due_at(AfterDelay(60), anchor=datetime(2026, 1, 1), zone=BERLIN, attributes={})


# -- at a local time --------------------------------------------------------


def test_day_offset_zero_is_today_if_still_ahead_else_tomorrow() -> None:
    # 08:00 CET: today's 09:30 is ahead.
    assert at_local("09:30", 0, utc(2026, 1, 14, 7, 0)) == utc(2026, 1, 14, 8, 30)
    # Exactly 09:30: due now.
    assert at_local("09:30", 0, utc(2026, 1, 14, 8, 30)) == utc(2026, 1, 14, 8, 30)
    # A second later: tomorrow.
    assert at_local("09:30", 0, utc(2026, 1, 14, 8, 30, 1)) == utc(2026, 1, 15, 8, 30)


def test_day_offset_counts_local_calendar_days() -> None:
    assert at_local("09:30", 1, utc(2026, 1, 14, 7, 0)) == utc(2026, 1, 15, 8, 30)
    assert at_local("09:30", 1, utc(2026, 1, 14, 22, 0)) == utc(2026, 1, 15, 8, 30)  # 23:00 CET
    # 23:30 UTC on the 14th is already the 15th in Berlin, still the 14th in New York.
    assert at_local("09:30", 1, utc(2026, 1, 14, 23, 30)) == utc(2026, 1, 16, 8, 30)
    assert at_local("09:30", 1, utc(2026, 1, 14, 23, 30), NEW_YORK) == utc(2026, 1, 15, 14, 30)
    assert at_local("00:00", 3, utc(2026, 12, 30, 12, 0)) == utc(2027, 1, 1, 23, 0)
    assert at_local("08:00", 366, utc(2026, 1, 1, 12, 0)) == utc(2027, 1, 2, 7, 0)


def test_at_local_keeps_the_wall_clock_through_berlin_dst() -> None:
    # The day before each switch, then the switch day itself.
    assert at_local("09:30", 1, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 7, 30)
    assert at_local("09:30", 1, utc(2026, 3, 27, 12, 0)) == utc(2026, 3, 28, 8, 30)
    assert at_local("09:30", 1, utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 8, 30)
    assert at_local("09:30", 1, utc(2026, 10, 23, 12, 0)) == utc(2026, 10, 24, 7, 30)


def test_at_local_in_the_berlin_gap_and_overlap() -> None:
    # 02:30 does not exist on 2026-03-29: the first instant after the gap, 03:00 CEST.
    assert at_local("02:30", 1, utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
    assert at_local("02:30", 0, utc(2026, 3, 29, 0, 15)) == utc(2026, 3, 29, 1, 0)
    # 02:30 happens twice on 2026-10-25: the first time, 02:30 CEST.
    assert at_local("02:30", 1, utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 0, 30)
    assert at_local("02:30", 0, utc(2026, 10, 25, 0, 0)) == utc(2026, 10, 25, 0, 30)
    # Past the first 02:30 the day's 02:30 is gone: tomorrow's, in CET.
    assert at_local("02:30", 0, utc(2026, 10, 25, 0, 45)) == utc(2026, 10, 26, 1, 30)


def test_at_local_through_new_york_dst() -> None:
    assert at_local("09:30", 1, utc(2026, 3, 7, 17, 0), NEW_YORK) == utc(2026, 3, 8, 13, 30)
    assert at_local("09:30", 1, utc(2026, 3, 6, 17, 0), NEW_YORK) == utc(2026, 3, 7, 14, 30)
    assert at_local("02:30", 1, utc(2026, 3, 7, 17, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert at_local("09:30", 1, utc(2026, 10, 31, 17, 0), NEW_YORK) == utc(2026, 11, 1, 14, 30)
    # New York repeats 01:00-02:00: 01:30 is the first (EDT); 02:30 exists once (EST).
    assert at_local("01:30", 1, utc(2026, 10, 31, 17, 0), NEW_YORK) == utc(2026, 11, 1, 5, 30)
    assert at_local("02:30", 1, utc(2026, 10, 31, 17, 0), NEW_YORK) == utc(2026, 11, 1, 7, 30)


# -- relative to a date attribute -------------------------------------------


def birthday(
    value: JsonValue,
    anchor: datetime,
    *,
    offset: int = 0,
    wall: time = time(9, 0),
    zone: ZoneInfo = BERLIN,
) -> datetime | None:
    return step_due_at(
        RelativeDelay("birthday", offset, wall),
        anchor=anchor,
        zone=zone,
        attributes={"birthday": value, "name": "Ada"},
    )


def test_birthday_this_year_and_next() -> None:
    assert birthday("1990-05-17", utc(2026, 3, 1)) == utc(2026, 5, 17, 7, 0)
    assert birthday("05-17", utc(2026, 3, 1)) == utc(2026, 5, 17, 7, 0)
    assert birthday("1990-05-17", utc(2026, 5, 18, 12)) == utc(2027, 5, 17, 7, 0)
    assert birthday("1990-01-17", utc(2026, 3, 1)) == utc(2027, 1, 17, 8, 0)  # CET in January


def test_on_the_birthday_itself_the_step_is_due_that_day_even_if_its_hour_passed() -> None:
    assert birthday("1990-05-17", utc(2026, 5, 17, 5, 0)) == utc(2026, 5, 17, 7, 0)
    late = birthday("1990-05-17", utc(2026, 5, 17, 10, 0))
    assert late == utc(2026, 5, 17, 7, 0)


def test_the_birthday_is_the_contacts_calendar_day() -> None:
    anchor = utc(2026, 5, 16, 23, 30)  # already the 17th in Berlin, the 16th in Los Angeles
    assert birthday("05-17", anchor) == utc(2026, 5, 17, 7, 0)
    assert birthday("05-17", anchor, zone=LOS_ANGELES) == utc(2026, 5, 17, 16, 0)
    anchor = utc(2026, 5, 17, 23, 30)  # the 18th in Berlin: next year's
    assert birthday("05-17", anchor) == utc(2027, 5, 17, 7, 0)
    assert birthday("05-17", anchor, zone=LOS_ANGELES) == utc(2026, 5, 17, 16, 0)


def test_feb_29_falls_on_feb_28_in_common_years() -> None:
    assert birthday("2000-02-29", utc(2026, 1, 10)) == utc(2026, 2, 28, 8, 0)
    assert birthday("02-29", utc(2026, 2, 28, 12)) == utc(2026, 2, 28, 8, 0)
    assert birthday("2000-02-29", utc(2026, 3, 1)) == utc(2027, 2, 28, 8, 0)
    assert birthday("2000-02-29", utc(2027, 3, 1)) == utc(2028, 2, 29, 8, 0)
    assert birthday("2000-02-29", utc(2028, 2, 28, 12)) == utc(2028, 2, 29, 8, 0)
    # A week before: from the substitute day in a common year.
    assert birthday("2000-02-29", utc(2026, 1, 10), offset=-7) == utc(2026, 2, 21, 8, 0)
    assert birthday("2000-02-29", utc(2028, 1, 10), offset=-7) == utc(2028, 2, 22, 8, 0)


def test_offsets_across_the_year_end() -> None:
    assert birthday("12-31", utc(2026, 12, 31, 12)) == utc(2026, 12, 31, 8, 0)
    assert birthday("12-31", utc(2027, 1, 1, 12)) == utc(2027, 12, 31, 8, 0)
    # Three days before a January 2nd birthday is in December.
    assert birthday("1985-01-02", utc(2026, 12, 29, 12), offset=-3) == utc(2026, 12, 30, 8, 0)
    assert birthday("1985-01-02", utc(2026, 12, 31, 12), offset=-3) == utc(2027, 12, 30, 8, 0)
    # Three days after a December 30th one is in January, still this one's.
    assert birthday("12-30", utc(2027, 1, 1, 12), offset=3) == utc(2027, 1, 2, 8, 0)
    assert birthday("12-30", utc(2027, 1, 3, 12), offset=3) == utc(2028, 1, 2, 8, 0)
    assert birthday("06-01", utc(2026, 1, 1), offset=366) == utc(2026, 6, 2, 7)


def test_a_birthday_at_a_time_in_the_gap() -> None:
    assert birthday("03-29", utc(2026, 3, 1), wall=time(2, 30)) == utc(2026, 3, 29, 1, 0)
    assert birthday("03-08", utc(2026, 3, 1), wall=time(2, 30), zone=NEW_YORK) == utc(
        2026, 3, 8, 7, 0
    )


@pytest.mark.parametrize(
    "value",
    [
        *(None, "", "1990-02-30", "02-30", "13-01", "00-10", "05/17", "1990-5-17"),
        *("17.05.1990", "1990-05-17T00:00:00Z", " 05-17", 19900517, True),
        *(["05-17"], {"date": "05-17"}),
    ],
)
def test_an_unusable_date_attribute_means_no_due_time(value: JsonValue) -> None:
    assert birthday(value, utc(2026, 3, 1)) is None


def test_a_missing_attribute_means_no_due_time() -> None:
    delay = RelativeDelay("signup_date", 0, time(9, 0))
    attributes = {"birthday": "05-17"}
    assert step_due_at(delay, anchor=utc(2026, 3, 1), zone=BERLIN, attributes=attributes) is None


# -- quiet hours ------------------------------------------------------------


def quiet(
    at: datetime, hours: QuietHours | None = NIGHT, zone: ZoneInfo = BERLIN
) -> datetime | None:
    return quiet_until(at, hours, zone, jitter_key="decision:1", jitter_seconds=0)


def test_no_quiet_hours_hold_nothing() -> None:
    assert quiet(utc(2026, 1, 1, 3), None) is None


def test_quiet_hours_edges() -> None:
    assert quiet(utc(2026, 1, 14, 19, 59)) is None  # 20:59 CET
    assert quiet(utc(2026, 1, 14, 20, 0)) == utc(2026, 1, 15, 7, 0)  # 21:00: quiet
    assert quiet(utc(2026, 1, 15, 6, 59)) == utc(2026, 1, 15, 7, 0)
    assert quiet(utc(2026, 1, 15, 7, 0)) is None  # 08:00: the end is not quiet
    assert quiet(utc(2026, 1, 14, 12, 0)) is None


def test_daytime_quiet_hours_do_not_wrap() -> None:
    lunch = QuietHours(time(12, 0), time(13, 30))
    assert quiet(utc(2026, 1, 14, 10, 59), lunch) is None
    assert quiet(utc(2026, 1, 14, 11, 0), lunch) == utc(2026, 1, 14, 12, 30)
    assert quiet(utc(2026, 1, 14, 12, 30), lunch) is None
    assert quiet(utc(2026, 1, 14, 22, 0), lunch) is None


def test_a_night_across_the_berlin_switches() -> None:
    # 23:00 CET on the 28th: the night ends at 08:00 CEST, 06:00 UTC.
    assert quiet(utc(2026, 3, 28, 22, 0)) == utc(2026, 3, 29, 6, 0)
    assert quiet(utc(2026, 3, 29, 5, 30)) == utc(2026, 3, 29, 6, 0)  # 07:30 CEST
    assert quiet(utc(2026, 3, 29, 6, 0)) is None
    # 23:00 CEST on 24 October: the night ends at 08:00 CET, 07:00 UTC.
    assert quiet(utc(2026, 10, 24, 21, 0)) == utc(2026, 10, 25, 7, 0)
    assert quiet(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 7, 0)  # first 02:30
    assert quiet(utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 7, 0)  # second 02:30
    assert quiet(utc(2026, 10, 25, 6, 59)) == utc(2026, 10, 25, 7, 0)
    assert quiet(utc(2026, 10, 25, 7, 0)) is None


def test_a_night_across_the_new_york_switches() -> None:
    assert quiet(utc(2026, 3, 8, 3, 0), zone=NEW_YORK) == utc(2026, 3, 8, 12, 0)  # 22:00 EST
    assert quiet(utc(2026, 3, 8, 11, 59), zone=NEW_YORK) == utc(2026, 3, 8, 12, 0)  # 07:59 EDT
    assert quiet(utc(2026, 3, 8, 12, 0), zone=NEW_YORK) is None
    assert quiet(utc(2026, 11, 1, 2, 0), zone=NEW_YORK) == utc(2026, 11, 1, 13, 0)  # 22:00 EDT
    assert quiet(utc(2026, 11, 1, 6, 30), zone=NEW_YORK) == utc(2026, 11, 1, 13, 0)  # 01:30 EST
    assert quiet(utc(2026, 11, 1, 12, 0), zone=NEW_YORK) == utc(2026, 11, 1, 13, 0)  # 07:00 EST
    assert quiet(utc(2026, 11, 1, 13, 0), zone=NEW_YORK) is None
    assert quiet(utc(2026, 11, 2, 1, 59), zone=NEW_YORK) is None  # 20:59 EST
    assert quiet(utc(2026, 11, 2, 2, 0), zone=NEW_YORK) == utc(2026, 11, 2, 13, 0)


def test_a_quiet_window_that_ends_in_the_gap_ends_after_it() -> None:
    small_hours = QuietHours(time(22, 0), time(2, 30))
    assert quiet(utc(2026, 3, 28, 23, 0), small_hours) == utc(2026, 3, 29, 1, 0)
    assert quiet(utc(2026, 3, 8, 5, 0), small_hours, NEW_YORK) == utc(2026, 3, 8, 7, 0)


def test_a_quiet_window_that_ends_in_the_overlap_ends_after_the_moment_given() -> None:
    early = QuietHours(time(0, 0), time(1, 30))
    # The first 01:15 (EDT): quiet until the first 01:30.
    assert quiet(utc(2026, 11, 1, 5, 15), early, NEW_YORK) == utc(2026, 11, 1, 5, 30)
    # The second 01:15 (EST): the first 01:30 is behind us, so the second one.
    assert quiet(utc(2026, 11, 1, 6, 15), early, NEW_YORK) == utc(2026, 11, 1, 6, 30)
    # Between the two 01:30s the clock reads 01:30-02:00, then 01:00-01:30 again:
    # not quiet at first, quiet again once it is turned back.
    assert quiet(utc(2026, 11, 1, 5, 45), early, NEW_YORK) is None
    assert quiet(utc(2026, 11, 1, 6, 0), early, NEW_YORK) == utc(2026, 11, 1, 6, 30)


def test_in_quiet_hours_reads_the_local_clock() -> None:
    assert in_quiet_hours(utc(2026, 1, 14, 20, 0), NIGHT, BERLIN)
    assert not in_quiet_hours(utc(2026, 1, 14, 20, 0), NIGHT, NEW_YORK)  # 15:00 there
    with pytest.raises(ValueError, match="aware"):
        in_quiet_hours(datetime(2026, 1, 14, 20), NIGHT, BERLIN)


# -- jitter -----------------------------------------------------------------


EVENING = utc(2026, 1, 14, 22)  # 23:00 CET: quiet until 08:00, 07:00 UTC


def jittered(key: str, at: datetime = EVENING, span: int = 900) -> timedelta:
    moved = quiet_until(at, NIGHT, BERLIN, jitter_key=key, jitter_seconds=span)
    assert moved is not None
    return moved - utc(2026, 1, 15, 7, 0)


def test_jitter_is_deterministic_and_in_range() -> None:
    offsets = [jittered(f"decision:{n}") for n in range(2000)]
    assert offsets == [jittered(f"decision:{n}") for n in range(2000)]
    assert all(timedelta(0) <= o < timedelta(seconds=900) for o in offsets)
    # Spread over the whole span, not bunched.
    assert len(set(offsets)) > 800
    assert min(offsets) < timedelta(seconds=30)
    assert max(offsets) > timedelta(seconds=870)
    seconds = [o.total_seconds() for o in offsets]
    for cut in (225, 450, 675):
        assert abs(sum(1 for s in seconds if s < cut) / len(seconds) - cut / 900) < 0.05


def test_jitter_depends_on_the_key_only() -> None:
    # The same decision held at 23:00 or at 05:00 moves to the same instant.
    assert jittered("decision:7") == jittered("decision:7", utc(2026, 1, 15, 4))
    assert jittered("decision:7", span=60) < timedelta(seconds=60)
    assert jittered("decision:7", span=1) == timedelta(0)


def test_no_jitter_span_is_the_exact_end_and_a_negative_one_is_refused() -> None:
    assert jittered("decision:7", span=0) == timedelta(0)
    with pytest.raises(ValueError):
        quiet_until(utc(2026, 1, 14, 22), NIGHT, BERLIN, jitter_key="k", jitter_seconds=-1)


def test_a_jitter_that_would_land_in_quiet_hours_again_is_dropped() -> None:
    # Open only 07:55-08:00: a jitter of five minutes or more would be quiet again.
    key = next(f"k{n}" for n in range(100) if jittered(f"k{n}") >= timedelta(minutes=5))
    almost_always = QuietHours(time(8, 0), time(7, 55))
    moved = quiet_until(utc(2026, 1, 14, 22), almost_always, BERLIN, jitter_key=key)
    assert moved == utc(2026, 1, 15, 6, 55)


# -- by property, around the 2026 switches ----------------------------------

SWITCH_DAYS = [
    (BERLIN, utc(2026, 3, 28)),
    (BERLIN, utc(2026, 10, 24)),
    (NEW_YORK, utc(2026, 3, 7, 5)),
    (NEW_YORK, utc(2026, 10, 31, 4)),
]
MINUTE = timedelta(minutes=1)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SWITCH_DAYS),
    st.integers(0, 3 * 24 * 60),
    st.integers(0, 24 * 60 - 1),
    st.integers(0, 24 * 60 - 1),
)
def test_quiet_until_is_the_first_minute_out_of_quiet_hours(
    switch: tuple[ZoneInfo, datetime], minutes: int, start: int, end: int
) -> None:
    # Quiet hours, zone switches and `at` all fall on whole minutes, so a
    # scan minute by minute finds the first instant out of quiet hours.
    zone, day = switch
    if start == end:
        return
    hours = QuietHours(time(start // 60, start % 60), time(end // 60, end % 60))
    at = day + minutes * MINUTE
    found = quiet(at, hours, zone)
    scan = at
    while in_quiet_hours(scan, hours, zone):
        scan += MINUTE
    assert found == (None if scan == at else scan)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SWITCH_DAYS), st.integers(0, 3), st.integers(0, 24 * 60 - 1))
def test_a_local_instant_reads_its_wall_time_or_is_just_after_the_gap(
    switch: tuple[ZoneInfo, datetime], days: int, minute: int
) -> None:
    zone, first = switch
    day = first.date() + timedelta(days=days)
    wall = time(minute // 60, minute % 60)
    found = local_instant(day, wall, zone)
    local = found.astimezone(zone)
    if local.time() == wall:
        assert local.date() == day
        assert local.fold == 0  # a repeated wall time: its first occurrence
    else:
        # Skipped by the clock: `found` is the switch, and a second before
        # it the clock was still short of `wall`.
        before = (found - timedelta(seconds=1)).astimezone(zone)
        assert before.utcoffset() != local.utcoffset()
        assert before.time() < wall < local.time()
