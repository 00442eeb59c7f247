"""The email channel: Message-IDs and email details on messages, inbound
mail log and quarantine, suppressions, IMAP checkpoints, the transactional
outbox, contact merge suggestions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, referred: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=f"fk_{table}_{column}_{referred}", ondelete=ondelete
    )


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("email_message_id", sa.String(500), nullable=True))
        batch.add_column(sa.Column("email", JSON, nullable=True))
    op.create_index(
        "ix_messages_inbox_email_message_id", "messages", ["inbox_id", "email_message_id"]
    )

    op.create_table(
        "inbound_mails",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("storage_key", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("envelope_from", sa.String(320), nullable=True),
        sa.Column("envelope_to", JSON, nullable=False),
        sa.Column("header_message_id", sa.String(500), nullable=True),
        sa.Column("from_address", sa.String(320), nullable=True),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("conversation_id", ID, nullable=True),
        sa.Column("thread", JSON, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_mails"),
        _fk("inbound_mails", "workspace_id", "workspaces"),
        _fk("inbound_mails", "inbox_id", "inboxes"),
        _fk("inbound_mails", "message_id", "messages", ondelete="SET NULL"),
        _fk("inbound_mails", "conversation_id", "conversations", ondelete="SET NULL"),
        sa.UniqueConstraint("inbox_id", "sha256", name="uq_inbound_mails_inbox_id_sha256"),
    )
    op.create_index("ix_inbound_mails_message_id", "inbound_mails", ["message_id"])
    op.create_index(
        "ix_inbound_mails_workspace_status",
        "inbound_mails",
        ["workspace_id", "status", "created_at"],
    )

    op.create_table(
        "email_suppressions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("inbound_mail_id", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_email_suppressions"),
        _fk("email_suppressions", "workspace_id", "workspaces"),
        _fk("email_suppressions", "inbound_mail_id", "inbound_mails", ondelete="SET NULL"),
        sa.UniqueConstraint(
            "workspace_id", "address", name="uq_email_suppressions_workspace_id_address"
        ),
    )

    op.create_table(
        "imap_checkpoints",
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("inbox_id", name="pk_imap_checkpoints"),
        _fk("imap_checkpoints", "inbox_id", "inboxes"),
        _fk("imap_checkpoints", "workspace_id", "workspaces"),
    )
    op.create_index("ix_imap_checkpoints_workspace_id", "imap_checkpoints", ["workspace_id"])

    op.create_table(
        "outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("stable_id", sa.String(500), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("locked_until", UTC_DATETIME, nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        _fk("outbox", "workspace_id", "workspaces"),
        _fk("outbox", "inbox_id", "inboxes"),
        _fk("outbox", "message_id", "messages"),
        sa.UniqueConstraint("channel", "stable_id", name="uq_outbox_channel_stable_id"),
    )
    op.create_index("ix_outbox_workspace_id", "outbox", ["workspace_id"])
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"])
    op.create_index("ix_outbox_status_due", "outbox", ["status", "due_at"])

    op.create_table(
        "contact_merge_suggestions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("candidate_id", ID, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contact_merge_suggestions"),
        _fk("contact_merge_suggestions", "workspace_id", "workspaces"),
        _fk("contact_merge_suggestions", "contact_id", "contacts"),
        _fk("contact_merge_suggestions", "candidate_id", "contacts"),
        sa.UniqueConstraint(
            "contact_id",
            "candidate_id",
            name="uq_contact_merge_suggestions_contact_id_candidate_id",
        ),
    )
    op.create_index(
        "ix_contact_merge_suggestions_workspace_id", "contact_merge_suggestions", ["workspace_id"]
    )
    op.create_index(
        "ix_contact_merge_suggestions_candidate_id", "contact_merge_suggestions", ["candidate_id"]
    )


def downgrade() -> None:
    op.drop_table("contact_merge_suggestions")
    op.drop_table("outbox")
    op.drop_table("imap_checkpoints")
    op.drop_table("email_suppressions")
    op.drop_table("inbound_mails")
    op.drop_index("ix_messages_inbox_email_message_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("email")
        batch.drop_column("email_message_id")
