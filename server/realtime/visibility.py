"""Who may receive which event over a live connection (PROTOCOLS.md P2):
exactly what the same caller could read over REST. Pure: no I/O.

Each event type declares its `Audience` next to its definition
(server.domain.events); `can_see` interprets it, the same for live events
and for those replayed from the log on resume.

A Viewer is the access state of one connection. Events that change that
state (membership, role, revocations) are turned into decisions here; the
hub carries them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import assert_never

from server.domain.events import CATALOGUE, Audience
from server.domain.json_types import JsonObject
from server.domain.values import UploaderKind
from server.domain.wire_events import WireEvent

# Contact-merge events list the conversations that moved, each with its
# inbox; an agent is told only of those in inboxes it can see (`narrow`).
_CONTACT_MERGES = {"contact.merged", "contact.merge_undone"}


class CloseCode(IntEnum):
    """Websocket close codes Threadline uses (documented in README)."""

    GOING_AWAY = 1001  # server shutting down: reconnect and resume
    POLICY = 1008  # rate limit exceeded or a malformed frame
    TOO_BIG = 1009  # a frame over the size limit
    UNAUTHENTICATED = 4001  # session ended / token revoked: log in again
    FORBIDDEN = 4003  # account deactivated
    TOO_SLOW = 4008  # the client did not read fast enough: resume with last_event_id


@dataclasses.dataclass
class Viewer:
    """What one connection may see. `inboxes` None means every inbox of the
    workspace (admins). `conversations`, when set, narrows to those
    conversations (widget visitors: `visitor` says whose)."""

    workspace_id: int
    agent_id: int | None
    is_admin: bool
    inboxes: set[int] | None
    sees_private: bool
    session_id: int | None = None
    token_id: int | None = None
    conversations: set[int] | None = None
    visitor: VisitorScope | None = None
    # The teams whose canned responses it may read; None means all (admins).
    teams: set[int] | None = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True)
class VisitorScope:
    """A widget visitor: its session, and the contact and inbox whose
    conversations it may follow: those opened for `proven_contact_id`, the
    contact the session proved (server.queries.visitors), which a contact
    merge does not change."""

    session_id: int
    contact_id: int
    inbox_id: int
    proven_contact_id: int


def audience_of(kind: str) -> Audience | None:
    """The audience an event type declares next to its definition; None
    for a type that is not in the catalogue (or declares none)."""
    cls = CATALOGUE.get(kind)
    return None if cls is None else cls.audience


def can_see(viewer: Viewer, event: WireEvent) -> bool:
    """Whether `viewer` may receive `event` (live or read back from the log:
    the one rule for both), by the audience its type declares. A type
    without one reaches nobody."""
    if event.workspace_id != viewer.workspace_id:
        return False
    if event.private and not viewer.sees_private:
        return False
    audience = audience_of(event.type)
    if audience is None:
        return False
    return _rule(audience)(viewer, event)


def can_hear(
    viewer: Viewer,
    workspace_id: int,
    inbox_id: int | None,
    conversation_id: int | None,
    *,
    private: bool = False,
) -> bool:
    """Ephemeral signals (typing, presence, viewing), never stored: they
    reach who may read the conversation they are about, else the inbox,
    else (presence) every agent of the workspace."""
    if workspace_id != viewer.workspace_id or (private and not viewer.sees_private):
        return False
    if conversation_id is not None and viewer.conversations is not None:
        return conversation_id in viewer.conversations
    if inbox_id is not None:
        return _reads_inbox(viewer, inbox_id)
    return _is_agent(viewer)


def _is_agent(viewer: Viewer) -> bool:
    """An agent's own connection (browser session or API token)."""
    return viewer.agent_id is not None and not _is_visitor(viewer)


def _is_visitor(viewer: Viewer) -> bool:
    """A connection narrowed to some conversations: a widget visitor's."""
    return viewer.visitor is not None or viewer.conversations is not None


def _reads_inbox(viewer: Viewer, inbox_id: int | None) -> bool:
    if _is_visitor(viewer) or inbox_id is None:
        return False
    return viewer.inboxes is None or inbox_id in viewer.inboxes


