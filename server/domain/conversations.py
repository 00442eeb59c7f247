"""Pure rules for a conversation's state: status changes and what a new
message does to the timers. Time is a parameter; no I/O."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import StrEnum

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


@dataclasses.dataclass(frozen=True)
class StatusChange:
    """A change of status to write. Resolving stamps `resolved_at` (now)
    and ends the customer's wait; any other status clears the resolution
    of a conversation that `was_resolved`."""

    status: ConversationStatus
    snoozed_until: datetime | None
    now: datetime
    was_resolved: bool

    def columns(self) -> dict[str, object]:
        """The conversation's column values to write."""
        changes: dict[str, object] = {
            "status": self.status.value,
            "snoozed_until": self.snoozed_until,
        }
        if self.status is ConversationStatus.RESOLVED:
            changes["resolved_at"] = self.now
            changes["waiting_since"] = None
        elif self.was_resolved:
            changes["resolved_at"] = None
        return changes


def status_change(
    state: ConversationState,
    new_status: ConversationStatus,
    *,
    snoozed_until: datetime | None,
    now: datetime,
) -> StatusChange | None:
    """The status change to write (None if nothing changes). Snoozing needs
    a time in the future; any other status clears it."""
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
        return None
    return StatusChange(new_status, snoozed_until, now, was_resolved=state.resolved_at is not None)


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


@dataclasses.dataclass(frozen=True)
class MessageEffect:
    """What a new message does to its conversation's timers and status,
    besides being activity at `now`."""

    now: datetime
    starts_wait: bool = False
    wakes: bool = False
    ends_wait: bool = False
    first_reply: bool = False

    def columns(self) -> dict[str, object]:
        """The conversation's column values to write."""
        changes: dict[str, object] = {"last_activity_at": self.now}
        if self.starts_wait:
            changes["waiting_since"] = self.now
        if self.wakes:
            changes["status"] = ConversationStatus.OPEN.value
            changes["snoozed_until"] = None
        if self.ends_wait:
            changes["waiting_since"] = None
        if self.first_reply:
            changes["first_reply_at"] = self.now
        return changes


def after_message(
    state: ConversationState,
    *,
    direction: Direction,
    private: bool,
    from_agent: bool,
    now: datetime,
) -> MessageEffect:
    """Timer and status updates when a message is added.

    An inbound message starts (or keeps) the customer's wait and wakes a
    snoozed or pending conversation; a resolved one is reopened by the
    caller's choice of conversation, never here. An agent's public reply
    ends the wait and stamps the first reply. Private notes only count as
    activity.
    """
    if private:
        return MessageEffect(now)
    if direction is Direction.INBOUND:
        return MessageEffect(
            now,
            starts_wait=state.waiting_since is None,
            wakes=state.status in (ConversationStatus.SNOOZED, ConversationStatus.PENDING),
        )
    if from_agent:
        return MessageEffect(now, ends_wait=True, first_reply=state.first_reply_at is None)
    return MessageEffect(now)


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
