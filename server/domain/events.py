"""The event catalogue: every change Threadline makes is described by one of
these, written in the same transaction as the change and published after
commit (ARCHITECTURE.md, data-flow rules 1-2).

Each class's docstring is its documentation; a test fails if one is missing.
`type` is the dotted wire name (`noun.past_verb`). Fields are JSON-simple
(str, int, bool, None, lists of str, datetimes rendered as ISO 8601).
Each class also declares its `audience`: who may receive it over a live
connection, which is exactly who could read what it is about over REST
(PROTOCOLS.md P2). server.realtime.visibility interprets it, for live
events and replays alike; a test fails if an event declares none.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from server.domain.json_types import JsonValue


class Audience(StrEnum):
    """Who may receive an event. Each is one complete rule, read from the
    event's own fields; private events (`private`) additionally never
    reach a connection that may not read private notes."""

    # Every agent of the workspace: agents, teams and contacts are visible
    # workspace-wide. Never widget visitors.
    AGENTS = "agents"
    # Admins only (the inbound-mail quarantine, the suppression list).
    ADMINS = "admins"
    # Agents who may read inbox `inbox_id`: its members and the admins.
    INBOX = "inbox"
    # Who may read conversation `conversation_id`: the agents of its inbox
    # `inbox_id`, and a widget visitor following that conversation (its
    # socket then shows only what server.realtime.visitor_frames lets
    # through).
    CONVERSATION = "conversation"
    # The agent `agent_id` alone, admins included in the "nobody else":
    # its own credentials and its own sidebar.
    OWNER = "owner"
    # The uploader of a file no message carries yet, alone: the agent
    # `uploader_id` (`uploader_kind` "agent") or the widget session
    # `uploader_id` ("visitor"), as server.queries.attachments reads it.
    UPLOADER = "uploader"
    # Readers of the canned response (its `scope`: workspace, team
    # `team_id`, inbox, personal `agent_id`); when the event names an
    # `inbox_id`, only those among them who may also read that inbox.
    CANNED_RESPONSE_READERS = "canned_response_readers"
    # Readers of the macro (its `scope`: workspace, personal `agent_id`);
    # when the event names an `inbox_id`, only those who may also read it.
    MACRO_READERS = "macro_readers"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. Not emitted itself."""

    type: ClassVar[str] = ""
    # Every registered event declares its own; None reaches nobody.
    audience: ClassVar[Audience | None] = None
    workspace_id: int

    def payload(self) -> dict[str, JsonValue]:
        """The JSON body stored in the events log and sent on the wire."""
        out: dict[str, JsonValue] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @property
    def scope_inbox_id(self) -> int | None:
        value = getattr(self, "inbox_id", None)
        return value if isinstance(value, int) else None

    @property
    def scope_conversation_id(self) -> int | None:
        value = getattr(self, "conversation_id", None)
        return value if isinstance(value, int) else None

    @property
    def is_private(self) -> bool:
        """True when only agents may see it (private notes)."""
        return bool(getattr(self, "private", False))


CATALOGUE: dict[str, type[Event]] = {}


def event(cls: type[Event]) -> type[Event]:
    """Register an event class in the catalogue under its `type`."""
    if not cls.type or cls.type in CATALOGUE:
        raise ValueError(f"event type missing or duplicated: {cls.__name__}")
    CATALOGUE[cls.type] = cls
    return cls