def _agents(viewer: Viewer, event: WireEvent) -> bool:
    return _is_agent(viewer)


def _admins(viewer: Viewer, event: WireEvent) -> bool:
    return viewer.is_admin and not _is_visitor(viewer)


def _inbox(viewer: Viewer, event: WireEvent) -> bool:
    return _reads_inbox(viewer, event.inbox_id)


def _conversation(viewer: Viewer, event: WireEvent) -> bool:
    if viewer.conversations is not None:
        return event.conversation_id in viewer.conversations
    return _reads_inbox(viewer, event.inbox_id)


def _owner(viewer: Viewer, event: WireEvent) -> bool:
    return _is_agent(viewer) and bool(event.data.get("agent_id") == viewer.agent_id)


def _uploader(viewer: Viewer, event: WireEvent) -> bool:
    """As server.queries.attachments reads a file no message carries yet:
    its uploader alone, not even an admin."""
    data = event.data
    kind, uploader_id = str(data.get("uploader_kind")), data.get("uploader_id")
    if not isinstance(uploader_id, int):
        return False
    if viewer.visitor is not None:
        return kind == UploaderKind.VISITOR.value and uploader_id == viewer.visitor.session_id
    return _is_agent(viewer) and kind == UploaderKind.AGENT.value and uploader_id == viewer.agent_id


def _canned_response_readers(viewer: Viewer, event: WireEvent) -> bool:
    return _reads_canned_response(viewer, event.data) and _within_inbox(viewer, event)


def _macro_readers(viewer: Viewer, event: WireEvent) -> bool:
    return _reads_macro(viewer, event.data) and _within_inbox(viewer, event)


def _within_inbox(viewer: Viewer, event: WireEvent) -> bool:
    """An event that names an inbox (a run in a conversation, an inbox's
    canned response) reaches only those who may read that inbox."""
    inbox_id = event.inbox_id
    return inbox_id is None or _reads_inbox(viewer, inbox_id)


def _rule(audience: Audience) -> Callable[[Viewer, WireEvent], bool]:
    # A match, so that mypy fails on an audience nobody interprets.
    match audience:
        case Audience.AGENTS:
            return _agents
        case Audience.ADMINS:
            return _admins
        case Audience.INBOX:
            return _inbox
        case Audience.CONVERSATION:
            return _conversation
        case Audience.OWNER:
            return _owner
        case Audience.UPLOADER:
            return _uploader
        case Audience.CANNED_RESPONSE_READERS:
            return _canned_response_readers
        case Audience.MACRO_READERS:
            return _macro_readers
        case _:
            assert_never(audience)


def narrow(viewer: Viewer, event: WireEvent) -> WireEvent:
    """The event as `viewer` may see it, once `can_see` allowed it: the
    event itself, or a copy without the parts this viewer can't read (a
    contact merge's conversations in other inboxes)."""
    if event.type not in _CONTACT_MERGES or viewer.inboxes is None:
        return event
    data = event.data
    moved = data.get("conversations", ())
    if isinstance(moved, str) or not isinstance(moved, Sequence):
        return event
    inboxes = viewer.inboxes
    kept = [c for c in moved if isinstance(c, Mapping) and c.get("inbox_id") in inboxes]
    if len(kept) == len(moved):
        return event
    return dataclasses.replace(event, data={**data, "conversations": kept})


def _reads_canned_response(viewer: Viewer, data: JsonObject) -> bool:
    """The audience of a canned response (server.queries.access): agents
    only; a personal one its owner alone; a team one the team's members
    and admins. Inbox ones are then checked like any event with an inbox."""
    if not _is_agent(viewer):
        return False
    scope = data.get("scope")
    if scope == "personal":
        return data.get("agent_id") == viewer.agent_id
    if scope == "team":
        return viewer.teams is None or data.get("team_id") in viewer.teams
    return scope in ("workspace", "inbox")


def _reads_macro(viewer: Viewer, data: JsonObject) -> bool:
    """The audience of a macro (server.queries.macros): agents only; a
    personal one its owner alone, admins included. A run (`macro.used`)
    is then checked like any event with an inbox."""
    if not _is_agent(viewer):
        return False
    scope = data.get("scope")
    if scope == "personal":
        return data.get("agent_id") == viewer.agent_id
    return scope == "workspace"


