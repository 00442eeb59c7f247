"""The pure rules of server.domain.conversations: no database, no loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.domain.conversations import (
    MAX_LABELS,
    ConversationState,
    MessageEffect,
    StatusChange,
    after_message,
    clean_labels,
    status_change,
)
from server.domain.errors import InvalidInput
from server.domain.values import ConversationStatus, Direction

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=3)
LATER = NOW + timedelta(hours=3)

OPEN, PENDING, SNOOZED, RESOLVED = (
    ConversationStatus.OPEN,
    ConversationStatus.PENDING,
    ConversationStatus.SNOOZED,
    ConversationStatus.RESOLVED,
)


def columns(change: StatusChange | MessageEffect | None) -> dict[str, object]:
    """The column values a rule's decision writes ({} for none)."""
    return {} if change is None else change.columns()


def state(
    status: ConversationStatus = OPEN,
    *,
    snoozed_until: datetime | None = None,
    first_reply_at: datetime | None = None,
    waiting_since: datetime | None = None,
    resolved_at: datetime | None = None,
) -> ConversationState:
    return ConversationState(
        status=status,
        snoozed_until=snoozed_until,
        first_reply_at=first_reply_at,
        waiting_since=waiting_since,
        resolved_at=resolved_at,
    )


# -- status_change ------------------------------------------------------------


def test_open_to_pending_sets_status_and_clears_snooze() -> None:
    assert columns(status_change(state(OPEN), PENDING, snoozed_until=None, now=NOW)) == {
        "status": "pending",
        "snoozed_until": None,
    }


def test_same_status_is_no_change() -> None:
    for status in (OPEN, PENDING):
        assert columns(status_change(state(status), status, snoozed_until=None, now=NOW)) == {}
    resolved = state(RESOLVED, resolved_at=EARLIER)
    assert columns(status_change(resolved, RESOLVED, snoozed_until=None, now=NOW)) == {}


def test_snooze_needs_a_future_time() -> None:
    assert columns(status_change(state(OPEN), SNOOZED, snoozed_until=LATER, now=NOW)) == {
        "status": "snoozed",
        "snoozed_until": LATER,
    }
    for bad in (None, NOW, EARLIER):
        with pytest.raises(InvalidInput) as err:
            status_change(state(OPEN), SNOOZED, snoozed_until=bad, now=NOW)
        assert err.value.field == "snoozed_until"


def test_snoozed_until_is_only_for_snoozed() -> None:
    for status in (OPEN, PENDING, RESOLVED):
        with pytest.raises(InvalidInput) as err:
            status_change(state(OPEN), status, snoozed_until=LATER, now=NOW)
        assert err.value.field == "snoozed_until"


def test_resnooze_to_another_time_is_a_change_same_time_is_not() -> None:
    snoozed = state(SNOOZED, snoozed_until=LATER)
    later_still = LATER + timedelta(days=1)
    assert columns(status_change(snoozed, SNOOZED, snoozed_until=later_still, now=NOW)) == {
        "status": "snoozed",
        "snoozed_until": later_still,
    }
    assert columns(status_change(snoozed, SNOOZED, snoozed_until=LATER, now=NOW)) == {}
    # The same instant in another zone is the same time.
    same_elsewhere = LATER.astimezone(timezone(timedelta(hours=5)))
    assert columns(status_change(snoozed, SNOOZED, snoozed_until=same_elsewhere, now=NOW)) == {}


def test_unsnooze_clears_the_time() -> None:
    snoozed = state(SNOOZED, snoozed_until=LATER)
    assert columns(status_change(snoozed, OPEN, snoozed_until=None, now=NOW)) == {
        "status": "open",
        "snoozed_until": None,
    }


def test_resolve_stamps_resolved_at_and_ends_the_wait() -> None:
    waiting = state(OPEN, waiting_since=EARLIER, first_reply_at=EARLIER)
    assert columns(status_change(waiting, RESOLVED, snoozed_until=None, now=NOW)) == {
        "status": "resolved",
        "snoozed_until": None,
        "resolved_at": NOW,
        "waiting_since": None,
    }
    snoozed = state(SNOOZED, snoozed_until=LATER)
    assert columns(status_change(snoozed, RESOLVED, snoozed_until=None, now=NOW)) == {
        "status": "resolved",
        "snoozed_until": None,
        "resolved_at": NOW,
        "waiting_since": None,
    }


def test_reopen_clears_resolved_at() -> None:
    resolved = state(RESOLVED, resolved_at=EARLIER)
    assert columns(status_change(resolved, OPEN, snoozed_until=None, now=NOW)) == {
        "status": "open",
        "snoozed_until": None,
        "resolved_at": None,
    }
    assert columns(status_change(resolved, SNOOZED, snoozed_until=LATER, now=NOW)) == {
        "status": "snoozed",
        "snoozed_until": LATER,
        "resolved_at": None,
    }


