"""The chat widget: visitor sessions and contact events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

TABLES = ["visitor_sessions", "contact_events"]


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=f"fk_{table}_{column}_{referred}", ondelete="CASCADE"
    )


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{columns[0]}", table, list(columns))


def upgrade() -> None:
    op.create_table(
        "visitor_sessions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("inbox_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_visitor_sessions"),
        _fk("visitor_sessions", "workspace_id", "workspaces"),
        _fk("visitor_sessions", "inbox_id", "inboxes"),
        _fk("visitor_sessions", "contact_id", "contacts"),
        sa.UniqueConstraint("token_hash", name="uq_visitor_sessions_token_hash"),
    )
    _index("visitor_sessions", "workspace_id")
    _index("visitor_sessions", "inbox_id")
    _index("visitor_sessions", "contact_id")

    op.create_table(
        "contact_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contact_events"),
        _fk("contact_events", "workspace_id", "workspaces"),
        _fk("contact_events", "contact_id", "contacts"),
    )
    _index("contact_events", "workspace_id")
    _index("contact_events", "contact_id", "created_at", name="ix_contact_events_contact_created")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