# -- workspaces and people ------------------------------------------------


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkspaceCreated(Event):
    """A workspace was created; it seals all data created inside it."""

    type: ClassVar[str] = "workspace.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentCreated(Event):
    """An agent (a person who answers conversations) joined the workspace."""

    type: ClassVar[str] = "agent.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    agent_id: int
    email: str
    name: str
    role: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentUpdated(Event):
    """An agent's profile, role, availability, capacity or active flag
    changed. `changes` lists the field names that changed."""

    type: ClassVar[str] = "agent.updated"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    agent_id: int
    changes: list[str]
    name: str
    role: str
    availability: str
    capacity: int | None
    active: bool


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentPasswordChanged(Event):
    """An agent's password changed; every session of that agent other than
    the one that changed it has ended (live sockets must close)."""

    type: ClassVar[str] = "agent.password_changed"
    audience: ClassVar[Audience | None] = Audience.OWNER
    agent_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SessionStarted(Event):
    """An agent logged in and got a browser session."""

    type: ClassVar[str] = "session.started"
    audience: ClassVar[Audience | None] = Audience.OWNER
    agent_id: int
    session_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SessionEnded(Event):
    """A browser session ended (logout, logout-all or password change);
    sockets opened with it must close."""

    type: ClassVar[str] = "session.ended"
    audience: ClassVar[Audience | None] = Audience.OWNER
    agent_id: int
    session_id: int
    reason: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ApiTokenCreated(Event):
    """An API token was issued. The secret itself is never in an event."""

    type: ClassVar[str] = "api_token.created"
    audience: ClassVar[Audience | None] = Audience.OWNER
    token_id: int
    agent_id: int
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ApiTokenRevoked(Event):
    """An API token was revoked; requests and sockets using it stop."""

    type: ClassVar[str] = "api_token.revoked"
    audience: ClassVar[Audience | None] = Audience.OWNER
    token_id: int
    agent_id: int


# -- teams and inboxes ----------------------------------------------------


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class TeamCreated(Event):
    """A team was created; agents can join it and conversations can be routed to it."""

    type: ClassVar[str] = "team.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    team_id: int
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class TeamUpdated(Event):
    """A team was renamed or its description changed."""

    type: ClassVar[str] = "team.updated"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    team_id: int
    name: str
    description: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class TeamDeleted(Event):
    """A team was deleted; its conversations keep their assignee but lose
    the team."""

    type: ClassVar[str] = "team.deleted"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    team_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class TeamMemberAdded(Event):
    """An agent joined a team."""

    type: ClassVar[str] = "team.member_added"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    team_id: int
    agent_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class TeamMemberRemoved(Event):
    """An agent left a team."""

    type: ClassVar[str] = "team.member_removed"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    team_id: int
    agent_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class InboxCreated(Event):
    """An inbox (one source of conversations) was created."""

    type: ClassVar[str] = "inbox.created"
    audience: ClassVar[Audience | None] = Audience.INBOX
    inbox_id: int
    name: str
    kind: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class InboxUpdated(Event):
    """An inbox's name or settings changed. Secrets are never included."""

    type: ClassVar[str] = "inbox.updated"
    audience: ClassVar[Audience | None] = Audience.INBOX
    inbox_id: int
    name: str
    changes: list[str]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class InboxMemberAdded(Event):
    """An agent gained access to an inbox."""

    type: ClassVar[str] = "inbox.member_added"
    audience: ClassVar[Audience | None] = Audience.INBOX
    inbox_id: int
    agent_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class InboxMemberRemoved(Event):
    """An agent lost access to an inbox; its live subscriptions to that
    inbox must end."""

    type: ClassVar[str] = "inbox.member_removed"
    audience: ClassVar[Audience | None] = Audience.INBOX
    inbox_id: int
    agent_id: int


# -- contacts -------------------------------------------------------------


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactCreated(Event):
    """A contact (a customer) was created."""

    type: ClassVar[str] = "contact.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    contact_id: int
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactUpdated(Event):
    """A contact's name or attributes changed. `changes` lists the fields."""

    type: ClassVar[str] = "contact.updated"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    contact_id: int
    changes: list[str]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactIdentityAdded(Event):
    """A contact gained an identity (an email, phone, visitor id...)."""

    type: ClassVar[str] = "contact.identity_added"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    contact_id: int
    kind: str
    value: str
    verified: bool


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactEventTracked(Event):
    """Something a contact did on the site, reported by the widget's
    `track(name, properties)` (e.g. `cart_abandoned`, `order_placed`);
    feeds segments and follow-up goals."""

    type: ClassVar[str] = "contact.event_tracked"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    contact_id: int
    contact_event_id: int
    name: str
    properties: dict[str, JsonValue]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactMerged(Event):
    """Contact `merged_id` was merged into `survivor_id` (contact merge
    `merge_id`, which can be undone for a while): its conversations,
    identities, tracked events and widget sessions now belong to the
    survivor, which also gained the attributes it lacked. The merged
    contact is hidden from lists and points at the survivor
    (`merged_into_id`). `conversations` lists the moved conversations as
    `{id, inbox_id}`; a live agent connection gets only those of inboxes it
    can see. Widget visitors never get this event: their socket reloads
    (`resync`) instead."""

    type: ClassVar[str] = "contact.merged"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    survivor_id: int
    merged_id: int
    merge_id: int
    conversations: list[dict[str, int]]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactMergeUndone(Event):
    """Contact merge `merge_id` was undone: what it had moved from
    `merged_id` to `survivor_id` went back (rows created on the survivor
    since stay there) and the merged contact is listed again.
    `conversations` are the ones that moved back, as for `contact.merged`."""

    type: ClassVar[str] = "contact.merge_undone"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    survivor_id: int
    merged_id: int
    merge_id: int
    conversations: list[dict[str, int]]