# -- after_message ----------------------------------------------------------


def test_private_note_is_only_activity() -> None:
    for direction in Direction:
        for st in (state(OPEN), state(SNOOZED, snoozed_until=LATER), state(PENDING)):
            assert columns(
                after_message(st, direction=direction, private=True, from_agent=True, now=NOW)
            ) == {"last_activity_at": NOW}


def test_inbound_starts_the_wait() -> None:
    assert columns(
        after_message(
            state(OPEN), direction=Direction.INBOUND, private=False, from_agent=False, now=NOW
        )
    ) == {"last_activity_at": NOW, "waiting_since": NOW}


def test_inbound_keeps_an_earlier_wait() -> None:
    assert columns(
        after_message(
            state(OPEN, waiting_since=EARLIER),
            direction=Direction.INBOUND,
            private=False,
            from_agent=False,
            now=NOW,
        )
    ) == {"last_activity_at": NOW}


@pytest.mark.parametrize("status", [SNOOZED, PENDING])
def test_inbound_wakes_snoozed_and_pending(status: ConversationStatus) -> None:
    st = state(status, snoozed_until=LATER if status is SNOOZED else None, waiting_since=EARLIER)
    assert columns(
        after_message(st, direction=Direction.INBOUND, private=False, from_agent=False, now=NOW)
    ) == {"last_activity_at": NOW, "status": "open", "snoozed_until": None}


def test_inbound_never_reopens_resolved() -> None:
    resolved = state(RESOLVED, resolved_at=EARLIER)
    assert columns(
        after_message(
            resolved, direction=Direction.INBOUND, private=False, from_agent=False, now=NOW
        )
    ) == {"last_activity_at": NOW, "waiting_since": NOW}


def test_first_agent_reply_stamps_first_reply_and_ends_wait() -> None:
    assert columns(
        after_message(
            state(OPEN, waiting_since=EARLIER),
            direction=Direction.OUTBOUND,
            private=False,
            from_agent=True,
            now=NOW,
        )
    ) == {"last_activity_at": NOW, "waiting_since": None, "first_reply_at": NOW}


def test_later_agent_reply_keeps_first_reply() -> None:
    assert columns(
        after_message(
            state(OPEN, waiting_since=EARLIER, first_reply_at=EARLIER),
            direction=Direction.OUTBOUND,
            private=False,
            from_agent=True,
            now=NOW,
        )
    ) == {"last_activity_at": NOW, "waiting_since": None}


def test_outbound_not_from_an_agent_is_only_activity() -> None:
    assert columns(
        after_message(
            state(OPEN, waiting_since=EARLIER),
            direction=Direction.OUTBOUND,
            private=False,
            from_agent=False,
            now=NOW,
        )
    ) == {"last_activity_at": NOW}


def test_outbound_does_not_wake_a_snoozed_conversation() -> None:
    snoozed = state(SNOOZED, snoozed_until=LATER)
    changes = columns(
        after_message(
            snoozed, direction=Direction.OUTBOUND, private=False, from_agent=True, now=NOW
        )
    )
    assert "status" not in changes
    assert "snoozed_until" not in changes


# -- clean_labels -------------------------------------------------------------


def test_labels_are_trimmed_lowered_deduplicated_sorted() -> None:
    assert clean_labels([" VIP ", "vip", "Billing", "billing ", "b2b"]) == ["b2b", "billing", "vip"]
    assert clean_labels([]) == []


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        (["ok", ""], "labels[1]"),
        (["   "], "labels[0]"),
        (["a,b"], "labels[0]"),
        (["ok", "x" * 101], "labels[1]"),
    ],
)
def test_bad_label_names_its_position(labels: list[str], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        clean_labels(labels)
    assert err.value.field == field


def test_label_field_prefix_is_the_callers() -> None:
    with pytest.raises(InvalidInput) as err:
        clean_labels(["fine", "not,fine"], field="add")
    assert err.value.field == "add[1]"


def test_label_length_limit_is_inclusive() -> None:
    assert clean_labels(["x" * 100]) == ["x" * 100]


def test_at_most_max_labels_after_deduplication() -> None:
    many = [f"l{i}" for i in range(MAX_LABELS)]
    assert len(clean_labels(many + [m.upper() for m in many])) == MAX_LABELS
    with pytest.raises(InvalidInput) as err:
        clean_labels([*many, "one-more"], field="labels")
    assert err.value.field == "labels"
