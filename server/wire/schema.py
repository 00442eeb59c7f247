"""Input shapes for the REST API and the sockets' query parameters: one
declaration gives both validation and the OpenAPI schema, so the document
can't drift from what is enforced.

Every parse error is an InvalidInput naming the offending field by its path
(`identities[0].value`); nothing is written before the whole input parsed
(PROTOCOLS.md P8).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from server.domain.errors import InvalidInput
from server.domain.integers import parse_int
from server.domain.json_types import JsonValue

DEFAULT_MAX_STRING = 10_000

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Parser(Protocol[T_co]):
    """Reads one value of untrusted input (hence `Any`) into a `T_co`."""

    def parse(self, value: Any, path: str) -> T_co: ...

    def parse_text(self, raw: str, path: str) -> T_co:
        """Parse from a query-string value."""
        ...

    def openapi(self) -> dict[str, JsonValue]: ...


# Any parser, whatever it reads into.
Field: TypeAlias = Parser[Any]


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}", field=path)


@dataclasses.dataclass(frozen=True)
class Str:
    max_length: int = DEFAULT_MAX_STRING
    min_length: int = 0
    choices: tuple[str, ...] | None = None
    strip: bool = True
    description: str = ""

    @classmethod
    def enum(cls, e: type[StrEnum], description: str = "") -> Str:
        return cls(max_length=64, choices=tuple(m.value for m in e), description=description)

    def parse(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _fail(path, "must be a string")
        if "\x00" in value:
            raise _fail(path, "must not contain NUL characters")
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            raise _fail(path, "must be valid Unicode")
        text: str = value.strip() if self.strip else value
        if len(text) > self.max_length:
            raise _fail(path, f"must be at most {self.max_length} characters")
        if len(text) < self.min_length:
            raise _fail(
                path,
                "must not be empty"
                if self.min_length == 1
                else f"must be at least {self.min_length} characters",
            )
        if self.choices is not None and text not in self.choices:
            raise _fail(path, f"must be one of: {', '.join(self.choices)}")
        return text

    def parse_text(self, raw: str, path: str) -> str:
        return self.parse(raw, path)

    def openapi(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"type": "string", "maxLength": self.max_length}
        if self.min_length:
            out["minLength"] = self.min_length
        if self.choices is not None:
            out["enum"] = list(self.choices)
        if self.description:
            out["description"] = self.description
        return out


@dataclasses.dataclass(frozen=True)
class Int:
    minimum: int = -(2**53)
    maximum: int = 2**53
    description: str = ""

    def parse(self, value: Any, path: str) -> int:
        # bool is an int in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "must be a whole number")
        if not self.minimum <= value <= self.maximum:
            raise _fail(path, f"must be between {self.minimum} and {self.maximum}")
        return value

    def parse_text(self, raw: str, path: str) -> int:
        return parse_int(raw, path, minimum=self.minimum, maximum=self.maximum)

    def openapi(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "type": "integer",
            "minimum": self.minimum,
            "maximum": self.maximum,
        }
        if self.description:
            out["description"] = self.description
        return out


Id = Int(minimum=1, maximum=2**63 - 1)


@dataclasses.dataclass(frozen=True)
class Bool:
    description: str = ""

    def parse(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise _fail(path, "must be true or false")
        return value

    def parse_text(self, raw: str, path: str) -> bool:
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        raise _fail(path, "must be true or false")

    def openapi(self) -> dict[str, JsonValue]:
        return {
            "type": "boolean",
            **({"description": self.description} if self.description else {}),
        }


@dataclasses.dataclass(frozen=True)
class DateTime:
    description: str = ""

    def parse(self, value: Any, path: str) -> datetime:
        if not isinstance(value, str) or len(value) > 40:
            raise _fail(path, "must be an ISO 8601 date-time string")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _fail(path, "must be an ISO 8601 date-time string") from None
        if parsed.tzinfo is None:
            raise _fail(path, "must include a time zone offset (e.g. Z or +02:00)")
        return parsed

    def parse_text(self, raw: str, path: str) -> datetime:
        return self.parse(raw, path)

    def openapi(self) -> dict[str, JsonValue]:
        return {
            "type": "string",
            "format": "date-time",
            **({"description": self.description} if self.description else {}),
        }


@dataclasses.dataclass(frozen=True)
class Duration:
    """A length of time as an author writes it: whole seconds (what the API
    answers) or text such as "90s", "10m", "4h", "3d". Only its form is
    checked here; the domain reads it (server.domain.touch_timing)."""

    max_length: int = 20
    description: str = ""

    def parse(self, value: Any, path: str) -> int | str:
        if isinstance(value, str):
            return Str(max_length=self.max_length, min_length=1).parse(value, path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, 'must be whole seconds or a duration such as "4h"')
        return Int(minimum=0, maximum=2**31 - 1).parse(value, path)

    def parse_text(self, raw: str, path: str) -> int | str:
        raise _fail(path, "cannot be given in a query string")

    def openapi(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "maxLength": self.max_length},
            ]
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclasses.dataclass(frozen=True)
class Nullable(Generic[T]):
    inner: Parser[T]

    def parse(self, value: Any, path: str) -> T | None:
        return None if value is None else self.inner.parse(value, path)

    def parse_text(self, raw: str, path: str) -> T | None:
        return None if raw in ("", "null") else self.inner.parse_text(raw, path)

    def openapi(self) -> dict[str, JsonValue]:
        return {**self.inner.openapi(), "nullable": True}


# How an array travels in a query string, as the OpenAPI document says:
# the parameter repeated (`status=a&status=b`, OpenAPI's default for query
# parameters and what generated clients send). A comma-separated value
# (`status=a,b`) is taken too, and the two mix.
QUERY_ARRAY_STYLE: dict[str, JsonValue] = {"style": "form", "explode": True}
QUERY_ARRAY_NOTE = "repeat the parameter ({0}=a&{0}=b); {0}=a,b is accepted too"


@dataclasses.dataclass(frozen=True)
class List(Generic[T]):
    item: Parser[T]
    max_items: int = 100
    description: str = ""

    def parse(self, value: Any, path: str) -> list[T]:
        if not isinstance(value, list):
            raise _fail(path, "must be a list")
        if len(value) > self.max_items:
            raise _fail(path, f"must have at most {self.max_items} items")
        return [self.item.parse(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def parse_text(self, raw: str, path: str) -> list[T]:
        return self.parse_texts([raw], path)

    def parse_texts(self, raws: list[str], path: str) -> list[T]:
        """The values of a query parameter given once or repeated, each
        one a value or a comma-separated list of them (QUERY_ARRAY_STYLE)."""
        parts = [p for raw in raws for p in raw.split(",") if p.strip()]
        if len(parts) > self.max_items:
            raise _fail(path, f"must have at most {self.max_items} items")
        return [self.item.parse_text(p, f"{path}[{i}]") for i, p in enumerate(parts)]

    def openapi(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "type": "array",
            "items": self.item.openapi(),
            "maxItems": self.max_items,
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclasses.dataclass(frozen=True)
class JsonMap:
    """A free-form object of scalar values (custom attributes): keys are
    short strings, values str / number / bool / null, bounded. With
    `max_depth` > 0, values may also be lists and objects nested that deep
    (inbox settings such as business hours), every string still checked."""

    max_keys: int = 100
    max_bytes: int = 16_384
    description: str = ""
    max_depth: int = 0

    def parse(self, value: Any, path: str) -> dict[str, JsonValue]:
        if not isinstance(value, dict):
            raise _fail(path, "must be an object")
        if len(value) > self.max_keys:
            raise _fail(path, f"must have at most {self.max_keys} keys")
        out = {
            key: self._value(item, f"{path}.{key}", self.max_depth)
            for key, item in value.items()
            if Str(max_length=100, min_length=1).parse(key, f"{path}.{key[:100]}")
        }
        if len(json.dumps(out)) > self.max_bytes:
            raise _fail(path, f"must be at most {self.max_bytes} bytes as JSON")
        return out

    def _value(self, item: Any, path: str, depth: int) -> JsonValue:
        if isinstance(item, str):
            return Str(max_length=self.max_bytes, strip=False).parse(item, path)
        if isinstance(item, float) and not math.isfinite(item):
            raise _fail(path, "must be a finite number")
        if item is None or isinstance(item, bool | int | float):
            return item
        if depth > 0 and isinstance(item, list) and len(item) <= self.max_keys:
            return [self._value(x, f"{path}.{i}", depth - 1) for i, x in enumerate(item)]
        if depth > 0 and isinstance(item, dict) and len(item) <= self.max_keys:
            return {
                key: self._value(x, f"{path}.{key}", depth - 1)
                for key, x in item.items()
                if Str(max_length=100, min_length=1).parse(key, f"{path}.{key[:100]}")
            }
        if depth > 0:
            raise _fail(
                path, f"must be at most {self.max_keys} items, nested {self.max_depth} deep"
            )
        raise _fail(path, "must be a string, number, boolean or null")

    def parse_text(self, raw: str, path: str) -> dict[str, JsonValue]:
        raise _fail(path, "cannot be given in a query string")

    def openapi(self) -> dict[str, JsonValue]:
        if self.max_depth > 0:
            nested: dict[str, JsonValue] = {"type": "object", "maxProperties": self.max_keys}
            if self.description:
                nested["description"] = self.description
            return nested
        out: dict[str, JsonValue] = {
            "type": "object",
            "maxProperties": self.max_keys,
            "additionalProperties": {
                "nullable": True,
                "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
            },
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclasses.dataclass(frozen=True)
class Obj:
    """An object with known fields; unknown fields are rejected by name so a
    typo never passes silently. The parsed dict holds only the fields that
    were present (absent and null stay distinguishable); it is the untyped
    form, for which a record (server.wire.records) is the typed one."""

    fields: Mapping[str, Field]
    required: frozenset[str] = frozenset()
    description: str = ""

    def parse(self, value: Any, path: str = "") -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path or "body", "must be a JSON object")
        for key in value:
            if key not in self.fields:
                raise _fail(_join(path, str(key)[:100]), "unknown field")
        for key in sorted(self.required):
            if key not in value:
                raise _fail(_join(path, key), "is required")
        return {k: self.fields[k].parse(v, _join(path, k)) for k, v in value.items()}

    def parse_query(self, params: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """A query string as its (name, value) pairs, repeats kept (a
        Mapping would keep one value per name). An array field takes every
        value given for it (QUERY_ARRAY_STYLE); any other field given twice
        is refused rather than one of its values silently winning."""
        given: dict[str, list[str]] = {}
        for key, value in params:
            if key not in self.fields:
                raise _fail(str(key)[:100], "unknown query parameter")
            given.setdefault(key, []).append(value)
        for key in sorted(self.required):
            if key not in given:
                raise _fail(key, "is required")
        out: dict[str, Any] = {}
        for key, values in given.items():
            field = self.fields[key]
            if isinstance(field, List):
                out[key] = field.parse_texts(values, key)
            elif len(values) > 1:
                raise _fail(key, "must be given once")
            else:
                out[key] = field.parse_text(values[0], key)
        return out

    def parse_text(self, raw: str, path: str) -> dict[str, Any]:
        raise _fail(path, "cannot be given in a query string")

    def openapi(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: f.openapi() for k, f in self.fields.items()},
        }
        if self.required:
            out["required"] = sorted(self.required)
        if self.description:
            out["description"] = self.description
        return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def obj(required: tuple[str, ...] = (), *, doc: str = "", **fields: Field) -> Obj:
    """Shorthand: `obj(("text",), text=Str(min_length=1), private=Bool())`.
    The object's own description is `doc`, so that any field name (even
    `description`) can be declared."""
    return Obj(fields=fields, required=frozenset(required), description=doc)
