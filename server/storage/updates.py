"""Updating many rows by id, each with its own values, in few statements.

A batch that settles a hundred rows differently (a state, a reason, a
time each) would otherwise send a hundred UPDATEs, each one a round trip
and a statement built: rows changing the same columns share one
`UPDATE ... WHERE id = ?` run with every row's parameters (executemany).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

# Bound parameter names must not be column names in an UPDATE's SET.
_PREFIX = "new_"


async def update_by_id(
    conn: AsyncConnection, table: sa.Table, changes: Sequence[tuple[int, Mapping[str, Any]]]
) -> None:
    """Set each (id, values) pair's columns on the row with that id: one
    statement per distinct set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in changes:
        columns = tuple(sorted(values))
        params = {_PREFIX + name: values[name] for name in columns}
        params[_PREFIX + "id"] = row_id
        groups.setdefault(columns, []).append(params)
    for columns, rows in groups.items():
        stmt = (
            table.update()
            .where(table.c.id == sa.bindparam(_PREFIX + "id"))
            .values(
                {name: sa.bindparam(_PREFIX + name, type_=table.c[name].type) for name in columns}
            )
        )
        await conn.execute(stmt, rows)


class RowWrites:
    """Column values to set on rows by id, gathered while a batch is
    worked through and written together by `flush` (a row set twice gets
    both, the later values winning). The batch must not read a gathered
    row back from the database before the flush: it keeps what it wrote
    in memory instead."""

    def __init__(self) -> None:
        self._rows: dict[sa.Table, dict[int, dict[str, Any]]] = {}

    def set(self, table: sa.Table, row_id: int, values: Mapping[str, Any]) -> None:
        self._rows.setdefault(table, {}).setdefault(row_id, {}).update(values)

    async def flush(self, conn: AsyncConnection) -> None:
        rows, self._rows = self._rows, {}
        for table, changes in rows.items():
            await update_by_id(conn, table, list(changes.items()))
