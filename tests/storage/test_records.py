"""Each typed row in server.queries.records mirrors its table: the same
columns in the same order, optional exactly where the column is nullable."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest
import sqlalchemy as sa

from server.queries import records
from server.storage import tables as t

RECORDS = {
    cls.__doc__.split("`")[1]: cls  # type: ignore[union-attr]
    for cls in vars(records).values()
    if isinstance(cls, type)
    and dataclasses.is_dataclass(cls)
    and cls.__module__ == records.__name__
}


def test_every_record_names_a_table() -> None:
    assert RECORDS, "no records found"
    assert set(RECORDS) <= set(t.metadata.tables)


@pytest.mark.parametrize("table_name", sorted(RECORDS))
def test_record_fields_are_the_table_columns(table_name: str) -> None:
    cls = RECORDS[table_name]
    table = t.metadata.tables[table_name]
    hints = typing.get_type_hints(cls)
    assert [f.name for f in dataclasses.fields(cls)] == [c.name for c in table.columns]
    for column in table.columns:
        hint = hints[column.name]
        optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
        if hint is typing.Any:
            continue  # a JSON column: any JSON value, None included
        assert optional == bool(column.nullable), column.name


def test_load_takes_columns_by_name_and_ignores_extras() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT 'x' AS extra, 2 AS id, 'Support' AS name")).one()
    loaded = records.load(_Named, row)
    assert loaded == _Named(id=2, name="Support")


@dataclasses.dataclass(frozen=True)
class _Named:
    id: int
    name: str