@dataclasses.dataclass(frozen=True)
class Close:
    code: CloseCode
    reason: str


@dataclasses.dataclass(frozen=True)
class RefreshAccess:
    """The viewer's role changed: recompute its inboxes from the database."""


Decision = Close | RefreshAccess | None


def access_change(viewer: Viewer, event: WireEvent) -> Decision:
    """Apply an event's effect on this viewer's access. Membership changes
    are applied to `viewer` in place; a revocation returns Close; a role
    change returns RefreshAccess. Called before `can_see` for the event."""
    if event.workspace_id != viewer.workspace_id:
        return None
    if viewer.visitor is not None:
        return _visitor_change(viewer, viewer.visitor, event)
    if viewer.agent_id is None:
        return None
    kind, data = event.type, event.data
    if kind == "session.ended" and data.get("session_id") == viewer.session_id is not None:
        return Close(CloseCode.UNAUTHENTICATED, f"session ended: {data.get('reason', '')}")
    if kind == "api_token.revoked" and data.get("token_id") == viewer.token_id is not None:
        return Close(CloseCode.UNAUTHENTICATED, "token revoked")
    if kind == "team.deleted" and viewer.teams is not None:
        # A deleted team's id may be handed out again (SQLite).
        viewer.teams.discard(data["team_id"])
    if data.get("agent_id") != viewer.agent_id:
        return None
    if kind == "agent.updated":
        if not data.get("active", True):
            return Close(CloseCode.FORBIDDEN, "account deactivated")
        if (data.get("role") == "admin") != viewer.is_admin:
            return RefreshAccess()
    _apply_membership(viewer, kind, data)
    return None


def _apply_membership(viewer: Viewer, kind: str, data: JsonObject) -> None:
    """The viewer's own agent joined or left an inbox or a team."""
    noun, _, change = kind.partition(".")
    if change not in ("member_added", "member_removed"):
        return
    ids = {"inbox": viewer.inboxes, "team": viewer.teams}.get(noun)
    if ids is None:  # not a membership, or an admin: sees them all anyway
        return
    member = data[f"{noun}_id"]
    if not isinstance(member, int):
        return
    if change == "member_added":
        ids.add(member)
    else:
        ids.discard(member)


def _visitor_change(viewer: Viewer, scope: VisitorScope, event: WireEvent) -> Decision:
    """A visitor follows conversations opened for the contact it proved in
    its inbox (as REST reads them: server.queries.visitors); when its
    session is identified as another contact, what it may see is reloaded
    (and the client told to reload)."""
    kind, data = event.type, event.data
    opened = data.get("conversation_id")
    if (
        kind == "conversation.created"
        and data.get("contact_id") == scope.contact_id
        and data.get("inbox_id") == scope.inbox_id
        # Events from before origins were recorded: opened for their contact.
        and data.get("origin_contact_id", data.get("contact_id")) == scope.proven_contact_id
        and isinstance(opened, int)
        and viewer.conversations is not None
    ):
        viewer.conversations.add(opened)
    identified = kind == "visitor.identified" and data.get("session_id") == scope.session_id
    if identified and data.get("contact_id") != scope.contact_id:
        return RefreshAccess()
    if _regrouped(viewer, scope, kind, data):
        return RefreshAccess()
    return None


def _regrouped(viewer: Viewer, scope: VisitorScope, kind: str, data: JsonObject) -> bool:
    """A merge changed which conversations (or messages) this visitor
    follows: its contact took part in a contact merge or its undo (its
    session may now be the other contact's, or that contact's
    conversations are now its own), or one of its conversations took
    part in a conversation merge (messages moved and were renumbered).
    The events themselves are never a visitor's to see."""
    if kind in _CONTACT_MERGES:
        return scope.contact_id in (data.get("survivor_id"), data.get("merged_id"))
    if kind == "conversation.merged" and viewer.conversations is not None:
        touched = {data.get("conversation_id"), data.get("source_id")}
        return not touched.isdisjoint(viewer.conversations)
    return False