# -- the chat widget ------------------------------------------------------


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class VisitorSessionStarted(Event):
    """A browser opened a widget session with an inbox, as a new anonymous
    contact. The session token itself is never in an event."""

    type: ClassVar[str] = "visitor.session_started"
    audience: ClassVar[Audience | None] = Audience.INBOX
    session_id: int
    inbox_id: int
    contact_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class VisitorIdentified(Event):
    """A widget visitor said who they are (`setUser`). `verified` is true
    only when the server checked an identity hash or signed token; then the
    session may have moved from `previous_contact_id` onto the existing
    contact `contact_id`. Unverified identities never move a session."""

    type: ClassVar[str] = "visitor.identified"
    audience: ClassVar[Audience | None] = Audience.INBOX
    session_id: int
    inbox_id: int
    contact_id: int
    previous_contact_id: int
    verified: bool


# -- conversations and messages ------------------------------------------


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationCreated(Event):
    """A conversation was opened in an inbox for a contact.
    `origin_contact_id` is the contact whose widget sessions may follow it:
    `contact_id`, except for one a widget session opened after a contact
    merge moved it onto another contact (it stays that session's own)."""

    type: ClassVar[str] = "conversation.created"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    contact_id: int
    status: str
    subject: str | None
    origin_contact_id: int | None = None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationStatusChanged(Event):
    """A conversation moved between open, pending, snoozed and resolved.
    `snoozed_until` is set only for `snoozed`. `reason` is
    `snooze_expired` when the server reopened a snoozed conversation at
    the end of its snooze, null for every other change. Seen by whoever
    may read the conversation's inbox."""

    type: ClassVar[str] = "conversation.status_changed"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    old_status: str
    status: str
    snoozed_until: datetime | None
    reason: str | None = None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationRead(Event):
    """Someone has seen a conversation up to message `seq`: the contact
    (`reader` "contact", from the widget) or an agent (`reader` "agent",
    `agent_id` set). Only sent when that reader's position moved forward;
    the widget shows "Seen" from the agents' position."""

    type: ClassVar[str] = "conversation.read"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    reader: str
    agent_id: int | None
    seq: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationPriorityChanged(Event):
    """A conversation's priority changed."""

    type: ClassVar[str] = "conversation.priority_changed"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    priority: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationLabelsChanged(Event):
    """A conversation's labels changed; `labels` is the full new set,
    sorted."""

    type: ClassVar[str] = "conversation.labels_changed"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    labels: list[str]
    added: list[str]
    removed: list[str]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationAssigned(Event):
    """A conversation's assignee and/or team changed (None = unassigned)."""

    type: ClassVar[str] = "conversation.assigned"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    assignee_id: int | None
    team_id: int | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationMerged(Event):
    """Conversation `source_id` was merged into `conversation_id` (the
    target, same contact and inbox): its `moved_messages` messages were
    appended to the target in their order, renumbered to end at the
    target's new `last_seq`, and the source is resolved and points at the
    target (`merged_into_id`). Clients reload the target's messages (the
    `sync` frame) and drop the source's; widget visitors get `resync`."""

    type: ClassVar[str] = "conversation.merged"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    source_id: int
    moved_messages: int
    last_seq: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageCreated(Event):
    """A message was added to a conversation: inbound from a contact, a
    reply, or a private note (`private`, never shown to contacts or bots
    without the scope). `seq` is contiguous per conversation and is the
    delivery order."""

    type: ClassVar[str] = "message.created"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    message_id: int
    conversation_id: int
    inbox_id: int
    contact_id: int
    seq: int
    direction: str
    sender_kind: str
    sender_id: int | None
    private: bool
    text: str
    html: str | None
    created_at: datetime
    # The files it carries, as `{id, filename, content_type, size, image}`.
    attachments: list[dict[str, JsonValue]] = dataclasses.field(default_factory=list)
    # The channel's own id for an inbound message (dedupe key; for the
    # widget `widget:<session>:<client_id>`), None for agents' messages.
    external_id: str | None = None
    # Email only: subject, from, to, cc and how it was threaded (see
    # server.actions.inbound_email); None for other channels.
    email: dict[str, JsonValue] | None = None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class AttachmentUploaded(Event):
    """A file was uploaded to an inbox, by an agent (`uploader_kind`
    "agent", `uploader_id` the agent) or a widget visitor ("visitor", the
    visitor session). It belongs to no message yet: the message that
    carries it lists it in `message.created`. `content_type` is what the
    bytes were found to be, not what the uploader declared. Until then
    only its uploader may read it, so only its uploader hears of it."""

    type: ClassVar[str] = "attachment.uploaded"
    audience: ClassVar[Audience | None] = Audience.UPLOADER
    attachment_id: int
    inbox_id: int
    uploader_kind: str
    uploader_id: int
    filename: str
    content_type: str
    size: int


