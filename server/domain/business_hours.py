"""An inbox's business hours: when a human answer can be expected.

Stored in an inbox's settings as

    {"timezone": "Europe/Berlin",
     "weekly": {"mon": [["09:00", "17:30"]], ..., "sun": []},
     "holidays": ["2026-12-25"]}

Hours are *wall-clock* times in the inbox's time zone: "09:00" means nine
on the office clock, whatever the UTC offset is that day, so a DST switch
moves the UTC instant and never the meaning. A day left out of `weekly` is
closed; "24:00" may end a range so a day can be open to midnight. Ranges
never cross midnight (split them over two days instead), which keeps every
range inside one local date and makes a holiday close exactly one date.

Pure: time is a parameter (`now`, an aware datetime), nothing here reads
a clock. The zone rules come from `zoneinfo` (system data or the `tzdata`
package).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.domain.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
MAX_RANGES_PER_DAY = 6
MAX_HOLIDAYS = 400  # a year of them and then some, with room for next year's
LOOKAHEAD = timedelta(days=14)
MINUTES_PER_DAY = 24 * 60
_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEYS = frozenset({"timezone", "weekly", "holidays"})


@dataclasses.dataclass(frozen=True)
class BusinessHours:
    """Parsed business hours. `weekly[d]` holds day d's (Monday = 0)
    ranges as minutes after local midnight, half-open `[start, end)`,
    sorted and disjoint."""

    zone: ZoneInfo
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date]

    def to_settings(self) -> dict[str, Any]:
        """The canonical stored form: every day present, ranges sorted,
        holidays sorted and without duplicates."""
        return {
            "timezone": self.zone.key,
            "weekly": {
                day: [[_clock(start), _clock(end)] for start, end in ranges]
                for day, ranges in zip(DAYS, self.weekly, strict=True)
            },
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
        }


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_business_hours(raw: Any, field: str = "settings.business_hours") -> BusinessHours:
    """Check `raw` (decoded JSON) and parse it, or raise InvalidInput naming
    the offending part under `field` (`...weekly.mon[0]`, `...holidays[2]`)."""
    if not isinstance(raw, dict):
        raise _fail(field, "must be an object")
    for key in raw:
        if key not in _KEYS:
            raise _fail(f"{field}.{str(key)[:100]}", "unknown field")
    for key in ("timezone", "weekly"):
        if key not in raw:
            raise _fail(f"{field}.{key}", "is required")
    zone = parse_zone(raw["timezone"], f"{field}.timezone")
    weekly = _parse_weekly(raw["weekly"], f"{field}.weekly")
    holidays = _parse_holidays(raw.get("holidays", []), f"{field}.holidays")
    return BusinessHours(zone=zone, weekly=weekly, holidays=holidays)


def parse_zone(value: Any, field: str) -> ZoneInfo:
    """An IANA zone name as a ZoneInfo, or an InvalidInput naming `field`.
    Shared by every setting that names a zone (touchpoints use it too)."""
    # "localtime" names whatever zone the server machine is set to: the
    # same settings would mean different hours on another host.
    if not isinstance(value, str) or not value or len(value) > 64 or value == "localtime":
        raise _fail(field, "must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _fail(field, f"unknown time zone {value!r}") from None


def _parse_weekly(value: Any, field: str) -> tuple[tuple[tuple[int, int], ...], ...]:
    if not isinstance(value, dict):
        raise _fail(field, "must be an object with keys mon ... sun")
    for key in value:
        if key not in DAYS:
            raise _fail(f"{field}.{str(key)[:100]}", "unknown day (use mon, tue, ... sun)")
    return tuple(_parse_day(value.get(day, []), f"{field}.{day}") for day in DAYS)


def _parse_day(value: Any, field: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list):
        raise _fail(field, 'must be a list of ["HH:MM", "HH:MM"] ranges')
    if len(value) > MAX_RANGES_PER_DAY:
        raise _fail(field, f"must have at most {MAX_RANGES_PER_DAY} ranges")
    ranges = sorted(_parse_range(item, f"{field}[{i}]") for i, item in enumerate(value))
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start < end:
            raise _fail(field, f"ranges overlap at {_clock(start)}")
    return tuple(ranges)


def _parse_range(value: Any, field: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise _fail(field, 'must be a ["HH:MM", "HH:MM"] pair')
    start = _parse_clock(value[0], field, end=False)
    end = _parse_clock(value[1], field, end=True)
    if end <= start:
        raise _fail(field, "must end after it starts (split a range over midnight in two)")
    return start, end


def _parse_clock(value: Any, field: str, *, end: bool) -> int:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(field, f"{str(value)[:20]!r} is not a HH:MM time")
    hour, minute = int(match[1]), int(match[2])
    if end and (hour, minute) == (24, 0):
        return MINUTES_PER_DAY
    if hour > 23 or minute > 59:
        raise _fail(field, f"{value!r} is not a HH:MM time")
    return hour * 60 + minute


def _parse_holidays(value: Any, field: str) -> frozenset[date]:
    if not isinstance(value, list):
        raise _fail(field, "must be a list of YYYY-MM-DD dates")
    if len(value) > MAX_HOLIDAYS:
        raise _fail(field, f"must have at most {MAX_HOLIDAYS} dates")
    out: set[date] = set()
    for i, item in enumerate(value):
        try:
            if not isinstance(item, str) or not _DATE.match(item):
                raise ValueError
            out.add(date.fromisoformat(item))
        except ValueError:
            raise _fail(f"{field}[{i}]", "must be a YYYY-MM-DD date") from None
    return frozenset(out)


# -- open or closed ---------------------------------------------------------


def _require_aware(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")


def is_open(hours: BusinessHours, now: datetime) -> bool:
    """Whether `now` (aware) falls in a range of its local weekday, on a
    local date that is not a holiday."""
    _require_aware(now)
    local = now.astimezone(hours.zone)
    if local.date() in hours.holidays:
        return False
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(start * 60 <= second < end * 60 for start, end in hours.weekly[local.weekday()])


def next_opening(hours: BusinessHours, now: datetime) -> datetime | None:
    """The first instant at or after `now` when `is_open` holds (`now`
    itself when open), in UTC; None if that is more than 14 days away.

    `is_open` can only turn true where the local clock reaches a range's
    start (once, or twice in the repeated hour after a DST fall-back) or
    where the clock jumps (a DST switch can land inside a range, or skip
    over its start). Those instants are the only candidates; checking each
    with `is_open` keeps this function exactly as right as that one.
    """
    _require_aware(now)
    if is_open(hours, now):
        return now.astimezone(UTC)
    horizon = now + LOOKAHEAD
    found = [
        at
        for at in (*_range_starts(hours, now, horizon), *_offset_changes(hours.zone, now, horizon))
        if now < at <= horizon and is_open(hours, at)
    ]
    return min(found, default=None)


def _range_starts(hours: BusinessHours, now: datetime, horizon: datetime) -> Iterator[datetime]:
    # From the day before: a DST fall-back at midnight (America/Santiago)
    # turns the local date back, so yesterday's ranges can start again.
    day = now.astimezone(hours.zone).date() - timedelta(days=1)
    last = horizon.astimezone(hours.zone).date()
    while day <= last:
        for start, _ in hours.weekly[day.weekday()]:
            for fold in (0, 1):
                wall = time(start // 60, start % 60, fold=fold)
                yield datetime.combine(day, wall, tzinfo=hours.zone).astimezone(UTC)
        day += timedelta(days=1)


def _offset_changes(zone: ZoneInfo, now: datetime, horizon: datetime) -> Iterator[datetime]:
    """The UTC instants in [now, horizon] where the zone's offset changes,
    found a day at a time by bisection to the second (zone transitions
    fall on whole seconds; no real zone has two within one day)."""
    lo = now.astimezone(UTC).replace(microsecond=0)
    while lo < horizon:
        hi = lo + timedelta(days=1)
        if _offset(zone, lo) != _offset(zone, hi):
            a, b = lo, hi  # offset(a) is the old one, offset(b) the new
            while (b - a) > timedelta(seconds=1):
                mid = a + timedelta(seconds=int((b - a).total_seconds()) // 2)
                a, b = (mid, b) if _offset(zone, mid) == _offset(zone, a) else (a, mid)
            yield b
        lo = hi


def _offset(zone: ZoneInfo, at: datetime) -> timedelta | None:
    return at.astimezone(zone).utcoffset()
