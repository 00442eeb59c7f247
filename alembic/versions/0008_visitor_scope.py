"""Widget sessions follow only conversations opened for the contact they
proved: `conversations.origin_contact_id` (the contact a conversation was
opened for; a contact merge leaves it) and
`visitor_sessions.proven_contact_id` (the contact a session proved; a
contact merge leaves it too).

Existing rows: a conversation or session that a contact merge still in
force moved gets the contact it was on before its first such merge;
everything else its current contact.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _first_owners(rows: Sequence[Any], key: str) -> dict[int, int]:
    """Row id -> the merged contact of the earliest merge in force that
    moved it: where it was before any merge moved it."""
    owners: dict[int, int] = {}
    for row in rows:
        moved = row.moved if isinstance(row.moved, dict) else {}
        for row_id in moved.get(key, []):
            owners.setdefault(int(row_id), int(row.merged_id))
    return owners


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("origin_contact_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_conversations_origin_contact_id_contacts",
            "contacts",
            ["origin_contact_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("visitor_sessions") as batch:
        batch.add_column(sa.Column("proven_contact_id", ID, nullable=True))
    op.execute("UPDATE conversations SET origin_contact_id = contact_id")
    op.execute("UPDATE visitor_sessions SET proven_contact_id = contact_id")
    merges = sa.table(
        "contact_merges",
        sa.column("id", ID),
        sa.column("merged_id", ID),
        sa.column("moved", sa.JSON()),
        sa.column("undone_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(merges.c.merged_id, merges.c.moved)
        .where(merges.c.undone_at.is_(None))
        .order_by(merges.c.id)
    ).all()
    for table, column, key in (
        ("conversations", "origin_contact_id", "conversations"),
        ("visitor_sessions", "proven_contact_id", "visitor_sessions"),
    ):
        target = sa.table(table, sa.column("id", ID), sa.column(column, ID))
        for row_id, contact_id in _first_owners(rows, key).items():
            bind.execute(
                target.update().where(target.c.id == row_id).values({column: contact_id})
            )
    with op.batch_alter_table("visitor_sessions") as batch:
        batch.alter_column("proven_contact_id", existing_type=ID, nullable=False)
        batch.create_foreign_key(
            "fk_visitor_sessions_proven_contact_id_contacts",
            "contacts",
            ["proven_contact_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("visitor_sessions") as batch:
        batch.drop_constraint("fk_visitor_sessions_proven_contact_id_contacts", type_="foreignkey")
        batch.drop_column("proven_contact_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("fk_conversations_origin_contact_id_contacts", type_="foreignkey")
        batch.drop_column("origin_contact_id")