# -- canned responses -----------------------------------------------------
# Every canned-response event names the response's audience (`scope` and
# the `team_id`, `inbox_id` or `agent_id` it names); a live connection
# receives it only if its agent can read that response over REST (personal
# ones: only their owner). Bodies are never in events: fetch the response.


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class CannedResponseCreated(Event):
    """A canned response was saved: a shortcut (`/shortcut` in the
    composer), a title and a template body, shared with its scope's
    audience (workspace, team, inbox or personal)."""

    type: ClassVar[str] = "canned_response.created"
    audience: ClassVar[Audience | None] = Audience.CANNED_RESPONSE_READERS
    canned_response_id: int
    scope: str
    team_id: int | None
    inbox_id: int | None
    agent_id: int | None
    shortcut: str
    title: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class CannedResponseUpdated(Event):
    """A canned response's shortcut, title, body or attachments changed;
    `changes` lists which. Its scope never changes."""

    type: ClassVar[str] = "canned_response.updated"
    audience: ClassVar[Audience | None] = Audience.CANNED_RESPONSE_READERS
    canned_response_id: int
    scope: str
    team_id: int | None
    inbox_id: int | None
    agent_id: int | None
    shortcut: str
    title: str
    changes: list[str]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class CannedResponseDeleted(Event):
    """A canned response was deleted, with the files it held. (Deleting
    its team deletes a team's responses too, without this event: clients
    drop them on `team.deleted`.)"""

    type: ClassVar[str] = "canned_response.deleted"
    audience: ClassVar[Audience | None] = Audience.CANNED_RESPONSE_READERS
    canned_response_id: int
    scope: str
    team_id: int | None
    inbox_id: int | None
    agent_id: int | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class CannedResponseUsed(Event):
    """An agent sent message `message_id` with a canned response; its
    `usage_count` is now the given number. `inbox_id` is the
    conversation's inbox (for an inbox response, also its own)."""

    type: ClassVar[str] = "canned_response.used"
    audience: ClassVar[Audience | None] = Audience.CANNED_RESPONSE_READERS
    canned_response_id: int
    scope: str
    team_id: int | None
    inbox_id: int
    agent_id: int | None
    conversation_id: int
    message_id: int
    private: bool
    usage_count: int


