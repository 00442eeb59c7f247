"""Planning the touchpoints no event starts, the pure part: when a
broadcast's local time is in a contact's zone, when its planning job is
due, when a date attribute (a birthday, a signup anniversary) next falls
in a contact's zone, and which local day a segment entry belongs to.

The planner (server.actions.touch_planning) runs these for each contact
of a page; nothing here reads a clock or the database. Times are aware
UTC datetimes; zones are `ZoneInfo`s (server.queries.touch_contacts
resolves a contact's), and wall-clock times become instants through
touch_guards.local_instant, the rule every step's due time uses, so a
DST change moves the UTC instant and never the meaning ("10:00 local" is
ten on the contact's clock on both sides of a switch).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.domain.touch_guards import local_instant

# The zone whose clock is furthest ahead (Pacific/Kiritimati, UTC+14): a
# local time comes there first.
EARLIEST_OFFSET = timedelta(hours=14)
# A broadcast is planned this long before its local time comes anywhere:
# a day of slack for a late or restarted worker, and every contact's
# decision is in place well before its own ten o'clock.
BROADCAST_LEAD = timedelta(hours=26)
# A date attribute's occurrence is planned when its local day starts
# within this much from now (the scan runs hourly, so each occurrence is
# seen by many scans; the episode key makes that one episode).
DATE_HORIZON = timedelta(hours=48)

_LOCAL = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})")
_FULL_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_MONTH_DAY = re.compile(r"-{0,2}(\d{2})-(\d{2})")


def parse_at_local(at_local: str) -> datetime:
    """A broadcast's "2026-12-20T10:00" as a naive wall-clock datetime
    (the trigger's parser already checked the shape)."""
    found = _LOCAL.fullmatch(at_local)
    if found is None:
        raise ValueError(f"not a local date and time: {at_local!r}")
    year, month, day, hour, minute = (int(part) for part in found.groups())
    return datetime(year, month, day, hour, minute)


def broadcast_at(at_local: str, zone: ZoneInfo) -> datetime:
    """When the broadcast's local time comes in `zone`: a time skipped by
    a spring-forward gap is the first instant after the gap, one repeated
    in autumn its first occurrence."""
    wall = parse_at_local(at_local)
    return local_instant(wall.date(), wall.time(), zone)


def broadcast_plan_due(at_local: str, now: datetime) -> datetime:
    """When a broadcast's planning job is due: BROADCAST_LEAD before its
    local time comes in the earliest zone, or now if that has passed."""
    first = parse_at_local(at_local).replace(tzinfo=UTC) - EARLIEST_OFFSET
    return max(first - BROADCAST_LEAD, now)


@dataclasses.dataclass(frozen=True)
class AnnualDate:
    """A date attribute read as a yearly date: month and day, and the year
    when the attribute had one (the birth or signup year, before which —
    and in which — there is nothing to celebrate)."""

    month: int
    day: int
    year: int | None = None


def parse_annual_date(value: object) -> AnnualDate | None:
    """An attribute's value as a yearly date: "1990-05-17", an ISO
    timestamp starting with a date ("2025-03-01T12:00:00Z"), or "05-17" /
    "--05-17" without a year. Anything else (a number, garbage, 02-30) is
    None: the contact is skipped, not a failure of the whole page."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    full = _FULL_DATE.match(text)
    if full is not None and (len(text) == 10 or text[10:11] in ("T", " ")):
        year, month, day = (int(part) for part in full.groups())
        return _checked(month, day, year)
    short = _MONTH_DAY.fullmatch(text)
    if short is not None:
        month, day = (int(part) for part in short.groups())
        return _checked(month, day, None)
    return None


def _checked(month: int, day: int, year: int | None) -> AnnualDate | None:
    try:
        date(2000 if year is None else year, month, day)  # 2000: Feb 29 exists
    except ValueError:
        return None
    return AnnualDate(month, day, year)


def occurrence_in(annual: AnnualDate, year: int) -> date:
    """The day `annual` falls on in `year`; Feb 29 is kept on Feb 28 in a
    year without it (the day before the date that does not exist, so it
    stays in February and in the same year)."""
    if annual.month == 2 and annual.day == 29:
        try:
            return date(year, 2, 29)
        except ValueError:
            return date(year, 2, 28)
    return date(year, annual.month, annual.day)


@dataclasses.dataclass(frozen=True)
class Occurrence:
    """One year's occurrence of a date attribute for a contact: its year
    (the episode's `{year}`), its local day, and when the day it is planned
    for starts in the contact's zone (the occurrence's own day, or
    `lead_days` from it when the first step is "3 days before")."""

    year: int
    day: date
    starts_at: datetime


def next_occurrence(
    annual: AnnualDate, zone: ZoneInfo, now: datetime, lead_days: int = 0
) -> Occurrence:
    """The first occurrence whose planned day (`lead_days` from it) has not
    ended in `zone` at `now`: today's if today is the day. Years up to and
    including the attribute's own year do not count (a signup's
    anniversary is a year after it)."""
    today = now.astimezone(zone).date()
    lead = timedelta(days=lead_days)
    year = today.year - 2  # a lead of up to a year can put this year's day in the last
    if annual.year is not None:
        year = max(year, annual.year + 1)
    while occurrence_in(annual, year) + lead < today:
        year += 1
    day = occurrence_in(annual, year)
    return Occurrence(year, day, local_instant(day + lead, time(), zone))


def occurrence_due(
    annual: AnnualDate, zone: ZoneInfo, now: datetime, lead_days: int = 0
) -> Occurrence | None:
    """The occurrence to plan at `now`: the next one, when its planned day
    starts within DATE_HORIZON (or has already started)."""
    found = next_occurrence(annual, zone, now, lead_days)
    return found if found.starts_at <= now + DATE_HORIZON else None


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The calendar day `at` falls on in `zone` (a segment entry's
    `entered_on`: re-entering the same local day is the same episode)."""
    return at.astimezone(zone).date()
