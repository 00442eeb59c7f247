"""Canned responses.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

SCOPE_OWNER = (
    "(scope = 'workspace' AND team_id IS NULL AND inbox_id IS NULL AND agent_id IS NULL)"
    " OR (scope = 'team' AND team_id IS NOT NULL AND inbox_id IS NULL AND agent_id IS NULL)"
    " OR (scope = 'inbox' AND inbox_id IS NOT NULL AND team_id IS NULL AND agent_id IS NULL)"
    " OR (scope = 'personal' AND agent_id IS NOT NULL AND team_id IS NULL"
    " AND inbox_id IS NULL)"
)


def _fk(column: str, referred: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{referred}.id"],
        name=f"fk_canned_responses_{column}_{referred}",
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "canned_responses",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("inbox_id", ID, nullable=True),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("owner_key", sa.String(40), nullable=False),
        sa.Column("shortcut", sa.String(50), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachment_ids", JSON, nullable=False),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canned_responses"),
        _fk("workspace_id", "workspaces"),
        _fk("team_id", "teams"),
        _fk("inbox_id", "inboxes"),
        _fk("agent_id", "agents"),
        _fk("created_by", "agents", ondelete="SET NULL"),
        sa.UniqueConstraint(
            "workspace_id",
            "owner_key",
            "shortcut",
            name="uq_canned_responses_workspace_id_owner_key_shortcut",
        ),
        sa.CheckConstraint(SCOPE_OWNER, name="ck_canned_responses_scope_owner"),
    )
    op.create_index("ix_canned_responses_team_id", "canned_responses", ["team_id"])
    op.create_index("ix_canned_responses_inbox_id", "canned_responses", ["inbox_id"])
    op.create_index("ix_canned_responses_agent_id", "canned_responses", ["agent_id"])
    op.create_index(
        "ix_canned_responses_workspace_shortcut", "canned_responses", ["workspace_id", "shortcut"]
    )


def downgrade() -> None:
    op.drop_table("canned_responses")
