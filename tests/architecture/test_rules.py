"""The architecture's rules as tests: one door for writes, documented
events and settings, an OpenAPI document that matches the routes."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from server.domain.events import CATALOGUE, Event
from server.http.api import openapi_document
from server.http.routes import API_PREFIX, API_VERSION, ENDPOINTS, api_routes
from server.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "server"
# Modules allowed to publish on the bus or append to the events log: the
# actions (the one door) and the storage/bus modules that implement them.
WRITERS = {SERVER / "actions", SERVER / "storage" / "events.py", SERVER / "bus"}


def _python_files() -> list[Path]:
    return sorted(p for d in (SERVER, ROOT / "connectors") for p in d.rglob("*.py"))


def _allowed(path: Path) -> bool:
    return any(path == w or w in path.parents for w in WRITERS)


EMITTERS = {"publish", "emit", "append_events"}
WRITES = {"insert", "update", "delete"}


def _is_events_table(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "events"
        and isinstance(node.value, ast.Name)
        and node.value.id in {"t", "tables"}
    )


def emitting_calls(source: str) -> list[str]:
    """Calls that emit or publish, or that write the events table
    (`t.events.insert()`, `sa.delete(t.events)`, ...), in `source`.
    Reading the log is allowed anywhere."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in EMITTERS:
            found.append(f"line {node.lineno}: .{func.attr}()")
        if isinstance(func, ast.Name) and func.id in EMITTERS:
            found.append(f"line {node.lineno}: {func.id}()")
        if isinstance(func, ast.Attribute) and func.attr in WRITES and _is_events_table(func.value):
            found.append(f"line {node.lineno}: events.{func.attr}()")
        if (
            isinstance(func, ast.Attribute)
            and func.attr in WRITES
            and node.args
            and _is_events_table(node.args[0])
        ):
            found.append(f"line {node.lineno}: {func.attr}(events)")
    return found


def test_only_actions_emit_publish_or_write_events() -> None:
    offenders = {
        str(p.relative_to(ROOT)): hits
        for p in _python_files()
        if not _allowed(p) and (hits := emitting_calls(p.read_text()))
    }
    assert offenders == {}


def test_the_emit_detector_catches_each_form() -> None:
    # Without this, a detector that finds nothing would pass the test above.
    source = (
        "await ctx.emit(e)\nawait bus.publish(t, m)\nawait publish(bus, es)\n"
        "await append_events(c)\nawait conn.execute(t.events.insert())\n"
        "await conn.execute(sa.delete(tables.events))\n"
    )
    assert len(emitting_calls(source)) == 6
    reads = "await conn.execute(sa.select(t.events.c.id).where(t.events.c.id > 1))\n"
    assert emitting_calls(reads) == []


def test_every_event_is_documented_and_registered() -> None:
    def subclasses(cls: type[Event]) -> set[type[Event]]:
        out = set(cls.__subclasses__())
        return out | {s for c in list(out) for s in subclasses(c)}

    for cls in subclasses(Event):
        assert cls.type, cls
        assert CATALOGUE[cls.type] is cls
        assert cls.__doc__ and len(cls.__doc__.strip()) > 20, f"{cls.type} is undocumented"
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        noun, _, verb = cls.type.partition(".")
        assert noun and verb and cls.type == cls.type.lower()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in SETTINGS if f"`{name}`" not in readme]
    assert missing == []


def test_openapi_document_matches_the_routes() -> None:
    doc = openapi_document(ENDPOINTS, API_PREFIX, API_VERSION)
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    served = set()
    for route in api_routes():
        path = getattr(route, "path", "")
        if path.startswith(API_PREFIX) and not path.endswith("/openapi.json"):
            served |= {(m, path) for m in (getattr(route, "methods", None) or ()) if m != "HEAD"}
    assert documented == served
    op_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids)), "operationIds must be unique"
    for ops in doc["paths"].values():
        for op in ops.values():
            assert op["summary"]


# Features the product does not have yet. The README's opening says what
# Threadline does today; these may appear there only in its "Planned"
# paragraph. Move a feature out of this list when it lands.
NOT_BUILT_YET = ["Slack", "social", "SLA", "out-of-office", "metrics", "survey", "webhooks"]


def test_the_readme_opening_promises_only_what_works() -> None:
    readme = (ROOT / "README.md").read_text()
    opening = readme[: readme.index("```")]
    today, _, planned = opening.partition("Planned, not built yet:")
    assert planned, "the opening names what is planned in its own paragraph"
    assert [f for f in NOT_BUILT_YET if f.lower() in today.lower()] == []
    assert [f for f in NOT_BUILT_YET if f.lower() not in planned.lower()] == []


def test_openapi_query_arrays_are_read_as_documented() -> None:
    """Every array query parameter says how it travels (style/explode), and
    the query parser reads the values sent that way back, all of them."""
    doc = openapi_document(ENDPOINTS, API_PREFIX, API_VERSION)
    arrays = 0
    for ep in ENDPOINTS:
        op = doc["paths"][API_PREFIX + ep.path][ep.method.lower()]
        for param in op["parameters"]:
            if param["in"] != "query" or param["schema"]["type"] != "array":
                continue
            assert ep.query is not None
            assert {"style", "explode"} <= param.keys(), f"{ep.path} {param['name']}"
            items = param["schema"]["items"]
            values = [str(v) for v in items.get("enum", [1, 2])[:2]]
            assert param["style"] == "form", f"{ep.path} {param['name']}: {param['style']}"
            name = param["name"]
            pairs = [(name, v) for v in values] if param["explode"] else [(name, ",".join(values))]
            sent = QueryParams(urlencode(pairs))
            parsed = ep.query.parse_query(sent.multi_items())
            assert [str(v) for v in parsed[name]] == values, f"{ep.path} {name}"
            arrays += 1
    assert arrays
