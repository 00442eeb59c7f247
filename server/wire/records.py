"""Request bodies and query strings as typed records: one declaration is
the value a handler reads (`call.body.email: str`), the validator and the
OpenAPI schema.

    @record
    class NewTeam:
        name: str = arg(Name)
        description: str = arg(Description, default="")

A record is a frozen, keyword-only dataclass; each field names its parser
with `arg`, and mypy checks that the parser reads into the field's type.
A field without a default is required. `schema_of(NewTeam)` is the `Obj`
derived from it, so the validation and its error messages are exactly
those of `Obj` (server.wire.schema).

A partial update tells a field left out from one sent as null: such a
field defaults to `UNSET` (type `... | Unset`), and `given(record)` is the
fields that were sent.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar, dataclass_transform, overload

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.wire.schema import Field, Obj, Parser

T = TypeVar("T")
D = TypeVar("D")

_PARSER = "parser"


class Unset(enum.Enum):
    """The type of `UNSET`: a field the request left out."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@overload
def arg(parser: Parser[T]) -> T: ...
@overload
def arg(parser: Parser[T], *, default: D) -> T | D: ...
@overload
def arg(parser: Parser[T], *, default_factory: Callable[[], T]) -> T: ...
def arg(
    parser: Field,
    *,
    default: object = dataclasses.MISSING,
    default_factory: Callable[[], object] | None = None,
) -> Any:
    """A record field read by `parser`; with a default, it may be left out.
    (Typed as the value, as `dataclasses.field` is, for the class body.)"""
    metadata = {_PARSER: parser}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    if default is not dataclasses.MISSING:
        return dataclasses.field(default=default, metadata=metadata)
    return dataclasses.field(metadata=metadata)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(arg,))
def record(cls: type[T]) -> type[T]:
    """Make `cls` a record (see the module's docstring). A class attribute
    `DOC: ClassVar[str]` is the description of its OpenAPI schema."""
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


@dataclasses.dataclass(frozen=True)
class RecordSchema(Obj, Generic[T]):
    """The `Obj` of a record class: `parse` and `parse_query` still answer
    the dict of the fields given (what an Idempotency-Key fingerprint
    hashes); `build` makes the record of that dict."""

    cls: type[T] = dataclasses.field(kw_only=True)

    def build(self, given_fields: dict[str, Any]) -> T:
        return self.cls(**given_fields)


def schema_of(cls: type[T]) -> RecordSchema[T]:
    fields: dict[str, Field] = {}
    required: set[str] = set()
    for f in _fields(cls):
        fields[f.name] = f.metadata[_PARSER]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.add(f.name)
    return RecordSchema(fields, frozenset(required), str(getattr(cls, "DOC", "")), cls=cls)


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a @record")
    return dataclasses.fields(cls)


class Nested(Generic[T]):
    """A record inside a body (a list's items), parsed to a `T`.

    Its fields may default to UNSET only, so that the fields it was given
    are exactly the object sent (what `wire_form` gives back)."""

    def __init__(self, cls: type[T]) -> None:
        self.schema = schema_of(cls)
        for f in _fields(cls):
            if f.default_factory is not dataclasses.MISSING or f.default not in _NO_DEFAULT:
                raise TypeError(f"{cls.__name__}.{f.name}: a nested record defaults to UNSET only")

    def parse(self, value: Any, path: str) -> T:
        return self.schema.build(self.schema.parse(value, path))

    def parse_text(self, raw: str, path: str) -> T:
        raise InvalidInput(f"{path}: cannot be given in a query string", field=path)

    def openapi(self) -> dict[str, JsonValue]:
        return self.schema.openapi()


_NO_DEFAULT = (dataclasses.MISSING, UNSET)


def or_none(value: T | Unset) -> T | None:
    """A field of a partial update as an action takes it: None if left out."""
    return None if value is UNSET else value


def given(rec: object) -> dict[str, object]:
    """The fields of a record that are not UNSET: for a partial update,
    the ones the request sent."""
    if not dataclasses.is_dataclass(rec):
        raise TypeError(f"{rec!r} is not a record")
    values: dict[str, object] = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)}
    return {name: value for name, value in values.items() if value is not UNSET}


def wire_form(value: object) -> object:
    """A parsed value as the JSON object it was read from: nested records
    (see `Nested`) back to the dicts of their fields."""
    if isinstance(value, dict):
        return {k: wire_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire_form(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return wire_form(given(value))
    return value