# -- macros ---------------------------------------------------------------
# Every macro event names the macro's audience (`scope`, and `agent_id` for
# a personal one); a live connection receives it only if its agent can read
# that macro over REST: workspace macros every agent, personal ones their
# owner alone. Steps are never in events: fetch the macro.


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class MacroCreated(Event):
    """A macro was saved: a named list of steps (send a canned response,
    add or remove a label, assign a team or agent, set the priority,
    snooze, resolve, reopen) run on a conversation in one click."""

    type: ClassVar[str] = "macro.created"
    audience: ClassVar[Audience | None] = Audience.MACRO_READERS
    macro_id: int
    scope: str
    agent_id: int | None
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class MacroUpdated(Event):
    """A macro's name or steps changed; `changes` lists which. Its scope
    never changes."""

    type: ClassVar[str] = "macro.updated"
    audience: ClassVar[Audience | None] = Audience.MACRO_READERS
    macro_id: int
    scope: str
    agent_id: int | None
    name: str
    changes: list[str]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class MacroDeleted(Event):
    """A macro was deleted; runs already made keep their effects."""

    type: ClassVar[str] = "macro.deleted"
    audience: ClassVar[Audience | None] = Audience.MACRO_READERS
    macro_id: int
    scope: str
    agent_id: int | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class MacroUsed(Event):
    """An agent ran a macro on a conversation; every step was applied in
    this one transaction (each with its own event, just before this one),
    `message_ids` are the replies it sent, in step order, and its
    `usage_count` is now the given number. Reaches the macro's audience
    among those who see the conversation's inbox."""

    type: ClassVar[str] = "macro.used"
    audience: ClassVar[Audience | None] = Audience.MACRO_READERS
    macro_id: int
    scope: str
    agent_id: int | None
    conversation_id: int
    inbox_id: int
    message_ids: list[int]
    usage_count: int


# -- saved filters --------------------------------------------------------
# An agent's own sidebar: these reach that agent (`agent_id`) and nobody
# else, admins included.


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SavedFilterCreated(Event):
    """An agent saved a conversation filter; `query` holds filters of
    GET /conversations, `position` orders the agent's filters."""

    type: ClassVar[str] = "saved_filter.created"
    audience: ClassVar[Audience | None] = Audience.OWNER
    saved_filter_id: int
    agent_id: int
    name: str
    query: dict[str, JsonValue]
    position: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SavedFilterUpdated(Event):
    """A saved filter's name, query or position changed; `changes` lists
    which."""

    type: ClassVar[str] = "saved_filter.updated"
    audience: ClassVar[Audience | None] = Audience.OWNER
    saved_filter_id: int
    agent_id: int
    name: str
    query: dict[str, JsonValue]
    position: int
    changes: list[str]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SavedFilterDeleted(Event):
    """A saved filter was deleted from its agent's sidebar."""

    type: ClassVar[str] = "saved_filter.deleted"
    audience: ClassVar[Audience | None] = Audience.OWNER
    saved_filter_id: int
    agent_id: int


