"""A touchpoint's timing settings: when a step is due, the contact's quiet
hours and the frequency caps (TOUCHPOINTS.md, rules 3 and 7).

A step's delay comes in three shapes, as a request body writes them:

    {"after": "4h"}                        a fixed span after the anchor
    {"at_local": "09:30", "day_offset": 1} a wall-clock time in the contact's zone
    {"relative_to": "birthday", "offset_days": -3, "at_local": "09:00"}
                                           a date attribute of the contact

Durations are whole seconds (`14400`) or a number with one unit
(`"90s"`, `"10m"`, `"4h"`, `"3d"`); a day here is 86400 seconds, because
"after 3d" is elapsed time. Calendar days, where they matter (`day_offset`,
`offset_days`, birthdays), are dates in the contact's zone and are computed
in `touch_guards`.

Parsers take the decoded JSON and raise InvalidInput naming the exact
field (`steps[0].delay.at_local`); each `*_json` writes the canonical form
that its parser reads back to an equal value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import time

from server.domain.business_hours import parse_zone
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue

__all__ = [
    "DEFAULT_MARKETING_CAPS",
    "AfterDelay",
    "AtLocalDelay",
    "FrequencyCap",
    "QuietHours",
    "RelativeDelay",
    "StepDelay",
    "caps_json",
    "delay_json",
    "duration_json",
    "parse_caps",
    "parse_delay",
    "parse_duration",
    "parse_quiet_hours",
    "parse_zone",
    "quiet_hours_json",
]

DAY = 86400
MAX_DELAY_SECONDS = 366 * DAY
MAX_DAY_OFFSET = 366
MAX_CAPS = 5
MAX_CAP_COUNT = 1000
MAX_CAP_WINDOW_SECONDS = 366 * DAY
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}
# [0-9] is ASCII only; nine digits keep int() away from long strings.
_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")
_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2})")
# Contact attribute keys are free-form; a delay may only name a plain one.
_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_DELAY_KEYS = {
    "after": frozenset({"after"}),
    "at_local": frozenset({"at_local", "day_offset"}),
    "relative_to": frozenset({"relative_to", "offset_days", "at_local"}),
}


@dataclasses.dataclass(frozen=True)
class AfterDelay:
    """Due `seconds` after the anchor: elapsed time, whatever the clock says."""

    seconds: int


@dataclasses.dataclass(frozen=True)
class AtLocalDelay:
    """Due at `time` on the contact's wall clock, on the first local date
    at least `day_offset` days after the anchor's local date on which that
    instant is not before the anchor. So 0 means "today if that time is
    still ahead (or is now), else tomorrow"; 1 means "tomorrow at that
    time", whatever the time of the anchor."""

    time: time
    day_offset: int


@dataclasses.dataclass(frozen=True)
class RelativeDelay:
    """Due at `time` local on the date `offset_days` from a yearly date
    attribute of the contact ("1990-05-17" or "05-17", a birthday, a signup
    anniversary): the first such date on or after the anchor's local date."""

    attribute: str
    offset_days: int
    time: time


StepDelay = AfterDelay | AtLocalDelay | RelativeDelay


@dataclasses.dataclass(frozen=True)
class QuietHours:
    """Local wall-clock hours when nothing is sent, `[start, end)`; a
    window with `start > end` wraps midnight (21:00 to 08:00)."""

    start: time
    end: time

    @property
    def wraps(self) -> bool:
        return self.start > self.end


@dataclasses.dataclass(frozen=True)
class FrequencyCap:
    """At most `count` counted touches in any `window_seconds`."""

    count: int
    window_seconds: int


DEFAULT_MARKETING_CAPS = (FrequencyCap(1, 16 * 3600), FrequencyCap(3, 7 * DAY))


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def _object(value: JsonValue, field: str) -> Mapping[str, JsonValue]:
    if not isinstance(value, Mapping):
        raise _fail(field, "must be an object")
    return value


def _whole(value: JsonValue, field: str, low: int, high: int) -> int:
    # bool is an int to Python, never to a request body.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(field, "must be a whole number")
    if not low <= value <= high:
        raise _fail(field, f"must be between {low} and {high}")
    return value


# -- durations and clock times ----------------------------------------------


