"""Typed rows: one frozen dataclass per table that is read whole.

Queries hand these up instead of `sa.Row[Any]`, so an action or a
transport that reads `conversation.status` is checked by mypy, and a
column renamed in `tables.py` fails at the one place that loads it
(`tests/queries/test_records.py` keeps fields and columns in step).

JSON columns stay `StoredJson`: what they hold is parsed by the domain
model that owns it (inbox settings, message email metadata), not here.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeAlias, TypeVar

import sqlalchemy as sa

# A JSON column as stored; parse it with its domain model before use.
StoredJson: TypeAlias = Any


class _Record(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


R = TypeVar("R", bound=_Record)


@functools.cache
def _names(cls: type[_Record]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def load(cls: type[R], row: sa.Row[Any]) -> R:
    """`row` as a `cls`, by column name; the row may carry more columns."""
    mapping = row._mapping
    return cls(*[mapping[name] for name in _names(cls)])


def load_or_none(cls: type[R], row: sa.Row[Any] | None) -> R | None:
    return None if row is None else load(cls, row)


@dataclasses.dataclass(frozen=True, slots=True)
class Workspace:
    """A row of `workspaces`."""

    id: int
    name: str
    settings: StoredJson
    created_at: datetime
    event_seq: int
    events_pruned_through: int


@dataclasses.dataclass(frozen=True, slots=True)
class Agent:
    """A row of `agents`."""

    id: int
    workspace_id: int
    email: str
    name: str
    role: str
    password_hash: str
    availability: str
    capacity: int | None
    active: bool
    created_at: datetime
    password_changed_at: datetime
    connected: bool = False
    left_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ApiToken:
    """A row of `api_tokens`."""

    id: int
    workspace_id: int
    agent_id: int
    name: str
    token_hash: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Team:
    """A row of `teams`."""

    id: int
    workspace_id: int
    name: str
    description: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Inbox:
    """A row of `inboxes`."""

    id: int
    workspace_id: int
    name: str
    kind: str
    public_token: str
    settings: StoredJson
    secret_encrypted: str | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Contact:
    """A row of `contacts`."""

    id: int
    workspace_id: int
    name: str
    attributes: StoredJson
    created_at: datetime
    last_seen_at: datetime | None
    merged_into_id: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Conversation:
    """A row of `conversations`."""

    id: int
    workspace_id: int
    inbox_id: int
    contact_id: int
    subject: str | None
    status: str
    snoozed_until: datetime | None
    priority: str
    assignee_id: int | None
    team_id: int | None
    last_seq: int
    created_at: datetime
    first_reply_at: datetime | None
    waiting_since: datetime | None
    resolved_at: datetime | None
    last_activity_at: datetime
    contact_last_read_seq: int
    agent_last_read_seq: int
    merged_into_id: int | None
    origin_contact_id: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """A row of `messages`."""

    id: int
    workspace_id: int
    conversation_id: int
    contact_id: int
    inbox_id: int
    seq: int
    direction: str
    sender_kind: str
    sender_id: int | None
    private: bool
    text: str
    html: str | None
    external_id: str | None
    idempotency_key: str | None
    delivery_status: str
    delivery_error: str | None
    attachments: StoredJson
    email_message_id: str | None
    email: StoredJson | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Attachment:
    """A row of `attachments`."""

    id: int
    workspace_id: int
    inbox_id: int | None
    uploader_kind: str
    uploader_id: int | None
    message_id: int | None
    storage_key: str
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class VisitorSession:
    """A row of `visitor_sessions`."""

    id: int
    workspace_id: int
    inbox_id: int
    contact_id: int
    token_hash: str
    verified: bool
    proven_contact_id: int
    created_at: datetime
    last_seen_at: datetime
    timezone: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class ContactEvent:
    """A row of `contact_events`."""

    id: int
    workspace_id: int
    contact_id: int
    name: str
    properties: StoredJson
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class CannedResponse:
    """A row of `canned_responses`."""

    id: int
    workspace_id: int
    scope: str
    team_id: int | None
    inbox_id: int | None
    agent_id: int | None
    owner_key: str
    shortcut: str
    title: str
    body: str
    attachment_ids: StoredJson
    usage_count: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A row of `idempotency_keys`."""

    id: int
    workspace_id: int
    agent_id: int
    route: str
    key: str
    fingerprint: str
    status: int | None
    response: StoredJson | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    """A row of `audit_log`."""

    id: int
    workspace_id: int
    actor_kind: str
    actor_id: int | None
    action: str
    subject_kind: str
    subject_id: int
    details: StoredJson
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ContactMerge:
    """A row of `contact_merges`."""

    id: int
    workspace_id: int
    survivor_id: int
    merged_id: int
    moved: StoredJson
    merged_by: int | None
    created_at: datetime
    undone_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Macro:
    """A row of `macros`."""

    id: int
    workspace_id: int
    scope: str
    agent_id: int | None
    owner_key: str
    name: str
    actions: StoredJson
    usage_count: int
    created_by: int | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class SavedFilter:
    """A row of `saved_filters`."""

    id: int
    workspace_id: int
    agent_id: int
    name: str
    query: StoredJson
    position: int
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class InboundMail:
    """A row of `inbound_mails`."""

    id: int
    workspace_id: int
    inbox_id: int
    source: str
    status: str
    reason: str | None
    storage_key: str
    sha256: str
    size: int
    envelope_from: str | None
    envelope_to: StoredJson
    header_message_id: str | None
    from_address: str | None
    subject: str | None
    message_id: int | None
    conversation_id: int | None
    thread: StoredJson | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ImapCheckpoint:
    """A row of `imap_checkpoints`."""

    inbox_id: int
    workspace_id: int
    uidvalidity: int
    last_uid: int
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxItem:
    """A row of `outbox`."""

    id: int
    workspace_id: int
    inbox_id: int
    message_id: int | None
    channel: str
    stable_id: str
    payload: StoredJson
    status: str
    attempts: int
    due_at: datetime
    locked_until: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class ContactMergeSuggestion:
    """A row of `contact_merge_suggestions`."""

    id: int
    workspace_id: int
    contact_id: int
    candidate_id: int
    reason: str
    status: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A row of `scheduled_jobs`."""

    id: int
    workspace_id: int
    kind: str
    subject_id: int
    key: str
    due_at: datetime
    run_at: datetime
    status: str
    attempts: int
    lease_until: datetime | None
    claimed_by: str | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    """A row of `segments`."""

    id: int
    workspace_id: int
    name: str
    filter: StoredJson
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Touchpoint:
    """A row of `touchpoints`."""

    id: int
    workspace_id: int
    name: str
    description: str
    kind: str
    status: str
    trigger: StoredJson
    trigger_key: str
    episode_key: str
    entry_segment_id: int | None
    exit_rules: StoredJson
    goal: StoredJson
    reentry: str
    cooldown_seconds: int | None
    priority: int
    holdout_percent: int
    max_lateness_seconds: int | None
    quiet_hours: StoredJson
    inbox_id: int | None
    seed: str | None
    version: int
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class TouchpointStep:
    """A row of `touchpoint_steps`."""

    id: int
    workspace_id: int
    touchpoint_id: int
    version: int
    position: int
    delay: StoredJson
    channel: str
    variants: StoredJson
    step_filter: StoredJson
    business_hours: bool
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Episode:
    """A row of `episodes`."""

    id: int
    workspace_id: int
    touchpoint_id: int
    version: int
    contact_id: int
    key: str
    state: str
    arm: str
    bucket: int
    context: StoredJson
    conversation_id: int | None
    entered_at: datetime
    ended_at: datetime | None
    end_reason: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """A row of `decisions`."""

    id: int
    workspace_id: int
    episode_id: int
    touchpoint_id: int
    step_id: int
    contact_id: int
    position: int
    channel: str
    kind: str
    priority: int
    idempotency_key: str
    due_at: datetime
    run_at: datetime
    state: str
    reason: str | None
    variant: str | None
    attempts: int
    outbox_id: int | None
    message_id: int | None
    channel_message_id: str | None
    rendered: StoredJson
    created_at: datetime
    settled_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Consent:
    """A row of `consents`."""

    id: int
    workspace_id: int
    contact_id: int
    channel: str
    topic: str
    state: str
    source: str
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class PromoPool:
    """A row of `promo_pools`."""

    id: int
    workspace_id: int
    name: str
    valid_days: int | None
    low_stock: int
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class PromoCode:
    """A row of `promo_codes`."""

    id: int
    workspace_id: int
    pool_id: int
    code: str
    state: str
    decision_id: int | None
    contact_id: int | None
    issued_at: datetime | None
    expires_at: datetime | None
    redeemed_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class RoutingRule:
    """A row of `routing_rules`."""

    id: int
    workspace_id: int
    name: str
    position: int
    enabled: bool
    on: StoredJson
    match: str
    conditions: StoredJson
    actions: StoredJson
    created_by_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class RoutingDecision:
    """A row of `routing_decisions`."""

    id: int
    workspace_id: int
    conversation_id: int
    rule_id: int | None
    rule_name: str
    trigger: str
    message_id: int | None
    changes: StoredJson
    skipped: StoredJson
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class AssignmentPolicyRow:
    """A row of `assignment_policies` (its `policy` parsed by
    server.domain.assignment.parse_policy)."""

    id: int
    workspace_id: int
    inbox_id: int | None
    team_id: int | None
    policy: StoredJson
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    """A row of `assignments`."""

    id: int
    workspace_id: int
    conversation_id: int
    agent_id: int
    policy_id: int | None
    reason: str
    at: datetime
