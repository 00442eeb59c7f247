"""Durable due work: `scheduled_jobs`, rows with a due time claimed by
the scheduler (first kind: waking a snoozed conversation at its time).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("run_at", UTC_DATETIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", UTC_DATETIME, nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled_jobs"),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_scheduled_jobs_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("kind", "key", name="uq_scheduled_jobs_kind_key"),
    )
    op.create_index("ix_scheduled_jobs_workspace_id", "scheduled_jobs", ["workspace_id"])
    op.create_index("ix_scheduled_jobs_status_run_at", "scheduled_jobs", ["status", "run_at"])
    op.create_index("ix_scheduled_jobs_kind_subject", "scheduled_jobs", ["kind", "subject_id"])
    _schedule_existing_snoozes()


def _schedule_existing_snoozes() -> None:
    """Conversations snoozed before this revision get their wake-up, so
    they reopen like any other (one due already runs at the next start).
    The kind and key are server.actions.snooze_jobs' SNOOZE_WAKE and
    snooze_key."""
    conversations = sa.table(
        "conversations",
        sa.column("id", ID),
        sa.column("workspace_id", ID),
        sa.column("status", sa.String()),
        sa.column("snoozed_until", UTC_DATETIME),
    )
    jobs = sa.table(
        "scheduled_jobs",
        *(
            sa.column(name, type_)
            for name, type_ in [
                ("workspace_id", ID),
                ("kind", sa.String()),
                ("subject_id", ID),
                ("key", sa.String()),
                ("due_at", UTC_DATETIME),
                ("run_at", UTC_DATETIME),
                ("status", sa.String()),
                ("attempts", sa.Integer()),
                ("created_at", UTC_DATETIME),
            ]
        ),
    )
    bind = op.get_bind()
    snoozed = bind.execute(
        sa.select(conversations.c.id, conversations.c.workspace_id, conversations.c.snoozed_until)
        .where(conversations.c.status == "snoozed", conversations.c.snoozed_until.is_not(None))
        .order_by(conversations.c.id)
    ).all()
    now = datetime.now(UTC)
    rows = []
    for cid, workspace_id, until in snoozed:
        # SQLite hands back naive UTC datetimes (server.storage.types).
        until = until.replace(tzinfo=UTC) if until.tzinfo is None else until.astimezone(UTC)
        rows.append(
            {
                "workspace_id": workspace_id,
                "kind": "conversation.snooze_wake",
                "subject_id": cid,
                "key": f"{cid}@{until.isoformat()}",
                "due_at": until,
                "run_at": until,
                "status": "scheduled",
                "attempts": 0,
                "created_at": now,
            }
        )
    if rows:
        if bind.dialect.name == "sqlite":  # stored naive, as server.storage.types does
            for row in rows:
                for name in ("due_at", "run_at", "created_at"):
                    row[name] = row[name].replace(tzinfo=None)
        bind.execute(jobs.insert(), rows)


def downgrade() -> None:
    op.drop_table("scheduled_jobs")
