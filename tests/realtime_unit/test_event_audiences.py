"""Every event type of the catalogue against every kind of receiver
(PROTOCOLS.md P2): a connection receives an event only if the same caller
could read what it is about over REST. The expected receivers below are
written from the REST rules (server.queries.access, .attachments,
.inbound_mails...), not from the audiences the events declare; a new
event type fails here until it declares an audience and is added below.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime
from typing import Any

import pytest

from server.domain.events import CATALOGUE, Audience, Event
from server.domain.wire_events import WireEvent
from server.realtime.visibility import (
    Viewer,
    VisitorScope,
    access_change,
    audience_of,
    can_hear,
    can_see,
)
from server.realtime.visitor_frames import visitor_event_frame

WS = 1
INBOX, OTHER_INBOX = 10, 11
CONVERSATION, OTHER_CONVERSATION = 99, 98
OWNER = 7  # the agent whose own events they are: `member`

RECEIVERS: dict[str, Viewer] = {
    "admin": Viewer(WS, 1, True, None, True, session_id=100, teams=None),
    # An agent in the event's inbox, and one who is not.
    "member": Viewer(WS, OWNER, False, {INBOX}, True, session_id=101),
    "outsider": Viewer(WS, 8, False, {OTHER_INBOX}, True, session_id=102),
    # A bot's API token (its agent is in the inbox), with and without
    # the right to read private notes.
    "bot": Viewer(WS, 9, False, {INBOX}, True, token_id=3),
    "bot_without_notes": Viewer(WS, 9, False, {INBOX}, False, token_id=4),
    # Widget visitors: of the event's conversation, of another one.
    "visitor": Viewer(
        WS,
        None,
        False,
        set(),
        False,
        conversations={CONVERSATION},
        visitor=VisitorScope(5, 6, INBOX, 6),
    ),
    "other_visitor": Viewer(
        WS,
        None,
        False,
        set(),
        False,
        conversations={OTHER_CONVERSATION},
        visitor=VisitorScope(15, 16, INBOX, 16),
    ),
}

EVERY_AGENT = frozenset({"admin", "member", "outsider", "bot", "bot_without_notes"})
OF_THE_INBOX = frozenset({"admin", "member", "bot", "bot_without_notes"})
WITH_ITS_VISITOR = OF_THE_INBOX | {"visitor"}
ADMIN = frozenset({"admin"})
ITS_AGENT = frozenset({"member"})
NOBODY: frozenset[str] = frozenset()

# Who receives each event type, in its usual form (below): about inbox
# INBOX, conversation CONVERSATION, agent OWNER, uploaded by OWNER, of a
# workspace-wide canned response or macro.
EXPECTED: dict[str, frozenset[str]] = {
    "workspace.created": EVERY_AGENT,
    "agent.created": EVERY_AGENT,
    "agent.updated": EVERY_AGENT,
    "agent.password_changed": ITS_AGENT,
    "session.started": ITS_AGENT,
    "session.ended": ITS_AGENT,
    "api_token.created": ITS_AGENT,
    "api_token.revoked": ITS_AGENT,
    "team.created": EVERY_AGENT,
    "team.updated": EVERY_AGENT,
    "team.deleted": EVERY_AGENT,
    "team.member_added": EVERY_AGENT,
    "team.member_removed": EVERY_AGENT,
    "inbox.created": OF_THE_INBOX,
    "inbox.updated": OF_THE_INBOX,
    "inbox.member_added": OF_THE_INBOX,
    "inbox.member_removed": OF_THE_INBOX,
    "contact.created": EVERY_AGENT,
    "contact.updated": EVERY_AGENT,
    "contact.identity_added": EVERY_AGENT,
    "contact.event_tracked": EVERY_AGENT,
    "segment.created": EVERY_AGENT,
    "segment.updated": EVERY_AGENT,
    "segment.deleted": EVERY_AGENT,
    "touchpoint.created": EVERY_AGENT,
    "touchpoint.updated": EVERY_AGENT,
    "episode.started": EVERY_AGENT,
    "episode.ended": EVERY_AGENT,
    "decision.scheduled": EVERY_AGENT,
    "decision.deferred": EVERY_AGENT,
    "decision.sending": EVERY_AGENT,
    "decision.sent": EVERY_AGENT,
    "decision.skipped": EVERY_AGENT,
    "decision.cancelled": EVERY_AGENT,
    "decision.expired": EVERY_AGENT,
    "decision.failed": EVERY_AGENT,
    "decision.unknown": EVERY_AGENT,
    "decision.settled": EVERY_AGENT,
    "consent.recorded": EVERY_AGENT,
    "promo_pool.created": EVERY_AGENT,
    "promo_codes.added": EVERY_AGENT,
    "promo_pool.low": EVERY_AGENT,
    "promo_code.redeemed": EVERY_AGENT,
    "contact.merged": EVERY_AGENT,
    "contact.merge_undone": EVERY_AGENT,
    "contact.merge_suggested": EVERY_AGENT,
    "contact.merge_suggestion_dismissed": EVERY_AGENT,
    "contact.merge_suggestion_accepted": EVERY_AGENT,
    "visitor.session_started": OF_THE_INBOX,
    "visitor.identified": OF_THE_INBOX,
    "conversation.created": WITH_ITS_VISITOR,
    "conversation.status_changed": WITH_ITS_VISITOR,
    "conversation.read": WITH_ITS_VISITOR,  # an agent's reading
    "conversation.priority_changed": OF_THE_INBOX,
    "conversation.labels_changed": OF_THE_INBOX,
    "conversation.assigned": OF_THE_INBOX,
    "conversation.merged": OF_THE_INBOX,  # its visitor reloads instead
    "message.created": WITH_ITS_VISITOR,
    "message.delivery_changed": OF_THE_INBOX,
    "message.emailed": OF_THE_INBOX,
    # An upload no message carries yet: only its uploader may download it.
    "attachment.uploaded": ITS_AGENT,
    "canned_response.created": EVERY_AGENT,
    "canned_response.updated": EVERY_AGENT,
    "canned_response.deleted": EVERY_AGENT,
    "canned_response.used": OF_THE_INBOX,
    "macro.created": EVERY_AGENT,
    "macro.updated": EVERY_AGENT,
    "macro.deleted": EVERY_AGENT,
    "macro.used": OF_THE_INBOX,
    "saved_filter.created": ITS_AGENT,
    "saved_filter.updated": ITS_AGENT,
    "saved_filter.deleted": ITS_AGENT,
    "routing_rule.created": EVERY_AGENT,
    "routing_rule.updated": EVERY_AGENT,
    "routing_rule.deleted": EVERY_AGENT,
    "routing_rules.reordered": EVERY_AGENT,
    "routing.mode_changed": EVERY_AGENT,
    "assignment_policy.changed": EVERY_AGENT,
    "conversation.routed": OF_THE_INBOX,
    "conversation.requeued": OF_THE_INBOX,
    # The quarantine and the suppression list are admins' (REST: admins).
    "email.quarantined": ADMIN,
    "email.suppressed": ADMIN,
}

# Fields whose value places the event: everything else gets a neutral
# value of its type.
PLACED: dict[str, Any] = {
    "workspace_id": WS,
    "inbox_id": INBOX,
    "conversation_id": CONVERSATION,
    "agent_id": OWNER,
    "uploader_kind": "agent",
    "uploader_id": OWNER,
    "scope": "workspace",
    "reader": "agent",
    "private": False,
    "contact_id": 6,
}
# A workspace-wide canned response belongs to no inbox.
USUAL: dict[str, dict[str, Any]] = {
    f"canned_response.{verb}": {"inbox_id": None} for verb in ("created", "updated", "deleted")
}


def _neutral(hint: Any) -> Any:
    if type(hint) is types.UnionType and types.NoneType in typing.get_args(hint):
        return None
    origin = typing.get_origin(hint) or hint
    neutral = {int: 1, str: "x", bool: False, list: [], dict: {}}
    if origin is datetime:
        return datetime(2024, 1, 1, tzinfo=UTC)
    return neutral[origin]


def wire(kind: str, **changes: Any) -> WireEvent:
    """An event of `kind` as ctx.emit writes it and the hub sends it."""
    cls = CATALOGUE[kind]
    hints = typing.get_type_hints(cls)
    values = {
        f.name: PLACED[f.name] if f.name in PLACED else _neutral(hints[f.name])
        for f in dataclasses.fields(cls)
    }
    made: Event = cls(**{**values, **USUAL.get(kind, {}), **changes})
    return WireEvent(
        event_id=500,
        ws_seq=500,
        type=kind,
        workspace_id=made.workspace_id,
        inbox_id=made.scope_inbox_id,
        conversation_id=made.scope_conversation_id,
        private=made.is_private,
        created_at="2024-01-01T00:00:00+00:00",
        data=made.payload(),
    )


def receivers(event: WireEvent) -> frozenset[str]:
    """Who is sent `event`: as Connection.deliver decides, a visitor's
    socket then sending only what visitor_frames makes of it."""
    return frozenset(
        name
        for name, viewer in RECEIVERS.items()
        if can_see(viewer, event)
        and (viewer.visitor is None or visitor_event_frame(event) is not None)
    )


def undeclared(catalogue: dict[str, type[Event]]) -> list[str]:
    """Event types that do not declare an audience on their own class."""
    return [
        kind
        for kind, cls in catalogue.items()
        if not isinstance(cls.__dict__.get("audience"), Audience)
    ]


def test_every_event_type_declares_its_audience_next_to_its_definition() -> None:
    assert undeclared(CATALOGUE) == []
    assert set(EXPECTED) == set(CATALOGUE), "add each new event type's receivers above"


def test_an_event_type_that_declares_no_audience_is_caught_and_reaches_nobody() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Forgotten(Event):
        """A new event whose author forgot its audience."""

        type: typing.ClassVar[str] = "conversation.forgotten"
        conversation_id: int
        inbox_id: int

    assert undeclared({**CATALOGUE, Forgotten.type: Forgotten}) == [Forgotten.type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(CATALOGUE, Forgotten.type, Forgotten)
        assert receivers(wire(Forgotten.type)) == NOBODY


@pytest.mark.parametrize("kind", sorted(CATALOGUE))
def test_each_event_reaches_exactly_who_may_read_it(kind: str) -> None:
    assert receivers(wire(kind)) == EXPECTED[kind]


@pytest.mark.parametrize("kind", sorted(CATALOGUE))
def test_no_event_crosses_workspaces(kind: str) -> None:
    for viewer in RECEIVERS.values():
        assert not can_see(dataclasses.replace(viewer, workspace_id=WS + 1), wire(kind))


def test_an_event_without_an_audience_reaches_nobody() -> None:
    # A type that is not (or no longer) in the catalogue, read from the log.
    stale = dataclasses.replace(wire("team.created"), type="team.renamed")
    assert audience_of("team.renamed") is None
    assert receivers(stale) == NOBODY


@pytest.mark.parametrize("kind", [k for k, c in CATALOGUE.items() if c.audience is Audience.OWNER])
def test_an_agents_own_events_reach_it_alone(kind: str) -> None:
    assert receivers(wire(kind, agent_id=8)) == {"outsider"}
    assert receivers(wire(kind, agent_id=9)) == {"bot", "bot_without_notes"}
    assert receivers(wire(kind, agent_id=1)) == ADMIN


def test_private_notes_reach_only_agents_who_may_read_them() -> None:
    with_notes = frozenset({"admin", "member", "bot"})
    assert receivers(wire("message.created", private=True)) == with_notes
    assert receivers(wire("canned_response.used", private=True)) == with_notes


def test_an_upload_reaches_its_uploader_alone() -> None:
    assert receivers(wire("attachment.uploaded", uploader_id=8)) == {"outsider"}
    # Nobody else may download it: not an admin, not the inbox's members.
    assert receivers(wire("attachment.uploaded", uploader_id=1)) == ADMIN
    # A visitor's own upload: no agent may read it before it is sent
    # (and the visitor's socket has no frame for it).
    by_visitor = wire("attachment.uploaded", uploader_kind="visitor", uploader_id=5)
    assert can_see(RECEIVERS["visitor"], by_visitor)
    assert not can_see(RECEIVERS["other_visitor"], by_visitor)
    assert receivers(by_visitor) == NOBODY


def test_the_email_channels_admin_events_ignore_the_inbox() -> None:
    for kind in ("email.quarantined", "email.suppressed"):
        assert receivers(wire(kind, inbox_id=OTHER_INBOX)) == ADMIN
    assert receivers(wire("email.suppressed", inbox_id=None)) == ADMIN


def test_a_visitor_hears_of_its_own_conversations_only() -> None:
    elsewhere = {"conversation_id": OTHER_CONVERSATION}
    assert receivers(wire("message.created", **elsewhere)) == OF_THE_INBOX | {"other_visitor"}
    assert receivers(wire("conversation.read", reader="contact")) == OF_THE_INBOX
    in_other_inbox = {"inbox_id": OTHER_INBOX, "conversation_id": 97}
    assert receivers(wire("message.created", **in_other_inbox)) == {"admin", "outsider"}


def test_joining_an_inbox_lets_its_events_in_and_leaving_stops_them() -> None:
    viewer = dataclasses.replace(RECEIVERS["outsider"], inboxes={OTHER_INBOX})
    event = wire("email.quarantined")
    assert access_change(viewer, wire("inbox.member_added", agent_id=8)) is None
    assert viewer.inboxes == {INBOX, OTHER_INBOX}
    assert can_see(viewer, wire("message.created"))
    assert not can_see(viewer, event)  # membership never makes an admin
    access_change(viewer, wire("inbox.member_removed", agent_id=8))
    assert not can_see(viewer, wire("message.created"))


@pytest.mark.parametrize(
    ("inbox_id", "conversation_id", "private", "expected"),
    [
        (INBOX, CONVERSATION, False, WITH_ITS_VISITOR),  # typing a reply
        (INBOX, CONVERSATION, True, {"admin", "member", "bot"}),  # typing a note
        (INBOX, None, False, OF_THE_INBOX),  # viewing, without a conversation
        (None, None, False, EVERY_AGENT),  # presence
    ],
)
def test_ephemeral_signals_follow_the_same_reading_rules(
    inbox_id: int | None, conversation_id: int | None, private: bool, expected: frozenset[str]
) -> None:
    heard = {
        name
        for name, viewer in RECEIVERS.items()
        if can_hear(viewer, WS, inbox_id, conversation_id, private=private)
    }
    assert heard == expected
    assert not can_hear(RECEIVERS["admin"], WS + 1, inbox_id, conversation_id)
