"""Pure rules for merging contacts and conversations (FEATURES.md F3).
No I/O; time is a parameter.

A contact merge folds one contact (the merged one) into another (the
survivor) and can be undone for a while: the actions record exactly what
moved, and these rules say what the survivor's attributes become, what an
undo gives back, and when an undo is still allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue

# A contact's attributes: free-form JSON values by key.
Attributes = Mapping[str, JsonValue]

# How long a contact merge can be undone. Past it, the merged contact's
# rows have mixed with the survivor's long enough (new conversations,
# edits) that putting them back is more likely to surprise than to help.
UNDO_WINDOW = timedelta(hours=24)


@dataclasses.dataclass(frozen=True)
class AttributeMerge:
    """The survivor's attributes after a merge. `added` holds the keys the
    survivor lacked, with the merged contact's values (what an undo takes
    away again); `conflicting` the keys both have with different values,
    where the survivor's value stays."""

    attributes: dict[str, JsonValue]
    added: dict[str, JsonValue]
    conflicting: list[str]


def merge_attributes(survivor: Attributes, merged: Attributes) -> AttributeMerge:
    added = {k: v for k, v in merged.items() if k not in survivor}
    conflicting = sorted(k for k, v in merged.items() if k in survivor and survivor[k] != v)
    return AttributeMerge({**survivor, **added}, added, conflicting)


def unmerge_attributes(current: Attributes, added: Attributes) -> dict[str, JsonValue]:
    """The survivor's attributes once a merge is undone: each key the merge
    added is dropped again, unless someone has set it to another value
    since (that value is a newer fact about the survivor, not the merged
    contact's). Keys the merge did not add are left as they are now."""
    return {k: v for k, v in current.items() if k not in added or added[k] != v}


def check_contact_merge(
    survivor_id: int,
    survivor_merged_into: int | None,
    other_id: int,
    other_merged_into: int | None,
) -> None:
    """Refuse a merge that makes no sense, naming the field at fault: a
    contact into itself, or a merge involving a contact that is already
    merged (it is hidden; the caller should use the contact it points to)."""
    if survivor_id == other_id:
        raise InvalidInput("other_id: a contact can't be merged into itself", field="other_id")
    if survivor_merged_into is not None:
        raise InvalidInput(
            f"contact_id: this contact was merged into contact {survivor_merged_into};"
            " merge into that one",
            field="contact_id",
        )
    if other_merged_into is not None:
        raise InvalidInput(
            f"other_id: this contact was already merged into contact {other_merged_into}",
            field="other_id",
        )


@dataclasses.dataclass(frozen=True)
class MovedRows:
    """The rows a merge moved (or its undo moved back), by id, the number
    of messages that followed the conversations, and the attribute keys
    the survivor gained (or lost again)."""

    conversations: Sequence[int]
    messages: int
    identities: Sequence[int]
    contact_events: Sequence[int]
    visitor_sessions: Sequence[int]
    attributes_added: Collection[str]


def moved_counts(moved: MovedRows) -> dict[str, JsonValue]:
    """How much a merge moved (or its undo moved back), as the API and the
    audit log show it."""
    return {
        "conversations": len(moved.conversations),
        "messages": moved.messages,
        "identities": len(moved.identities),
        "tracked_events": len(moved.contact_events),
        "visitor_sessions": len(moved.visitor_sessions),
        "attributes_added": sorted(moved.attributes_added),
    }


@dataclasses.dataclass(frozen=True)
class MergeRecord:
    """What a contact merge did, as `contact_merges.moved` keeps it for the
    undo: the moved rows, the conversation merges already among the merged
    contact's conversations (source, target), the attributes the survivor
    gained with their values, and the survivor's attributes before."""

    conversations: list[int]
    messages: int
    identities: list[int]
    contact_events: list[int]
    visitor_sessions: list[int]
    conversation_merges: list[tuple[int, int]]
    attributes_added: dict[str, JsonValue]
    survivor_attributes: dict[str, JsonValue]

    def rows(self) -> MovedRows:
        return MovedRows(
            conversations=self.conversations,
            messages=self.messages,
            identities=self.identities,
            contact_events=self.contact_events,
            visitor_sessions=self.visitor_sessions,
            attributes_added=self.attributes_added,
        )

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "conversations": self.conversations,
            "identities": self.identities,
            "contact_events": self.contact_events,
            "visitor_sessions": self.visitor_sessions,
            "messages": self.messages,
            "conversation_merges": [list(pair) for pair in self.conversation_merges],
            "attributes_added": self.attributes_added,
            "survivor_attributes": self.survivor_attributes,
        }

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> MergeRecord:
        """The record from the stored column (written by `to_json`)."""
        return cls(
            conversations=list(stored["conversations"]),
            messages=int(stored["messages"]),
            identities=list(stored["identities"]),
            contact_events=list(stored["contact_events"]),
            visitor_sessions=list(stored["visitor_sessions"]),
            conversation_merges=[(s, t) for s, t in stored["conversation_merges"]],
            attributes_added=dict(stored["attributes_added"]),
            survivor_attributes=dict(stored["survivor_attributes"]),
        )


def undo_until(merged_at: datetime) -> datetime:
    return merged_at + UNDO_WINDOW


def undo_refusal(
    *,
    now: datetime,
    merged_at: datetime,
    undone_at: datetime | None,
    survivor_merged_into: int | None,
) -> str | None:
    """Why a merge can no longer be undone, or None when it can. (Who may
    undo it is a separate question: server.actions.contact_merges.)"""
    if undone_at is not None:
        return "this merge was already undone"
    if now > undo_until(merged_at):
        hours = int(UNDO_WINDOW.total_seconds() // 3600)
        return f"a merge can only be undone within {hours} hours"
    if survivor_merged_into is not None:
        return (
            f"the surviving contact has since been merged into contact {survivor_merged_into};"
            " undo that merge first"
        )
    return None


def read_after_merge(
    target_read: int, target_last: int, source_read: int, source_last: int, new_last: int
) -> int:
    """A reader's position in the target once the source's messages were
    appended after `target_last` (the target now ends at `new_last`): a
    reader who had seen all of both has seen all of the result; anyone
    else has not seen the appended messages yet, and stays where it was."""
    if target_read >= target_last and source_read >= source_last:
        return new_last
    return target_read