# -- the email channel (F2, PROTOCOLS.md P4) ----------------------------------


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class EmailQuarantined(Event):
    """A mail reached an inbox but could not be taken in (unparseable,
    over a limit, no sender): it is kept, with its raw bytes, in the
    inbox's quarantine for an admin to look at (`GET /inbound_mails`,
    admins only, as is this event). `source` is smtp, imap or http."""

    type: ClassVar[str] = "email.quarantined"
    audience: ClassVar[Audience | None] = Audience.ADMINS
    inbox_id: int
    inbound_mail_id: int
    reason: str
    source: str
    size: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageDeliveryChanged(Event):
    """An outbound message's delivery state changed: `sent` once the
    channel accepted it, `failed` with `delivery_error` saying why (a
    5xx answer, a bounce), or back to `pending` while a temporary
    failure is retried (`delivery_error` then says what went wrong)."""

    type: ClassVar[str] = "message.delivery_changed"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    message_id: int
    conversation_id: int
    inbox_id: int
    delivery_status: str
    delivery_error: str | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class MessagesEmailed(Event):
    """Chat replies a widget visitor had not seen were emailed to them
    (offline chat continuity, F2; server.actions.chat_continuity), and the
    mail's fate is settled: `status` is `sent` once the mail server took
    it, `failed` with `error` saying why (a permanent refusal, or the
    retries gave up), or `unknown` when the sending broke off after the
    server may have taken it (automatic mail is then not resent, P1).
    `message_ids` are the replies the one mail carried,
    oldest first; `address` is where it went. The messages' own
    `delivery_status` (their delivery in the chat) is not changed by it;
    the outbox row `outbox_id` keeps the details."""

    type: ClassVar[str] = "message.emailed"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    message_ids: list[int]
    address: str
    outbox_id: int
    status: str
    error: str | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class EmailSuppressed(Event):
    """An address will not be mailed any more: `scope` "all" after a
    permanent bounce (`inbox_id` is the inbox whose mail bounced), or
    "automated" after a one-click unsubscribe (no automatic mail; agents'
    replies still go). For admins only."""

    type: ClassVar[str] = "email.suppressed"
    audience: ClassVar[Audience | None] = Audience.ADMINS
    inbox_id: int | None
    address: str
    reason: str
    scope: str = "all"


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactMergeSuggested(Event):
    """Two contacts may be one person, but nothing proves it (F3: only a
    verified identity merges by itself): `contact_id` wrote in from an
    address that `candidate_id` only claimed. An agent may merge them."""

    type: ClassVar[str] = "contact.merge_suggested"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    suggestion_id: int
    contact_id: int
    candidate_id: int
    reason: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactMergeSuggestionDismissed(Event):
    """An agent (`dismissed_by`) said the two contacts of a merge
    suggestion are not one person: the suggestion is closed and that pair
    is not suggested again."""

    type: ClassVar[str] = "contact.merge_suggestion_dismissed"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    suggestion_id: int
    contact_id: int
    candidate_id: int
    dismissed_by: int | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContactMergeSuggestionAccepted(Event):
    """The two contacts of a merge suggestion were merged (`merged_id`
    into `survivor_id`), in the same transaction as the merge's
    `contact.merged`: the suggestion is settled."""

    type: ClassVar[str] = "contact.merge_suggestion_accepted"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    suggestion_id: int
    contact_id: int
    candidate_id: int
    survivor_id: int
    merged_id: int


