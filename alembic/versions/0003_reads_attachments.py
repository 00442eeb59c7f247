"""Read receipts and attachments.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
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
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("contact_last_read_seq", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("agent_last_read_seq", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("attachments", JSON, nullable=False, server_default="[]"))

    op.create_table(
        "conversation_reads",
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("last_read_seq", sa.Integer(), nullable=False),
        sa.Column("read_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "agent_id", name="pk_conversation_reads"),
        _fk("conversation_reads", "conversation_id", "conversations"),
        _fk("conversation_reads", "agent_id", "agents"),
        _fk("conversation_reads", "workspace_id", "workspaces"),
    )
    op.create_index("ix_conversation_reads_workspace_id", "conversation_reads", ["workspace_id"])

    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("inbox_id", ID, nullable=True))
        batch.add_column(
            sa.Column("uploader_kind", sa.String(16), nullable=False, server_default="agent")
        )
        batch.add_column(sa.Column("uploader_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_attachments_inbox_id_inboxes", "inboxes", ["inbox_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_constraint("fk_attachments_inbox_id_inboxes", type_="foreignkey")
        batch.drop_column("uploader_id")
        batch.drop_column("uploader_kind")
        batch.drop_column("inbox_id")
    op.drop_table("conversation_reads")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("attachments")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("agent_last_read_seq")
        batch.drop_column("contact_last_read_seq")
