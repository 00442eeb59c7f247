"""Touchpoints (FEATURES.md F7, TOUCHPOINTS.md): segments and their
members, touchpoints and their versioned steps, episodes, decisions, the
touch ledger that frequency caps count, consents, promo code pools; and
the time zone the widget reports on a visitor session.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Same conventions as 0001: column types spelled out, names following the
naming convention of server.storage.tables.metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NULLABLE_JSON = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)

# Dropped children first.
TABLES = (
    "touch_ledger",
    "promo_codes",
    "decisions",
    "touchpoint_steps",
    "episodes",
    "touchpoints",
    "segment_members",
    "segments",
    "consents",
    "promo_pools",
)


def upgrade() -> None:
    op.create_table(
        "promo_pools",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("low_stock", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_promo_pools_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_pools")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_promo_pools_workspace_id_name")),
    )
    op.create_table(
        "consents",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_consents_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_consents_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consents_contact_channel_topic_at",
            ["contact_id", "channel", "topic", "at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_consents_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "segments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", JSON, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["agents.id"],
            name=op.f("fk_segments_created_by_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_segments_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_segments_workspace_id_name")),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("entered_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_segment_members_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_members_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_segment_members_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("segment_id", "contact_id", name=op.f("pk_segment_members")),
    )
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_members_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_segment_members_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "touchpoints",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", JSON, nullable=False),
        sa.Column("trigger_key", sa.String(length=120), nullable=False),
        sa.Column("episode_key", sa.String(length=200), nullable=False),
        sa.Column("entry_segment_id", ID, nullable=True),
        sa.Column("exit_rules", JSON, nullable=False),
        sa.Column("goal", NULLABLE_JSON, nullable=True),
        sa.Column("reentry", sa.String(length=16), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("holdout_percent", sa.Integer(), nullable=False),
        sa.Column("max_lateness_seconds", sa.Integer(), nullable=True),
        sa.Column("quiet_hours", NULLABLE_JSON, nullable=True),
        sa.Column("inbox_id", ID, nullable=True),
        sa.Column("seed", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["agents.id"],
            name=op.f("fk_touchpoints_created_by_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entry_segment_id"],
            ["segments.id"],
            name=op.f("fk_touchpoints_entry_segment_id_segments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_touchpoints_inbox_id_inboxes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_touchpoints_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touchpoints")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_touchpoints_workspace_id_name")),
    )
    with op.batch_alter_table("touchpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_touchpoints_entry_segment_id"), ["entry_segment_id"], unique=False
        )
        batch_op.create_index(
            "ix_touchpoints_workspace_status_trigger",
            ["workspace_id", "status", "trigger_key"],
            unique=False,
        )

    op.create_table(
        "episodes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("touchpoint_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("conversation_id", ID, nullable=True),
        sa.Column("entered_at", UTC_DATETIME, nullable=False),
        sa.Column("ended_at", UTC_DATETIME, nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_episodes_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_episodes_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["touchpoint_id"],
            ["touchpoints.id"],
            name=op.f("fk_episodes_touchpoint_id_touchpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_episodes_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episodes")),
        sa.UniqueConstraint(
            "touchpoint_id",
            "contact_id",
            "key",
            name=op.f("uq_episodes_touchpoint_id_contact_id_key"),
        ),
    )
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.create_index("ix_episodes_contact_state", ["contact_id", "state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_episodes_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_episodes_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "touchpoint_steps",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("touchpoint_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("delay", JSON, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("step_filter", NULLABLE_JSON, nullable=True),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["touchpoint_id"],
            ["touchpoints.id"],
            name=op.f("fk_touchpoint_steps_touchpoint_id_touchpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_touchpoint_steps_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touchpoint_steps")),
        sa.UniqueConstraint(
            "touchpoint_id",
            "version",
            "position",
            name=op.f("uq_touchpoint_steps_touchpoint_id_version_position"),
        ),
    )
    with op.batch_alter_table("touchpoint_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_touchpoint_steps_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "decisions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("episode_id", ID, nullable=False),
        sa.Column("touchpoint_id", ID, nullable=False),
        sa.Column("step_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("due_at", UTC_DATETIME, nullable=False),
        sa.Column("run_at", UTC_DATETIME, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("variant", sa.String(length=40), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outbox_id", ID, nullable=True),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("channel_message_id", sa.String(length=500), nullable=True),
        sa.Column("rendered", NULLABLE_JSON, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("settled_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_decisions_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name=op.f("fk_decisions_episode_id_episodes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_decisions_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_decisions_outbox_id_outbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["touchpoint_steps.id"],
            name=op.f("fk_decisions_step_id_touchpoint_steps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["touchpoint_id"],
            ["touchpoints.id"],
            name=op.f("fk_decisions_touchpoint_id_touchpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_decisions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_decisions_idempotency_key")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index("ix_decisions_contact_due", ["contact_id", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_decisions_episode_id"), ["episode_id"], unique=False)
        batch_op.create_index("ix_decisions_state_run_at", ["state", "run_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_decisions_touchpoint_id"), ["touchpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_decisions_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "promo_codes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("pool_id", ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decision_id", ID, nullable=True),
        sa.Column("contact_id", ID, nullable=True),
        sa.Column("issued_at", UTC_DATETIME, nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("redeemed_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_promo_codes_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_promo_codes_decision_id_decisions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["promo_pools.id"],
            name=op.f("fk_promo_codes_pool_id_promo_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_promo_codes_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_codes")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_promo_codes_decision_id")),
        sa.UniqueConstraint("workspace_id", "code", name=op.f("uq_promo_codes_workspace_id_code")),
    )
    with op.batch_alter_table("promo_codes", schema=None) as batch_op:
        batch_op.create_index("ix_promo_codes_pool_state", ["pool_id", "state"], unique=False)

    op.create_table(
        "touch_ledger",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("workspace_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("decision_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_touch_ledger_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_touch_ledger_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_touch_ledger_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touch_ledger")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_touch_ledger_decision_id")),
    )
    with op.batch_alter_table("touch_ledger", schema=None) as batch_op:
        batch_op.create_index(
            "ix_touch_ledger_contact_kind_at", ["contact_id", "kind", "at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_touch_ledger_workspace_id"), ["workspace_id"], unique=False
        )

    with op.batch_alter_table("visitor_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("visitor_sessions") as batch_op:
        batch_op.drop_column("timezone")
    for table in TABLES:
        op.drop_table(table)
