"""The pure rules of server.domain.merges: no database, no loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

import pytest

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.merges import (
    UNDO_WINDOW,
    MovedRows,
    check_contact_merge,
    merge_attributes,
    moved_counts,
    read_after_merge,
    undo_refusal,
    undo_until,
    unmerge_attributes,
)

MERGED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_the_survivor_gains_missing_attributes_and_keeps_its_own() -> None:
    result = merge_attributes(
        {"plan": "pro", "city": "Lyon", "vip": True},
        {"plan": "free", "city": "Lyon", "phone_model": "X", "orders": 3},
    )
    assert result.attributes == {
        "plan": "pro",
        "city": "Lyon",
        "vip": True,
        "phone_model": "X",
        "orders": 3,
    }
    assert result.added == {"phone_model": "X", "orders": 3}
    # Same value on both sides is no conflict.
    assert result.conflicting == ["plan"]


def test_unmerging_drops_only_added_keys_still_as_the_merge_left_them() -> None:
    added: dict[str, JsonValue] = {"phone_model": "X", "orders": 3}
    current: dict[str, JsonValue] = {
        "plan": "enterprise",
        "phone_model": "X",
        "orders": 4,
        "new": 1,
    }
    # `orders` was changed after the merge: that is a fact about the
    # survivor now. Other changes (plan, new) stay too.
    assert unmerge_attributes(current, added) == {"plan": "enterprise", "orders": 4, "new": 1}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((1, None, 1, None), "other_id"),
        ((1, 9, 2, None), "contact_id"),
        ((1, None, 2, 9), "other_id"),
    ],
)
def test_nonsense_merges_are_refused_by_field(
    args: tuple[int, int | None, int, int | None], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_contact_merge(*args)
    assert refused.value.field == field


def test_a_sensible_merge_passes() -> None:
    check_contact_merge(1, None, 2, None)


class _MergeState(TypedDict):
    """The merge row's fields undo_refusal reads, as keyword arguments."""

    merged_at: datetime
    undone_at: datetime | None
    survivor_merged_into: int | None


def test_undo_window() -> None:
    assert undo_until(MERGED_AT) == MERGED_AT + UNDO_WINDOW
    ok: _MergeState = {"merged_at": MERGED_AT, "undone_at": None, "survivor_merged_into": None}
    assert undo_refusal(now=MERGED_AT + UNDO_WINDOW, **ok) is None
    late = undo_refusal(now=MERGED_AT + UNDO_WINDOW + timedelta(seconds=1), **ok)
    assert late is not None and "24 hours" in late
    undone: _MergeState = {**ok, "undone_at": MERGED_AT}
    again = undo_refusal(now=MERGED_AT, **undone)
    assert again == "this merge was already undone"
    remerged: _MergeState = {**ok, "survivor_merged_into": 7}
    chained = undo_refusal(now=MERGED_AT, **remerged)
    assert chained is not None and "contact 7" in chained


@pytest.mark.parametrize(
    ("target_read", "source_read", "expected"),
    [
        (5, 3, 8),  # had read all of both: all of the result
        (4, 3, 4),  # behind in the target: where it was
        (5, 2, 5),  # behind in the source: the appended ones are unread
        (0, 0, 0),
    ],
)
def test_read_position_after_a_conversation_merge(
    target_read: int, source_read: int, expected: int
) -> None:
    assert read_after_merge(target_read, 5, source_read, 3, 8) == expected


def test_moved_counts() -> None:
    moved = MovedRows(
        conversations=[1, 2],
        messages=7,
        identities=[3],
        contact_events=[4, 5, 6],
        visitor_sessions=[],
        attributes_added={"b": 1, "a": 2},
    )
    assert moved_counts(moved) == {
        "conversations": 2,
        "messages": 7,
        "identities": 1,
        "tracked_events": 3,
        "visitor_sessions": 0,
        "attributes_added": ["a", "b"],
    }
