"""Closed sets of values used across the product, and the pure rules on them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class Availability(StrEnum):
    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"


class InboxKind(StrEnum):
    WIDGET = "widget"
    EMAIL = "email"
    SLACK = "slack"
    SOCIAL = "social"
    API = "api"


class IdentityKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    VISITOR = "visitor"
    SLACK = "slack"
    SOCIAL = "social"
    EXTERNAL = "external"


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Priority(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class SenderKind(StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class DeliveryStatus(StrEnum):
    RECEIVED = "received"  # inbound: stored, nothing to deliver
    PENDING = "pending"  # outbound: waiting for its channel
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class UploaderKind(StrEnum):
    """Who holds an attachment no message carries yet, and so who may
    attach it: an agent (`uploader_id` is the agent) or a widget visitor
    (its session). A canned response's files are held by the response
    (`uploader_id` is the canned response): no message ever takes them,
    sending the response carries copies (server.actions.canned_replies)."""

    AGENT = "agent"
    VISITOR = "visitor"
    CANNED_RESPONSE = "canned_response"
    # A file that came with an inbound mail (`uploader_id` is the
    # inbound_mails row); the message made from the mail takes it at once.
    EMAIL = "email"


class CannedScope(StrEnum):
    """Who shares a canned response: the whole workspace, one team, the
    members of one inbox, or only the agent who wrote it."""

    WORKSPACE = "workspace"
    TEAM = "team"
    INBOX = "inbox"
    PERSONAL = "personal"


def normalize_identity(kind: IdentityKind, value: str) -> str:
    """The canonical form an identity is stored and looked up in.

    Emails compare case-insensitively (the local part is case-sensitive by
    RFC 5321, but no real provider treats it so, and matching `Bob@x` to
    `bob@x` is what a support team expects); phone numbers keep only digits
    and a leading plus; other kinds are opaque ids kept as given.
    """
    value = value.strip()
    if kind is IdentityKind.EMAIL:
        return value.lower()
    if kind is IdentityKind.PHONE:
        digits = "".join(ch for ch in value if ch.isdigit())
        return ("+" if value.startswith("+") else "") + digits
    return value


def widget_external_id(session_id: int, client_id: str) -> str:
    """The dedupe key of a message typed in the widget: the session's own
    idempotency key, scoped to the session (PROTOCOLS.md P1)."""
    return f"widget:{session_id}:{client_id}"


def widget_client_id(external_id: str | None) -> str | None:
    """The widget's own key back from `widget_external_id`, so the widget
    can match a message it sees to the one it is sending."""
    if external_id is None or not external_id.startswith("widget:"):
        return None
    parts = external_id.split(":", 2)
    return parts[2] if len(parts) == 3 else None
