"""Inserting a row unless a UNIQUE key already holds one, on both backends.

`INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING ...` is how a replayed
trigger, a second worker or a retried transaction writes nothing: the
database decides, not a check-then-act read. SQLite (3.35+) and PostgreSQL
spell it the same; SQLAlchemy only needs the dialect's own `insert`.

On PostgreSQL a second transaction inserting the same key waits for the
first to commit and then does nothing, so exactly one of them gets a row
back whatever the interleaving.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_unless_taken(
    conn: AsyncConnection,
    table: sa.Table,
    values: Mapping[str, Any],
    *,
    keys: Sequence[str],
) -> sa.Row[Any] | None:
    """Insert `values` into `table` and return the whole new row, or None
    when a row with the same `keys` (a UNIQUE constraint's columns) exists."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*table.c)
    )
    return (await conn.execute(stmt)).first()
