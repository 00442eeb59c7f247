"""The touchpoint guards that are not about the clock on the wall: the
frequency caps over the ledger (checked against fixed ledgers and, by
property, against a minute-by-minute reading of the caps), lateness, and
the sticky holdout and variant choice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.touch_guards import (
    BUCKETS,
    bucket_of,
    cap_reopens_at,
    in_holdout,
    pick_variant,
    too_late,
)
from server.domain.touch_timing import DEFAULT_MARKETING_CAPS, FrequencyCap

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def reopens(
    *ago: timedelta, caps: tuple[FrequencyCap, ...] = DEFAULT_MARKETING_CAPS
) -> datetime | None:
    return cap_reopens_at([NOW - a for a in ago], now=NOW, caps=caps)


# -- frequency caps ---------------------------------------------------------


def test_an_empty_ledger_or_no_caps_blocks_nothing() -> None:
    assert reopens() is None
    assert reopens(timedelta(0), timedelta(0), caps=()) is None


def test_one_per_16_hours() -> None:
    assert reopens(10 * H) == NOW + 6 * H
    assert reopens(timedelta(0)) == NOW + 16 * H  # a touch this very instant counts
    assert reopens(16 * H - timedelta(seconds=1)) == NOW + timedelta(seconds=1)
    # Exactly one window old: out of the window.
    assert reopens(16 * H) is None
    assert reopens(16 * H + timedelta(seconds=1)) is None


def test_three_per_7_days() -> None:
    assert reopens(1 * D, 4 * D) is None
    assert reopens(1 * D, 4 * D, 6 * D) == NOW + D
    assert reopens(1 * D, 4 * D, 7 * D) is None  # the oldest is exactly a week old
    assert reopens(1 * D, 4 * D, 7 * D - timedelta(seconds=1)) == NOW + timedelta(seconds=1)
    # The third most recent decides, not the oldest.
    assert reopens(1 * D, 2 * D, 3 * D, 5 * D, 6 * D) == NOW + 4 * D


def test_the_ledger_order_does_not_matter() -> None:
    ledger = [1 * D, 6 * D, 20 * D, 4 * D, 10 * H, 8 * D]
    expected = reopens(*sorted(ledger))
    # Four touches in the week: the third most recent, 4 days ago, decides.
    assert expected == NOW + 3 * D
    assert reopens(*ledger) == expected
    assert reopens(*reversed(ledger)) == expected


def test_touches_in_other_zones_are_the_same_instants() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    ledger = [(NOW - 10 * H).astimezone(berlin)]
    found = cap_reopens_at(ledger, now=NOW.astimezone(berlin), caps=DEFAULT_MARKETING_CAPS)
    assert found == NOW + 6 * H
    assert found is not None and found.tzinfo is UTC


def test_combined_caps_take_the_later_reopening() -> None:
    # 1/16h reopens in 6 h, 3/7d in 4 h: six.
    assert reopens(10 * H, 3 * D, 7 * D - 4 * H) == NOW + 6 * H
    # 1/16h reopens in 6 h, when 3/7d is still full until tomorrow.
    reopened = reopens(10 * H, 2 * D, 6 * D)
    assert reopened == NOW + D
    ledger = [NOW - 10 * H, NOW - 2 * D, NOW - 6 * D]
    caps = DEFAULT_MARKETING_CAPS
    assert cap_reopens_at(ledger, now=reopened, caps=caps) is None
    assert cap_reopens_at(ledger, now=reopened - timedelta(seconds=1), caps=caps) == reopened


def test_a_reopening_still_full_is_moved_on() -> None:
    # A touch stamped after `now` (a clock skewed ahead) counts once its time
    # comes: at the 1/16h cap's reopening it fills the window again.
    assert reopens(1 * H, -5 * H, caps=(FrequencyCap(1, 16 * 3600),)) == NOW + 21 * H


def test_touches_older_than_every_window_count_for_nothing() -> None:
    assert reopens(*(8 * D + n * H for n in range(50))) is None


def test_a_cap_of_two_per_hour() -> None:
    caps = (FrequencyCap(2, 3600),)
    assert reopens(timedelta(minutes=20), caps=caps) is None
    assert reopens(timedelta(minutes=20), timedelta(minutes=50), caps=caps) == NOW + 10 * (H / 60)
    assert reopens(
        timedelta(minutes=5), timedelta(minutes=20), timedelta(minutes=50), caps=caps
    ) == NOW + 40 * (H / 60)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        cap_reopens_at([], now=datetime(2026, 1, 1), caps=DEFAULT_MARKETING_CAPS)


def full(touches: list[datetime], at: datetime, caps: list[FrequencyCap]) -> bool:
    """The caps read literally: is any window ending at `at` already full?"""
    return any(
        sum(1 for s in touches if at - timedelta(seconds=c.window_seconds) < s <= at) >= c.count
        for c in caps
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-240, 30), max_size=12),
    st.lists(st.tuples(st.integers(1, 4), st.integers(1, 180)), min_size=1, max_size=3),
)
def test_reopening_is_the_first_minute_the_caps_allow(
    minutes: list[int], cap_specs: list[tuple[int, int]]
) -> None:
    # Touches and windows in whole minutes: whether the caps are full only
    # changes on a whole minute, so a scan minute by minute is exact.
    touches = [NOW + timedelta(minutes=m) for m in minutes]
    caps = [FrequencyCap(count, window * 60) for count, window in cap_specs]
    found = cap_reopens_at(touches, now=NOW, caps=caps)
    if found is None:
        assert not full(touches, NOW, caps)
        return
    assert not full(touches, found, caps)
    assert (found - NOW) % timedelta(minutes=1) == timedelta(0)
    at = NOW
    while at < found:
        assert full(touches, at, caps)
        at += timedelta(minutes=1)


# -- lateness ---------------------------------------------------------------


def test_too_late() -> None:
    assert not too_late(NOW - 365 * D, NOW, None)
    assert not too_late(NOW - H, NOW, 3600)  # exactly at the limit
    assert too_late(NOW - H - timedelta(seconds=1), NOW, 3600)
    assert not too_late(NOW + H, NOW, 0)
    assert not too_late(NOW, NOW, 0)
    assert too_late(NOW - timedelta(microseconds=1), NOW, 0)
    with pytest.raises(ValueError, match="aware"):
        too_late(datetime(2026, 1, 1), NOW, 60)


# -- buckets, holdout and variants ------------------------------------------


def test_buckets_are_stable_and_spread() -> None:
    # Pinned: a bucket must not change between releases or processes.
    assert [bucket_of(1, c) for c in range(1, 6)] == PINNED_BUCKETS
    buckets = [bucket_of(7, c) for c in range(20000)]
    assert all(0 <= b < BUCKETS for b in buckets)
    tenths = Counter(b // 1000 for b in buckets)
    assert all(1800 < tenths[t] < 2200 for t in range(10))
    # Another touchpoint shuffles the contacts anew.
    same = sum(bucket_of(7, c) // 1000 == bucket_of(8, c) // 1000 for c in range(20000))
    assert 1700 < same < 2300


PINNED_BUCKETS = [8227, 748, 658, 6357, 8741]


def test_holdout_is_the_lowest_hundredths() -> None:
    assert not any(in_holdout(b, 0) for b in range(BUCKETS))
    assert all(in_holdout(b, 100) for b in range(BUCKETS))
    assert in_holdout(999, 10)
    assert not in_holdout(1000, 10)
    assert sum(in_holdout(b, 7) for b in range(BUCKETS)) == 700
    for bad in (-1, 101):
        with pytest.raises(ValueError):
            in_holdout(0, bad)
    with pytest.raises(ValueError):
        in_holdout(BUCKETS, 10)


@pytest.mark.parametrize(
    "weights",
    [
        [("a", 1)],
        [("a", 50), ("b", 50)],
        [("a", 50), ("b", 30), ("c", 20)],
        [("a", 1), ("b", 2)],
        [("a", 1), ("b", 1), ("c", 1)],
        [("a", 7), ("b", 1), ("c", 1), ("d", 1)],
        [("a", 999), ("b", 1)],
    ],
)
def test_variant_shares_match_the_weights(weights: list[tuple[str, int]]) -> None:
    total = sum(w for _, w in weights)
    shares = Counter(pick_variant(weights, b) for b in range(BUCKETS))
    for name, weight in weights:
        assert abs(shares[name] / BUCKETS - weight / total) < 0.01


@pytest.mark.parametrize("percent", [1, 5, 10, 20, 50, 90])
@pytest.mark.parametrize(
    "weights",
    [[("a", 50), ("b", 50)], [("a", 50), ("b", 30), ("c", 20)], [("a", 1), ("b", 1), ("c", 1)]],
)
def test_variants_are_independent_of_the_holdout(
    weights: list[tuple[str, int]], percent: int
) -> None:
    # Both arms see every variant in its share: the holdout is a fair control
    # for each variant, and no variant is starved of treated contacts.
    total = sum(w for _, w in weights)
    for arm in (True, False):
        buckets = [b for b in range(BUCKETS) if in_holdout(b, percent) is arm]
        shares = Counter(pick_variant(weights, b) for b in buckets)
        for name, weight in weights:
            assert abs(shares[name] / len(buckets) - weight / total) < 0.01


def test_variants_are_sticky() -> None:
    weights = [("a", 50), ("b", 30), ("c", 20)]
    first = [pick_variant(weights, b) for b in range(BUCKETS)]
    assert first == [pick_variant(list(weights), b) for b in range(BUCKETS)]


def test_bad_variant_weights_and_buckets_are_refused() -> None:
    for weights in ([], [("a", 0)], [("a", 1), ("b", -1)]):
        with pytest.raises(ValueError):
            pick_variant(weights, 0)
    for bucket in (-1, BUCKETS):
        with pytest.raises(ValueError):
            pick_variant([("a", 1)], bucket)
