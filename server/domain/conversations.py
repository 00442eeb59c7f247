"""Pure rules for a conversation's state: status changes and what a new
message does to the timers. Time is a parameter; no I/O."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from server.domain.errors import InvalidInput
from server.domain.values import ConversationStatus, Direction

MAX_LABELS = 50


@dataclasses.dataclass(frozen=True)
class ConversationState:
    status: ConversationStatus
    snoozed_until: datetime | None
    first_reply_at: datetime | None
    waiting_since: datetime | None
    resolved_at: datetime | None


def status_change(
    state: ConversationState,
    new_status: ConversationStatus,
    *,
    snoozed_until: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """The column values to write for a status change ({} if nothing
    changes). Snoozing needs a time in the future; any other status clears
    it. Resolving stamps resolved_at; reopening clears it."""
    if snoozed_until is not None:
        snoozed_until = snoozed_until.astimezone(UTC)
    if new_status is ConversationStatus.SNOOZED:
        if snoozed_until is None:
            raise InvalidInput("snoozing needs snoozed_until", field="snoozed_until")
        if snoozed_until <= now:
            raise InvalidInput("snoozed_until must be in the future", field="snoozed_until")
    elif snoozed_until is not None:
        raise InvalidInput("snoozed_until is only for status snoozed", field="snoozed_until")
    if new_status is state.status and snoozed_until == state.snoozed_until:
        return {}
    changes: dict[str, Any] = {"status": new_status.value, "snoozed_until": snoozed_until}
    if new_status is ConversationStatus.RESOLVED:
        changes["resolved_at"] = now
        changes["waiting_since"] = None
    elif state.resolved_at is not None:
        changes["resolved_at"] = None
    return changes


class SnoozeWake(StrEnum):
    """What a snooze's wake-up job finds when it runs."""

    WAKE = "wake"  # still snoozed until this very time, and the time has come
    EARLY = "early"  # still snoozed, but its time is yet to come
    STALE = "stale"  # unsnoozed, woken by a message, or snoozed to another time


def snooze_wake(state: ConversationState, *, due_at: datetime, now: datetime) -> SnoozeWake:
    """Whether the wake-up scheduled for `due_at` should reopen the
    conversation now. Only the snooze it was scheduled for counts: a
    conversation re-snoozed to another time has another wake-up."""
    if state.status is not ConversationStatus.SNOOZED or state.snoozed_until != due_at:
        return SnoozeWake.STALE
    return SnoozeWake.WAKE if now >= due_at else SnoozeWake.EARLY


def after_message(
    state: ConversationState,
    *,
    direction: Direction,
    private: bool,
    from_agent: bool,
    now: datetime,
) -> dict[str, Any]:
    """Timer and status updates when a message is added.

    An inbound message starts (or keeps) the customer's wait and wakes a
    snoozed or pending conversation; a resolved one is reopened by the
    caller's choice of conversation, never here. An agent's public reply
    ends the wait and stamps the first reply. Private notes only count as
    activity.
    """
    changes: dict[str, Any] = {"last_activity_at": now}
    if private:
        return changes
    if direction is Direction.INBOUND:
        if state.waiting_since is None:
            changes["waiting_since"] = now
        if state.status in (ConversationStatus.SNOOZED, ConversationStatus.PENDING):
            changes["status"] = ConversationStatus.OPEN.value
            changes["snoozed_until"] = None
    elif from_agent:
        changes["waiting_since"] = None
        if state.first_reply_at is None:
            changes["first_reply_at"] = now
    return changes


def clean_labels(labels: list[str], *, field: str = "labels") -> list[str]:
    """Labels are trimmed, lower-cased, de-duplicated; no empties or commas."""
    out: set[str] = set()
    for i, raw in enumerate(labels):
        label = raw.strip().lower()
        if not label or "," in label or len(label) > 100:
            raise InvalidInput(
                "a label must be 1-100 characters without commas", field=f"{field}[{i}]"
            )
        out.add(label)
    if len(out) > MAX_LABELS:
        raise InvalidInput(f"at most {MAX_LABELS} labels", field=field)
    return sorted(out)
