"""Audit log, contact and conversation merges, macros, saved filters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
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
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("merged_into_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_contacts_merged_into_id_contacts",
            "contacts",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("merged_into_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_conversations_merged_into_id_conversations",
            "conversations",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "audit_log",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(32), nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        _fk("audit_log", "workspace_id", "workspaces"),
    )
    op.create_index(
        "ix_audit_log_workspace_created", "audit_log", ["workspace_id", "created_at", "id"]
    )

    op.create_table(
        "contact_merges",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("survivor_id", ID, nullable=False),
        sa.Column("merged_id", ID, nullable=False),
        sa.Column("moved", JSON, nullable=False),
        sa.Column("merged_by", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("undone_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_contact_merges"),
        _fk("contact_merges", "workspace_id", "workspaces"),
        _fk("contact_merges", "survivor_id", "contacts"),
        _fk("contact_merges", "merged_id", "contacts"),
        _fk("contact_merges", "merged_by", "agents", ondelete="SET NULL"),
    )
    op.create_index("ix_contact_merges_workspace_id", "contact_merges", ["workspace_id"])
    op.create_index("ix_contact_merges_merged_id", "contact_merges", ["merged_id"])

    op.create_table(
        "macros",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("owner_key", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("actions", JSON, nullable=False),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_macros"),
        _fk("macros", "workspace_id", "workspaces"),
        _fk("macros", "agent_id", "agents"),
        _fk("macros", "created_by", "agents", ondelete="SET NULL"),
        sa.UniqueConstraint(
            "workspace_id", "owner_key", "name", name="uq_macros_workspace_id_owner_key_name"
        ),
        sa.CheckConstraint(
            "(scope = 'workspace' AND agent_id IS NULL)"
            " OR (scope = 'personal' AND agent_id IS NOT NULL)",
            name="ck_macros_scope_owner",
        ),
    )
    op.create_index("ix_macros_agent_id", "macros", ["agent_id"])

    op.create_table(
        "saved_filters",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("query", JSON, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_saved_filters"),
        _fk("saved_filters", "workspace_id", "workspaces"),
        _fk("saved_filters", "agent_id", "agents"),
        sa.UniqueConstraint("agent_id", "name", name="uq_saved_filters_agent_id_name"),
    )
    op.create_index("ix_saved_filters_workspace_id", "saved_filters", ["workspace_id"])


def downgrade() -> None:
    op.drop_table("saved_filters")
    op.drop_table("macros")
    op.drop_table("contact_merges")
    op.drop_table("audit_log")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("fk_conversations_merged_into_id_conversations", type_="foreignkey")
        batch.drop_column("merged_into_id")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_constraint("fk_contacts_merged_into_id_contacts", type_="foreignkey")
        batch.drop_column("merged_into_id")
