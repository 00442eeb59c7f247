"""Initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Column types are spelled out rather than imported from server.storage.types,
so this revision keeps its meaning whatever happens to the application code:
`ID` is what `Id` was and `UTC_DATETIME` is what `UTCDateTime` stores.
Constraint and index names follow the naming convention of
server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# In creation order (referenced tables first); dropped in reverse.
TABLES = [
    "workspaces",
    "agents",
    "sessions",
    "api_tokens",
    "teams",
    "team_members",
    "inboxes",
    "inbox_members",
    "contacts",
    "contact_identities",
    "conversations",
    "conversation_labels",
    "messages",
    "attachments",
    "events",
]


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, autoincrement=True, nullable=False)


def _workspace_id(table: str) -> tuple[sa.Column[int], sa.ForeignKeyConstraint]:
    """The `workspace_id` column every table but workspaces carries, with its
    foreign key; its index is created by the caller."""
    return (
        sa.Column("workspace_id", ID, nullable=False),
        _fk(table, "workspace_id", "workspaces", "CASCADE"),
    )


def _fk(table: str, column: str, referred: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=f"fk_{table}_{column}_{referred}", ondelete=ondelete
    )


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{columns[0]}", table, list(columns))


def upgrade() -> None:
    op.create_table(
        "workspaces",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("event_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("events_pruned_through", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
    )

    op.create_table(
        "agents",
        _id(),
        *_workspace_id("agents"),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("availability", sa.String(16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("password_changed_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("email", name="uq_agents_email"),
    )
    _index("agents", "workspace_id")

    op.create_table(
        "sessions",
        _id(),
        *_workspace_id("sessions"),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
        _fk("sessions", "agent_id", "agents", "CASCADE"),
        sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
    )
    _index("sessions", "workspace_id")
    _index("sessions", "agent_id")

    op.create_table(
        "api_tokens",
        _id(),
        *_workspace_id("api_tokens"),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_used_at", UTC_DATETIME, nullable=True),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        _fk("api_tokens", "agent_id", "agents", "CASCADE"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    _index("api_tokens", "workspace_id")
    _index("api_tokens", "agent_id")

    op.create_table(
        "teams",
        _id(),
        *_workspace_id("teams"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_teams_workspace_id_name"),
    )

    op.create_table(
        "team_members",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        *_workspace_id("team_members"),
        sa.PrimaryKeyConstraint("team_id", "agent_id", name="pk_team_members"),
        _fk("team_members", "team_id", "teams", "CASCADE"),
        _fk("team_members", "agent_id", "agents", "CASCADE"),
    )
    _index("team_members", "workspace_id")
    _index("team_members", "agent_id")

    op.create_table(
        "inboxes",
        _id(),
        *_workspace_id("inboxes"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("public_token", sa.String(64), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inboxes"),
        sa.UniqueConstraint("public_token", name="uq_inboxes_public_token"),
    )
    _index("inboxes", "workspace_id")

    op.create_table(
        "inbox_members",
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        *_workspace_id("inbox_members"),
        sa.PrimaryKeyConstraint("inbox_id", "agent_id", name="pk_inbox_members"),
        _fk("inbox_members", "inbox_id", "inboxes", "CASCADE"),
        _fk("inbox_members", "agent_id", "agents", "CASCADE"),
    )
    _index("inbox_members", "workspace_id")
    _index("inbox_members", "agent_id")

    op.create_table(
        "contacts",
        _id(),
        *_workspace_id("contacts"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
    )
    _index("contacts", "workspace_id", "created_at", "id", name="ix_contacts_workspace_created")

    op.create_table(
        "contact_identities",
        _id(),
        *_workspace_id("contact_identities"),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contact_identities"),
        _fk("contact_identities", "contact_id", "contacts", "CASCADE"),
        sa.UniqueConstraint(
            "workspace_id", "kind", "value", name="uq_contact_identities_workspace_id_kind_value"
        ),
    )
    _index("contact_identities", "contact_id")

    op.create_table(
        "conversations",
        _id(),
        *_workspace_id("conversations"),
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("snoozed_until", UTC_DATETIME, nullable=True),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("assignee_id", ID, nullable=True),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("first_reply_at", UTC_DATETIME, nullable=True),
        sa.Column("waiting_since", UTC_DATETIME, nullable=True),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.Column("last_activity_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        _fk("conversations", "inbox_id", "inboxes", "CASCADE"),
        _fk("conversations", "contact_id", "contacts", "CASCADE"),
        _fk("conversations", "assignee_id", "agents", "SET NULL"),
        _fk("conversations", "team_id", "teams", "SET NULL"),
    )
    _index("conversations", "workspace_id")
    _index("conversations", "inbox_id", "last_activity_at", name="ix_conversations_inbox_activity")
    _index(
        "conversations",
        "contact_id",
        "inbox_id",
        "status",
        name="ix_conversations_contact_inbox_status",
    )
    _index("conversations", "assignee_id", "status", name="ix_conversations_assignee_status")
    _index("conversations", "team_id", "status", name="ix_conversations_team_status")

    op.create_table(
        "conversation_labels",
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        *_workspace_id("conversation_labels"),
        sa.PrimaryKeyConstraint("conversation_id", "label", name="pk_conversation_labels"),
        _fk("conversation_labels", "conversation_id", "conversations", "CASCADE"),
    )
    _index("conversation_labels", "workspace_id", "label", name="ix_conversation_labels_label")

    op.create_table(
        "messages",
        _id(),
        *_workspace_id("messages"),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("sender_kind", sa.String(16), nullable=False),
        sa.Column("sender_id", ID, nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(500), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("delivery_status", sa.String(16), nullable=False),
        sa.Column("delivery_error", sa.String(1000), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        _fk("messages", "conversation_id", "conversations", "CASCADE"),
        _fk("messages", "contact_id", "contacts", "CASCADE"),
        _fk("messages", "inbox_id", "inboxes", "CASCADE"),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_id_seq"),
        sa.UniqueConstraint("inbox_id", "external_id", name="uq_messages_inbox_id_external_id"),
        sa.UniqueConstraint(
            "conversation_id",
            "idempotency_key",
            name="uq_messages_conversation_id_idempotency_key",
        ),
    )
    _index("messages", "contact_id", "created_at", "id", name="ix_messages_contact_created")

    op.create_table(
        "attachments",
        _id(),
        *_workspace_id("attachments"),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("storage_key", sa.String(100), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
        _fk("attachments", "message_id", "messages", "CASCADE"),
        sa.UniqueConstraint("storage_key", name="uq_attachments_storage_key"),
    )
    _index("attachments", "workspace_id")
    _index("attachments", "message_id")

    op.create_table(
        "events",
        _id(),
        *_workspace_id("events"),
        sa.Column("ws_seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("inbox_id", ID, nullable=True),
        sa.Column("conversation_id", ID, nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("workspace_id", "ws_seq", name="uq_events_workspace_id_ws_seq"),
        # Ids are resume points: never reuse one after pruning.
        sqlite_autoincrement=True,
    )
    _index("events", "workspace_id", "id", name="ix_events_workspace_cursor")


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints with it.
    for table in reversed(TABLES):
        op.drop_table(table)
