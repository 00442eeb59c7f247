"""The touchpoint engine's pure decisions (TOUCHPOINTS.md, rules 3 and 7):
when a step is due, whether quiet hours, a frequency cap or lateness hold
it back, and which arm and variant a contact gets.

Time is always a parameter and always aware; every instant returned is in
UTC. Local times are wall-clock times in the contact's zone, read with
`zoneinfo`, so a DST switch moves the UTC instant and never the meaning:

- a local time that does not exist (the spring-forward gap, 02:30 in
  Berlin on 2026-03-29) moves forward to the first instant after the gap
  (03:00 local), not to "02:30 in the old offset" (03:30), which is what
  `datetime` arithmetic alone would give;
- a local time that happens twice (the fall-back overlap) means its first
  occurrence (fold=0).

Stickiness comes from hashing, never from a random draw: the same contact
in the same touchpoint lands in the same bucket in every process, so a
retried decision makes the same choice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_timing import (
    AfterDelay,
    AtLocalDelay,
    FrequencyCap,
    QuietHours,
    StepDelay,
    parse_zone,
)

BUCKETS = 10000
_FULL_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTH_DAY = re.compile(r"([0-9]{2})-([0-9]{2})")
_LEAP_YEAR = 2000  # to check a bare month-day, "02-29" included


def _require_aware(at: datetime, name: str) -> None:
    if at.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


# -- zones ------------------------------------------------------------------


def resolve_zone(
    contact_zone: str | None, widget_zone: str | None, workspace_zone: str | None
) -> ZoneInfo:
    """The contact's zone: its profile's, else the one its widget reported,
    else the workspace's, else UTC. A name that is not a valid IANA zone is
    skipped, never an error: a browser can report anything, and a bad
    profile value must not stop a send."""
    for name in (contact_zone, widget_zone, workspace_zone):
        if name is None:
            continue
        try:
            return parse_zone(name, "timezone")
        except InvalidInput:
            continue
    return ZoneInfo("UTC")


# -- local wall-clock instants ----------------------------------------------


def local_instant(day: date, wall: time, zone: ZoneInfo, *, fold: int = 0) -> datetime:
    """The UTC instant at which the clock in `zone` reads `wall` on `day`.
    In a fall-back overlap `fold` picks the occurrence (0 the first); in a
    spring-forward gap it is the first instant after the gap."""
    local = datetime.combine(day, wall.replace(fold=fold), tzinfo=zone)
    utc = local.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return utc
    # In a gap: read with the offset after the switch the wall time lands
    # before the switch, read with the one before it lands after. The switch
    # itself, the first instant the clock reads past the gap, lies between.
    early = local.replace(fold=1).astimezone(UTC)
    late = local.replace(fold=0).astimezone(UTC)
    early, late = min(early, late), max(early, late)
    after = late.astimezone(zone).utcoffset()
    while late - early > timedelta(seconds=1):
        mid = early + (late - early) // 2
        if mid.astimezone(zone).utcoffset() == after:
            late = mid
        else:
            early = mid
    # Zone switches fall on whole seconds, and the bisection ends within
    # one second after the switch.
    return late.replace(microsecond=0)


# -- when a step is due -----------------------------------------------------


def step_due_at(
    delay: StepDelay, *, anchor: datetime, zone: ZoneInfo, attributes: Mapping[str, JsonValue]
) -> datetime | None:
    """The UTC instant a step is due, counted from `anchor` (when the
    previous step settled, or the episode started) in the contact's `zone`.
    None when a RelativeDelay's attribute is missing or not a date.

    A RelativeDelay is a calendar rule: the first date on or after the
    anchor's local date that is `offset_days` from an occurrence of the
    attribute's month and day. Its time that day may already have passed
    (the episode started at 10:00 on the birthday, the step says 09:00);
    then the step is due at once, in the past, and the max-lateness guard
    decides whether it is still worth sending, rather than a year later.
    """
    _require_aware(anchor, "anchor")
    if isinstance(delay, AfterDelay):
        return anchor.astimezone(UTC) + timedelta(seconds=delay.seconds)
    anchor_day = anchor.astimezone(zone).date()
    if isinstance(delay, AtLocalDelay):
        day = anchor_day + timedelta(days=delay.day_offset)
        # A date further on is always later: at most two steps, and a third
        # only for a zone that turns its clock back over midnight.
        while (due := local_instant(day, delay.time, zone)) < anchor:
            day += timedelta(days=1)
        return due
    month_day = _month_day(attributes.get(delay.attribute))
    if month_day is None:
        return None
    offset = timedelta(days=delay.offset_days)
    # The occurrence that the anchor's day could be offset_days from, then
    # the first year whose occurrence, offset, is not before that day.
    year = (anchor_day - offset).year - 1
    while (day := _occurrence(year, *month_day) + offset) < anchor_day:
        year += 1
    return local_instant(day, delay.time, zone)


def _month_day(value: JsonValue) -> tuple[int, int] | None:
    """(month, day) from "1990-05-17" or "05-17", or None."""
    if not isinstance(value, str):
        return None
    if match := _FULL_DATE.fullmatch(value):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match := _MONTH_DAY.fullmatch(value):
        year, month, day = _LEAP_YEAR, int(match[1]), int(match[2])
    else:
        return None
    try:
        date(year, month, day)
    except ValueError:
        return None
    return month, day


def _occurrence(year: int, month: int, day: int) -> date:
    """The date of a yearly (month, day) in `year`: Feb 29 is Feb 28 in a
    common year (the last day of the birthday's month, as most people
    celebrate it)."""
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, day - 1)


# -- quiet hours ------------------------------------------------------------


def in_quiet_hours(at: datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    """Whether the local clock at `at` reads inside `[start, end)`."""
    _require_aware(at, "at")
    wall = at.astimezone(zone).time().replace(fold=0)
    if quiet.wraps:
        return wall >= quiet.start or wall < quiet.end
    return quiet.start <= wall < quiet.end


def quiet_until(
    at: datetime,
    quiet: QuietHours | None,
    zone: ZoneInfo,
    *,
    jitter_key: str,
    jitter_seconds: int = 900,
) -> datetime | None:
    """None when `at` is outside quiet hours in `zone`; else the UTC end of
    the quiet window it is in, plus a jitter in `[0, jitter_seconds)` taken
    from a hash of `jitter_key` (the decision's key): the same decision
    always moves to the same instant, and a hundred thousand contacts held
    overnight do not all send at 08:00:00. A jitter that would land back in
    quiet hours (a gap between windows shorter than the jitter) is dropped."""
    if jitter_seconds < 0:
        raise ValueError("jitter_seconds must not be negative")
    if quiet is None or not in_quiet_hours(at, quiet, zone):
        return None
    local = at.astimezone(zone)
    day = local.date()
    if quiet.wraps and local.time() >= quiet.start:
        day += timedelta(days=1)
    # In a fall-back overlap the end's first occurrence may be behind us
    # (quiet until 01:30 and it is the second 01:15): take the second one.
    end = local_instant(day, quiet.end, zone, fold=0)
    if end <= at:
        end = local_instant(day, quiet.end, zone, fold=1)
    moved = end + timedelta(seconds=_jitter(jitter_key, jitter_seconds))
    return end if in_quiet_hours(moved, quiet, zone) else moved


def _jitter(key: str, span: int) -> int:
    if span == 0:
        return 0
    digest = hashlib.sha256(b"threadline.quiet-jitter\0" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % span


# -- frequency caps ---------------------------------------------------------


def cap_reopens_at(
    sent_at: Sequence[datetime], *, now: datetime, caps: Sequence[FrequencyCap]
) -> datetime | None:
    """None if one more touch at `now` breaks no cap; else the earliest UTC
    instant at which one more would break none.

    `sent_at` is the contact's counted touches from the ledger, in any
    order. A cap's window is the half-open `(t - window, t]`: a touch
    exactly one window old no longer counts, so a cap of one per 16 h
    reopens exactly 16 h after the last touch. For a cap that is full at
    `t`, the earliest reopening is its count-th most recent touch plus the
    window; the latest of those over the caps is checked again, and moved on
    if it is still full (touches stamped after `now`, which a clock skew can
    make, still count once their time comes).
    """
    _require_aware(now, "now")
    touches = sorted((s.astimezone(UTC) for s in sent_at), reverse=True)
    at = now.astimezone(UTC)
    reopened: datetime | None = None
    while True:
        later = [_reopens(touches, at, cap) for cap in caps]
        blocked = [r for r in later if r is not None]
        if not blocked:
            return reopened
        at = reopened = max(blocked)


def _reopens(touches: Sequence[datetime], at: datetime, cap: FrequencyCap) -> datetime | None:
    """When `cap`, full at `at`, stops being full; None if it is not full.
    `touches` is sorted newest first."""
    window = timedelta(seconds=cap.window_seconds)
    counted = [s for s in touches if s > at - window and s <= at]
    if len(counted) < cap.count:
        return None
    return counted[cap.count - 1] + window


def too_late(due_at: datetime, now: datetime, max_lateness_seconds: int | None) -> bool:
    """Whether a step due at `due_at` is more than its max lateness behind
    `now` (exactly at the limit is still on time); None means never late."""
    _require_aware(due_at, "due_at")
    _require_aware(now, "now")
    if max_lateness_seconds is None:
        return False
    return now - due_at > timedelta(seconds=max_lateness_seconds)


# -- arms and variants ------------------------------------------------------


def bucket_of(touchpoint_id: int, contact_id: int) -> int:
    """The contact's bucket in this touchpoint, 0..9999, from SHA-256 (never
    Python's `hash`, which changes per process). Per touchpoint, so being in
    one touchpoint's holdout says nothing about another's."""
    digest = hashlib.sha256(f"threadline.bucket\0{touchpoint_id}\0{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_holdout(bucket: int, holdout_percent: int) -> bool:
    """Whether the bucket is in the control group: the lowest
    `holdout_percent` hundredths, i.e. only `bucket // 100` decides."""
    _require_bucket(bucket)
    if not 0 <= holdout_percent <= 100:
        raise ValueError("holdout_percent must be between 0 and 100")
    return bucket < holdout_percent * 100


def pick_variant(weights: Sequence[tuple[str, int]], bucket: int) -> str:
    """The variant for `bucket`: weights (all > 0) are scaled to 10000
    slots and laid end to end in the order given.

    The slot is the bucket with its two base-100 digits swapped
    (`(bucket % 100) * 100 + bucket // 100`). The holdout reads only the
    high digit, the variant mostly the low one, so within the holdout and
    within the treatment alike every variant keeps its weight (to the 1%
    the slots allow); using the bucket itself would put a 10% holdout
    entirely inside the first variant's slots and starve it of treated
    contacts. The swap is a permutation, so over all buckets the shares are
    exactly the scaled weights.
    """
    _require_bucket(bucket)
    if not weights:
        raise ValueError("at least one variant is needed")
    if any(weight <= 0 for _, weight in weights):
        raise ValueError("variant weights must be positive")
    slot = (bucket % 100) * 100 + bucket // 100
    total = sum(weight for _, weight in weights)
    running = 0
    for name, weight in weights:
        running += weight
        if slot < running * BUCKETS // total:
            return name
    raise AssertionError("the last variant ends at 10000")  # pragma: no cover


def _require_bucket(bucket: int) -> None:
    if not 0 <= bucket < BUCKETS:
        raise ValueError("bucket must be between 0 and 9999")
