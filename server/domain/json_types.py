"""The type of a JSON document, for values that cross the wire.

An API answer, an event payload or a stored JSON column is a tree of
these; typing it so (rather than `dict[str, Any]`) lets mypy check what
goes in. `Mapping` and `Sequence` are read-only, hence covariant: a
`dict[str, str]` is a `JsonObject`, a `list[JsonObject]` is a `JsonValue`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JsonScalar: TypeAlias = bool | int | float | str | None
JsonValue: TypeAlias = JsonScalar | Sequence["JsonValue"] | Mapping[str, "JsonValue"]
JsonObject: TypeAlias = Mapping[str, JsonValue]
