"""Suppressions get a scope: `all` (a permanent bounce: no mail at all) or
`automated` (a one-click unsubscribe: no automatic mail, people's replies
still go).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email_suppressions") as batch:
        batch.add_column(sa.Column("scope", sa.String(16), nullable=False, server_default="all"))


def downgrade() -> None:
    with op.batch_alter_table("email_suppressions") as batch:
        batch.drop_column("scope")