# -- touchpoints (F7, TOUCHPOINTS.md) --------------------------------------


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SegmentCreated(Event):
    """A saved filter over contacts was created (`segment_id`); touchpoints,
    broadcasts and reports can use it."""

    type: ClassVar[str] = "segment.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    segment_id: int
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SegmentUpdated(Event):
    """A segment's name or filter changed; who is in it is evaluated anew
    (contacts who now match enter it, once)."""

    type: ClassVar[str] = "segment.updated"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    segment_id: int
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class SegmentDeleted(Event):
    """A segment was deleted; touchpoints that entered from it no longer
    start new episodes from it."""

    type: ClassVar[str] = "segment.deleted"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    segment_id: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class TouchpointCreated(Event):
    """An automated follow-up (`touchpoint_id`) was created, as a draft
    unless `status` says otherwise; `seed` names the ready template it
    came from, if any."""

    type: ClassVar[str] = "touchpoint.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    touchpoint_id: int
    name: str
    kind: str
    status: str
    seed: str | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class TouchpointUpdated(Event):
    """A touchpoint was edited (a new `version`: episodes already started
    keep the steps of theirs) or switched live, paused or archived
    (`status`)."""

    type: ClassVar[str] = "touchpoint.updated"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    touchpoint_id: int
    name: str
    status: str
    version: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class EpisodeStarted(Event):
    """A contact entered a touchpoint for one business object (`key`, such
    as `cart:c-17`), in the same transaction as what triggered it; `arm`
    is `treatment` or `holdout` (the control group, never sent to)."""

    type: ClassVar[str] = "episode.started"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    episode_id: int
    touchpoint_id: int
    contact_id: int
    key: str
    arm: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class EpisodeEnded(Event):
    """An episode ended: `state` `goal` (its goal happened), `exited` (an
    exit rule, such as the order placed or the customer replied), `done`
    (every step settled) or `expired`; `reason` says which."""

    type: ClassVar[str] = "episode.ended"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    episode_id: int
    touchpoint_id: int
    contact_id: int
    state: str
    reason: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionFacts:
    """What every decision event says: one step's send to one contact,
    and what became of it (a mixin, not an event itself)."""

    decision_id: int
    episode_id: int
    touchpoint_id: int
    contact_id: int
    position: int
    channel: str
    reason: str | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionScheduled(DecisionFacts, Event):
    """A step was decided for a contact, due at `due_at` (UTC); it is
    decided once (its idempotency key is UNIQUE) and checked against the
    guards again when it comes due."""

    type: ClassVar[str] = "decision.scheduled"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    due_at: datetime


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionDeferred(DecisionFacts, Event):
    """A due decision waits: a frequency cap (until the window reopens),
    quiet hours in the contact's zone or the inbox's business hours;
    `run_at` is when it is looked at again."""

    type: ClassVar[str] = "decision.deferred"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    run_at: datetime


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionSending(DecisionFacts, Event):
    """A decision passed every guard and was handed to its channel (email:
    the outbox, with a Message-ID derived from its idempotency key); its
    touch counts against the caps from now on."""

    type: ClassVar[str] = "decision.sending"
    audience: ClassVar[Audience | None] = Audience.AGENTS


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionSent(DecisionFacts, Event):
    """The channel accepted the touch (the mail server took the mail, the
    widget message was written); `channel_message_id` identifies it there."""

    type: ClassVar[str] = "decision.sent"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    channel_message_id: str | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionSkipped(DecisionFacts, Event):
    """A due decision was not sent, for `reason`: no consent or
    unsubscribed, suppressed or unreachable address, the holdout arm
    (kept: it is the control group), a cap that stayed closed, a step
    filter, a lower priority than a competing touch."""

    type: ClassVar[str] = "decision.skipped"
    audience: ClassVar[Audience | None] = Audience.AGENTS


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionCancelled(DecisionFacts, Event):
    """A pending decision became moot: its episode ended (`reason`: the
    order was placed, the customer replied, the conversation was
    resolved), or its touchpoint was paused or archived."""

    type: ClassVar[str] = "decision.cancelled"
    audience: ClassVar[Audience | None] = Audience.AGENTS


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionExpired(DecisionFacts, Event):
    """A decision came up later than its touchpoint's max lateness (after
    downtime, say) and was dropped rather than sent out of its moment."""

    type: ClassVar[str] = "decision.expired"
    audience: ClassVar[Audience | None] = Audience.AGENTS


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionFailed(DecisionFacts, Event):
    """A decision could not be sent: its template failed to render, the
    promo pool ran dry, or the channel refused it for good (`reason`)."""

    type: ClassVar[str] = "decision.failed"
    audience: ClassVar[Audience | None] = Audience.AGENTS


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionUnknown(DecisionFacts, Event):
    """A send may or may not have happened (the process died while the
    channel had it): shown to admins, never resent by itself."""

    type: ClassVar[str] = "decision.unknown"
    audience: ClassVar[Audience | None] = Audience.AGENTS


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class DecisionSettled(DecisionFacts, Event):
    """An admin (`settled_by`) settled an `unknown` decision: `outcome`
    `sent` (it did go out) or `resend` (send it again, deliberately)."""

    type: ClassVar[str] = "decision.settled"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    outcome: str
    settled_by: int | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConsentRecorded(Event):
    """A contact's consent for a channel and topic (`marketing`) was
    granted or withdrawn (`state`), by `source` (the unsubscribe link, an
    agent, the shop's API); the history is kept."""

    type: ClassVar[str] = "consent.recorded"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    contact_id: int
    channel: str
    topic: str
    state: str
    source: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class PromoPoolCreated(Event):
    """A pool of single-use promo codes was created."""

    type: ClassVar[str] = "promo_pool.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    pool_id: int
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class PromoCodesAdded(Event):
    """Codes were uploaded to a pool or generated into it (`added`; codes
    already in the workspace are not added twice); `free` is what the
    pool now holds unissued."""

    type: ClassVar[str] = "promo_codes.added"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    pool_id: int
    added: int
    free: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class PromoPoolLow(Event):
    """Issuing a code left a pool with `free` codes, at or below its
    low-stock mark: upload or generate more before sends fail."""

    type: ClassVar[str] = "promo_pool.low"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    pool_id: int
    free: int


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class PromoCodeRedeemed(Event):
    """A promo code was redeemed (by the shop's API or a tracked
    `order_placed` carrying it); the decision that issued it reached its
    goal."""

    type: ClassVar[str] = "promo_code.redeemed"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    code_id: int
    pool_id: int
    contact_id: int | None
    decision_id: int | None


