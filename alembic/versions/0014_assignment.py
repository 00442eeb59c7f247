"""Assignment (FEATURES.md F5): policies per inbox or team, the record of
every automatic assignment, and agents' presence as assignment sees it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("connected", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("left_at", UTC_DATETIME, nullable=True))

    op.create_table(
        "assignment_policies",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("inbox_id", ID, nullable=True),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("policy", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "(inbox_id IS NULL) <> (team_id IS NULL)",
            name=op.f("ck_assignment_policies_one_scope"),
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_assignment_policies_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_assignment_policies_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_assignment_policies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment_policies")),
        sa.UniqueConstraint("inbox_id", name=op.f("uq_assignment_policies_inbox_id")),
        sa.UniqueConstraint("team_id", name=op.f("uq_assignment_policies_team_id")),
    )
    with op.batch_alter_table("assignment_policies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assignment_policies_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "assignments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("policy_id", ID, nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_assignments_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_assignments_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["assignment_policies.id"],
            name=op.f("fk_assignments_policy_id_assignment_policies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_assignments_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_agent_at", ["agent_id", "at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_assignments_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index("ix_assignments_workspace_at", ["workspace_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("assignments")
    op.drop_table("assignment_policies")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("left_at")
        batch_op.drop_column("connected")
