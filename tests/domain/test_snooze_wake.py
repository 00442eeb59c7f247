"""When a snooze's wake-up reopens its conversation, and when a failed
job runs again: pure decisions, time as a parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.conversations import ConversationState, SnoozeWake, snooze_wake
from server.domain.jobs import retry_at
from server.domain.values import ConversationStatus

DUE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def state(status: ConversationStatus, snoozed_until: datetime | None) -> ConversationState:
    return ConversationState(
        status=status,
        snoozed_until=snoozed_until,
        first_reply_at=None,
        waiting_since=None,
        resolved_at=None,
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (DUE - timedelta(microseconds=1), SnoozeWake.EARLY),
        (DUE, SnoozeWake.WAKE),
        (DUE + timedelta(days=3), SnoozeWake.WAKE),  # late (the server was down): still once
    ],
)
def test_a_snooze_wakes_from_its_time_on(now: datetime, expected: SnoozeWake) -> None:
    assert snooze_wake(state(ConversationStatus.SNOOZED, DUE), due_at=DUE, now=now) is expected


@pytest.mark.parametrize(
    "current",
    [
        state(ConversationStatus.SNOOZED, DUE + timedelta(hours=1)),  # snoozed again, later
        state(ConversationStatus.SNOOZED, DUE - timedelta(hours=1)),  # ... or earlier
        state(ConversationStatus.OPEN, None),  # unsnoozed, or woken by a message
        state(ConversationStatus.RESOLVED, None),
        state(ConversationStatus.PENDING, None),
    ],
)
def test_a_wake_up_for_another_snooze_is_stale(current: ConversationState) -> None:
    later = DUE + timedelta(days=1)
    assert snooze_wake(current, due_at=DUE, now=later) is SnoozeWake.STALE


def test_the_snooze_time_is_compared_as_an_instant() -> None:
    paris = DUE.astimezone(datetime.fromisoformat("2026-01-05T10:00:00+01:00").tzinfo)
    assert snooze_wake(state(ConversationStatus.SNOOZED, paris), due_at=DUE, now=DUE) is (
        SnoozeWake.WAKE
    )


def test_a_failed_job_backs_off_doubling_up_to_half_an_hour() -> None:
    delays = [(retry_at(n, DUE) - DUE).total_seconds() for n in range(1, 10)]
    assert delays == [15, 30, 60, 120, 240, 480, 960, 1800, 1800]