# -- routing (F5) -----------------------------------------------------------
# Rules are every agent's to read (REST: GET /routing_rules), so their
# events reach every agent; what routing did to a conversation reaches
# whoever may read that conversation's inbox.


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoutingRuleCreated(Event):
    """An admin added a routing rule (`routing_rule_id`) at `position`
    (0 is evaluated first); later rules moved down one."""

    type: ClassVar[str] = "routing_rule.created"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    routing_rule_id: int
    name: str
    position: int
    enabled: bool


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoutingRuleUpdated(Event):
    """A routing rule changed: `changes` names what (name, enabled, on,
    match, conditions, actions). It applies from the next conversation
    or message; what it already did stays."""

    type: ClassVar[str] = "routing_rule.updated"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    routing_rule_id: int
    name: str
    enabled: bool
    changes: list[str]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoutingRuleDeleted(Event):
    """A routing rule was deleted; the rules after it moved up one. The
    decisions it made stay on their conversations, under its name."""

    type: ClassVar[str] = "routing_rule.deleted"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    routing_rule_id: int
    name: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoutingRulesReordered(Event):
    """The workspace's routing rules were put in a new order:
    `routing_rule_ids`, the first evaluated first."""

    type: ClassVar[str] = "routing_rules.reordered"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    routing_rule_ids: list[int]


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationRequeued(Event):
    """The conversation went back to the queue from agent `agent_id`
    because of `reason` ("no reply from Ann within 15 min", "Ann went
    offline"); a private note in the thread says the same, and the
    `conversation.assigned` events around it say who has it now."""

    type: ClassVar[str] = "conversation.requeued"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    agent_id: int
    reason: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class AssignmentPolicyChanged(Event):
    """The assignment policy of inbox `inbox_id` or team `team_id` was set
    (`policy`, its stored form: mode, capacities, fairness window,
    reassignment wait, offline grace) or removed (`policy` null: its
    conversations wait for a person again)."""

    type: ClassVar[str] = "assignment_policy.changed"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    inbox_id: int | None
    team_id: int | None
    policy: dict[str, JsonValue] | None


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class RoutingModeChanged(Event):
    """The workspace now routes by `mode`: "first" (the first matching
    rule decides) or "all" (every matching rule applies in order, a later
    one overriding an earlier one's team, priority or assignee; labels
    add up)."""

    type: ClassVar[str] = "routing.mode_changed"
    audience: ClassVar[Audience | None] = Audience.AGENTS
    mode: str


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationRouted(Event):
    """A routing rule changed a conversation, when it was opened
    (`trigger` "conversation.created") or when its customer wrote
    (`trigger` "message.created", `message_id` the message): `changes`
    is what the rule set and kept (`team`, `priority`, `assignee` ids or
    values, `labels` it added), `skipped` the actions it could not take
    ("team 5 no longer exists"). One per rule that changed something, in
    rule order, followed in the same transaction by the usual
    conversation.assigned / priority_changed / labels_changed events
    with the result. `routing_decision_id` is its row in the
    conversation's routing record (GET /conversations/{id}/routing)."""

    type: ClassVar[str] = "conversation.routed"
    audience: ClassVar[Audience | None] = Audience.CONVERSATION
    conversation_id: int
    inbox_id: int
    routing_decision_id: int
    routing_rule_id: int
    rule_name: str
    trigger: str
    message_id: int | None
    changes: dict[str, JsonValue]
    skipped: list[str]
