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
    """Who uploaded an attachment, and so who may attach it to a message:
    an agent (`uploader_id` is the agent) or a widget visitor (its session)."""

    AGENT = "agent"
    VISITOR = "visitor"


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