def parse_duration(value: JsonValue, field: str, *, minimum: int, maximum: int) -> int:
    """Whole seconds from `14400` or `"4h"` (units s, m, h, d, w), within
    `[minimum, maximum]` seconds."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise _fail(field, f"{value[:20]!r} is not a duration such as 90s, 10m, 4h, 3d or 2w")
        seconds = int(match[1]) * _UNITS[match[2]]
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise _fail(field, 'must be whole seconds or a duration such as "4h"')
    if not minimum <= seconds <= maximum:
        raise _fail(field, f"must be between {duration_json(minimum)} and {duration_json(maximum)}")
    return seconds


def duration_json(seconds: int) -> str:
    """The shortest exact spelling: 14400 -> "4h", 5400 -> "90m", 0 -> "0s"."""
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _parse_clock(value: JsonValue, field: str) -> time:
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise _fail(field, f"{str(value)[:20]!r} is not a HH:MM time")
    return time(int(match[1]), int(match[2]))


def _clock(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


# -- step delays ------------------------------------------------------------


def parse_delay(value: JsonValue, field: str) -> StepDelay:
    """A step's delay; the key present (`relative_to`, else `after`, else
    `at_local`) says which shape, and the shape's keys are all it may have."""
    raw = _object(value, field)
    kind = next((k for k in ("relative_to", "after", "at_local") if k in raw), None)
    if kind is None:
        raise _fail(field, "must have one of after, at_local or relative_to")
    for key in raw:
        if key not in _DELAY_KEYS[kind]:
            raise _fail(f"{field}.{str(key)[:100]}", f"unknown field for a {kind} delay")
    if kind == "after":
        return AfterDelay(
            parse_duration(raw["after"], f"{field}.after", minimum=0, maximum=MAX_DELAY_SECONDS)
        )
    if "at_local" not in raw:
        raise _fail(f"{field}.at_local", "is required")
    at = _parse_clock(raw["at_local"], f"{field}.at_local")
    if kind == "at_local":
        offset = _whole(raw.get("day_offset", 0), f"{field}.day_offset", 0, MAX_DAY_OFFSET)
        return AtLocalDelay(time=at, day_offset=offset)
    attribute = raw["relative_to"]
    if not isinstance(attribute, str) or not _ATTRIBUTE.fullmatch(attribute):
        raise _fail(
            f"{field}.relative_to",
            "must name a contact attribute (letters, digits, _ . -, at most 64)",
        )
    offset = _whole(
        raw.get("offset_days", 0), f"{field}.offset_days", -MAX_DAY_OFFSET, MAX_DAY_OFFSET
    )
    return RelativeDelay(attribute=attribute, offset_days=offset, time=at)


def delay_json(delay: StepDelay) -> dict[str, JsonValue]:
    """The canonical stored form of a delay (every key written)."""
    if isinstance(delay, AfterDelay):
        return {"after": duration_json(delay.seconds)}
    if isinstance(delay, AtLocalDelay):
        return {"at_local": _clock(delay.time), "day_offset": delay.day_offset}
    return {
        "relative_to": delay.attribute,
        "offset_days": delay.offset_days,
        "at_local": _clock(delay.time),
    }


# -- quiet hours ------------------------------------------------------------


def parse_quiet_hours(value: JsonValue, field: str) -> QuietHours | None:
    """`{"start": "21:00", "end": "08:00"}`, or null for none."""
    if value is None:
        return None
    raw = _object(value, field)
    for key in raw:
        if key not in ("start", "end"):
            raise _fail(f"{field}.{str(key)[:100]}", "unknown field")
    for key in ("start", "end"):
        if key not in raw:
            raise _fail(f"{field}.{key}", "is required")
    start = _parse_clock(raw["start"], f"{field}.start")
    end = _parse_clock(raw["end"], f"{field}.end")
    if start == end:
        # Empty or all day? Either reading would surprise someone.
        raise _fail(f"{field}.end", "must differ from start")
    return QuietHours(start=start, end=end)


def quiet_hours_json(quiet: QuietHours) -> dict[str, JsonValue]:
    return {"start": _clock(quiet.start), "end": _clock(quiet.end)}


# -- frequency caps ---------------------------------------------------------


def parse_caps(value: JsonValue, field: str) -> tuple[FrequencyCap, ...]:
    """A list of `{"count": 1, "window": "16h"}`, at most five; an empty
    list means no cap."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _fail(field, 'must be a list of {"count": ..., "window": ...} caps')
    if len(value) > MAX_CAPS:
        raise _fail(field, f"must have at most {MAX_CAPS} caps")
    return tuple(_parse_cap(item, f"{field}[{i}]") for i, item in enumerate(value))


def _parse_cap(value: JsonValue, field: str) -> FrequencyCap:
    raw = _object(value, field)
    for key in raw:
        if key not in ("count", "window"):
            raise _fail(f"{field}.{str(key)[:100]}", "unknown field")
    for key in ("count", "window"):
        if key not in raw:
            raise _fail(f"{field}.{key}", "is required")
    count = _whole(raw["count"], f"{field}.count", 1, MAX_CAP_COUNT)
    window = parse_duration(
        raw["window"], f"{field}.window", minimum=1, maximum=MAX_CAP_WINDOW_SECONDS
    )
    return FrequencyCap(count=count, window_seconds=window)


def caps_json(caps: Sequence[FrequencyCap]) -> list[JsonValue]:
    return [{"count": c.count, "window": duration_json(c.window_seconds)} for c in caps]
