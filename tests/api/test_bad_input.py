"""PROTOCOLS.md P8, generated from the route table: every endpoint answers
malformed input (wrong types, NUL bytes, huge strings, invalid UTF-8,
unknown fields, bad query parameters) with a 4xx JSON error naming the
field — never a 500, never a partial write."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from starlette.types import Message, Scope

from server.actions.canned_responses import do_create_canned_response
from server.actions.context import perform
from server.actions.macros import do_create_macro
from server.actions.promo_codes import do_create_promo_pool
from server.actions.routing_rules import do_create_routing_rule
from server.actions.saved_filters import do_create_saved_filter
from server.actions.segments import do_create_segment
from server.actions.teams import do_create_team
from server.actions.visitors import do_start_visitor_session
from server.app import create_app
from server.domain.macros import MacroScope
from server.domain.values import CannedScope
from server.http.api import Endpoint
from server.http.assignment import Setting
from server.http.routes import API_PREFIX, ENDPOINTS
from server.http.routing_rules import Checked
from server.http.segments import SegmentFilter
from server.runtime import Runtime
from server.storage import tables as t
from server.wire.records import Nested
from server.wire.schema import (
    Bool,
    DateTime,
    Duration,
    Field,
    Int,
    JsonMap,
    List,
    Nullable,
    Obj,
    Str,
)
from tests.support import BAD_INTEGERS, PASSWORD, TEXT_PARAMS, Workspace, fetch_all
from tests.touchpoints.support import cart_reminder, make_touchpoint

JSON = {"content-type": "application/json"}

# A valid body per route, so that exactly one broken field is what fails.
VALID: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/auth/login"): {"email": "admin@acme.test", "password": "x"},
    ("POST", "/auth/password"): {
        "current_password": PASSWORD,
        "new_password": "another long password",
    },
    ("POST", "/conversations"): {"inbox_id": "{inbox_id}", "contact_id": "{contact_id}"},
    ("PATCH", "/conversations/{conversation_id}"): {"priority": "high"},
    ("POST", "/conversations/{conversation_id}/messages"): {"text": "hello"},
    ("POST", "/conversations/{conversation_id}/read"): {"seq": 1},
    ("POST", "/contacts"): {"name": "New Person"},
    ("PATCH", "/contacts/{contact_id}"): {"name": "Renamed"},
    ("POST", "/contacts/{contact_id}/identities"): {"kind": "phone", "value": "+1 555 0100"},
    ("POST", "/agents"): {"email": "new@acme.test", "name": "New", "password": "a long password"},
    ("PATCH", "/agents/{agent_id}"): {"name": "Renamed"},
    ("POST", "/agents/{agent_id}/password"): {"new_password": "another long password"},
    ("POST", "/teams"): {"name": "Team X"},
    ("PATCH", "/teams/{team_id}"): {"name": "Team Y"},
    ("POST", "/inboxes"): {"name": "Inbox X", "kind": "api"},
    ("PATCH", "/inboxes/{inbox_id}"): {"name": "Inbox Y"},
    ("POST", "/tokens"): {"name": "script"},
    # Widget routes parse the body before they look at the session header,
    # so malformed input is refused by field even without a session.
    ("POST", "/widget/sessions"): {"inbox_token": "no-such-token"},
    ("POST", "/widget/messages"): {"text": "hello", "client_id": "c1"},
    ("POST", "/widget/offline"): {"email": "a@shop.test", "text": "hi", "client_id": "c9"},
    ("POST", "/widget/identify"): {"user_id": "u1", "email": "u1@shop.test"},
    ("POST", "/widget/attributes"): {"attributes": {"plan": "pro"}},
    ("POST", "/widget/events"): {"name": "order_placed", "properties": {"total": 12}},
    ("POST", "/canned_responses"): {
        "scope": "inbox",
        "inbox_id": "{inbox_id}",
        "shortcut": "fuzz",
        "title": "Fuzz",
        "body": "Hi {{contact.name}}",
    },
    ("PATCH", "/canned_responses/{canned_response_id}"): {"title": "Fuzzed"},
    ("POST", "/canned_responses/{canned_response_id}/preview"): {
        "conversation_id": "{conversation_id}"
    },
    ("POST", "/macros"): {"scope": "workspace", "name": "Fuzz", "actions": [{"type": "resolve"}]},
    ("PATCH", "/macros/{macro_id}"): {"name": "Fuzzed"},
    ("POST", "/macros/{macro_id}/run"): {"conversation_id": "{conversation_id}"},
    ("POST", "/saved_filters"): {"name": "Fuzz", "query": {"status": ["open"]}},
    ("PATCH", "/saved_filters/{saved_filter_id}"): {"name": "Fuzzed"},
    ("POST", "/segments"): {"name": "Fuzz", "filter": {"conditions": [{"label": "vip"}]}},
    ("PATCH", "/segments/{segment_id}"): {"name": "Fuzzed"},
    ("POST", "/segments/preview"): {"filter": {"conditions": []}},
    ("POST", "/routing_rules"): {"name": "Fuzz", "actions": [{"priority": "high"}]},
    ("PATCH", "/routing_rules/{rule_id}"): {"name": "Fuzzed"},
    ("POST", "/routing_rules/reorder"): {"rule_ids": []},
    ("PATCH", "/routing_rules/settings"): {"mode": "all"},
    ("PUT", "/inboxes/{inbox_id}/assignment_policy"): {"mode": "manual"},
    ("PUT", "/teams/{team_id}/assignment_policy"): {"mode": "manual"},
    ("POST", "/contacts/{contact_id}/merge"): {"other_id": "{contact_id}"},
    ("POST", "/conversations/{conversation_id}/merge"): {"source_id": "{conversation_id}"},
    ("POST", "/contacts/{contact_id}/events"): {"name": "order_placed", "properties": {"a": 1}},
    ("POST", "/contacts/{contact_id}/consents"): {
        "channel": "email",
        "topic": "marketing",
        "state": "granted",
    },
    ("POST", "/promo_pools"): {"name": "Fuzz pool", "valid_days": 30, "low_stock": 10},
    ("POST", "/promo_pools/{pool_id}/codes"): {"csv": "FUZZ-1"},
    ("POST", "/promo_codes/redeem"): {"code": "NO-SUCH-CODE"},
    ("POST", "/promo_codes/{code}/redeem"): {"contact_id": "{contact_id}"},
    ("POST", "/touchpoints"): cart_reminder(name="Fuzz"),
    ("PUT", "/touchpoints/{touchpoint_id}"): cart_reminder(name="Fuzzed"),
    ("POST", "/touchpoints/{touchpoint_id}/status"): {"status": "paused"},
    ("POST", "/touchpoints/{touchpoint_id}/preview"): {"contact_id": "{contact_id}"},
    ("POST", "/touchpoints/preview"): {"subject": "Hi", "body": "Hello {{ contact.name }}"},
    ("POST", "/touchpoint_seeds/install"): {"seed": "abandoned_cart"},
    ("POST", "/decisions/{decision_id}/settle"): {"outcome": "sent"},
    ("PATCH", "/settings/touchpoints"): {"timezone": "Europe/Berlin"},
}

# Valid required query parameters of GET routes that have some, so that
# the one broken parameter is what fails (required ones are checked first).
VALID_QUERY: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/search"): {"q": "hello"},
    ("GET", "/contacts/{contact_id}/merge_preview"): {"other_id": "1"},
}


def bad_values(field: Field) -> list[Any]:
    if isinstance(field, Nullable):
        return bad_values(field.inner)
    if isinstance(field, Str):
        return [12345, ["list"], "nul\x00byte", "x" * (field.max_length + 1), "\ud800"]
    if isinstance(field, Int):
        return ["12", "²", True, 2**70, 1.5]
    if isinstance(field, Duration):
        return [["4h"], True, 1.5, -1, "nul\x00", "x" * (field.max_length + 1)]
    if isinstance(field, Bool):
        return ["yes", 1]
    if isinstance(field, DateTime):
        return ["2031-01-01T09:00:00", "tomorrow", 20310101]
    if isinstance(field, JsonMap):
        too_deep: Any = 1
        for _ in range(field.max_depth + 2):
            too_deep = {"deep": too_deep}
        nul = {"k": {"inner": ["v\x00"]}} if field.max_depth > 1 else {"k": "v\x00"}
        return [["not", "a", "map"], too_deep, nul, {"": 1}]
    if isinstance(field, List):
        return ["not a list", [None], list(range(field.max_items + 1))]
    if isinstance(field, Obj | Nested):
        return ["not an object", {"unknown_field": 1}]
    if isinstance(field, SegmentFilter):
        return [
            "not an object",
            {"conditions": [{"label": "vip"}], "unknown_field": 1},
            {"conditions": [{"event": "x", "within": "4 hours"}]},
            {"conditions": [{"attribute": "plan", "op": "eq", "value": "v\x00"}]},
            {"match": "any", "conditions": []},
        ]
    if isinstance(field, Checked):
        # Conditions, actions and triggers of a routing rule.
        return [
            "not a list",
            [{"unknown_kind": 1}],
            [{"keywords": ["v\x00"]}, {"pattern": "(a+)+"}],
            [None],
        ]
    if isinstance(field, Setting):
        # One setting of an assignment policy: each is wrong for every one.
        return ["never", True, -1, {"unknown": 1}, "nul\x00"]
    raise AssertionError(f"no bad values for {field!r}: add them here")


def test_every_body_route_has_a_valid_sample() -> None:
    assert {(ep.method, ep.path) for ep in ENDPOINTS if ep.body is not None} == set(VALID)
    required_query = {
        (ep.method, ep.path)
        for ep in ENDPOINTS
        if ep.method == "GET" and ep.query is not None and ep.query.required
    }
    assert required_query == set(VALID_QUERY)


def fill(template: Any, ids: dict[str, int]) -> Any:
    if isinstance(template, str) and template.startswith("{") and template.endswith("}"):
        return ids[template[1:-1]]
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    return template


def url(ep: Endpoint, ids: dict[str, int]) -> str:
    path = API_PREFIX + ep.path
    for name in ep.path_params:
        path = path.replace("{" + name + "}", str(ids[name]))
    for name in ep.text_params:
        path = path.replace("{" + name + "}", TEXT_PARAMS[name])
    return path


async def counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.db.read() as conn:
        return {
            table.name: int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for table in (
                t.events,
                t.messages,
                t.contacts,
                t.conversations,
                t.agents,
                t.teams,
                t.inboxes,
                t.api_tokens,
                t.sessions,
                t.attachments,
                t.canned_responses,
                t.macros,
                t.saved_filters,
                t.contact_events,
                t.consents,
                t.promo_pools,
                t.promo_codes,
                t.segments,
                t.routing_rules,
                t.assignment_policies,
                t.touchpoints,
                t.touchpoint_steps,
                t.workspaces,
            )
        }


def assert_clean_4xx(res: httpx.Response, where: str, field: str | None = None) -> None:
    assert 400 <= res.status_code < 500, f"{where}: {res.status_code} {res.text[:300]}"
    error = res.json()["error"]
    assert error["code"] and error["message"], where
    if field is not None:
        assert error["field"] and error["field"].startswith(field), (
            f"{where}: field {error['field']!r}"
        )


async def test_malformed_bodies_are_refused_by_field_and_write_nothing(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    ids = {
        "conversation_id": ws.conversation_id,
        "contact_id": ws.contact_id,
        "inbox_id": ws.inbox_id,
        "agent_id": ws.agent_id,
        "team_id": 0,
        "token_id": 0,
    }
    ids["team_id"] = await perform(runtime, ws.admin, do_create_team, name="Fuzz team")
    ids["canned_response_id"] = await perform(
        runtime,
        ws.admin,
        do_create_canned_response,
        scope=CannedScope.WORKSPACE,
        shortcut="existing",
        title="Existing",
        body="Hello",
    )
    ids["macro_id"] = await perform(
        runtime,
        ws.admin,
        do_create_macro,
        scope=MacroScope.WORKSPACE,
        name="Existing",
        actions=[{"type": "add_label", "label": "fuzzed"}],
    )
    ids["saved_filter_id"] = await perform(
        runtime, ws.admin, do_create_saved_filter, name="Existing", query={}
    )
    ids["pool_id"] = await perform(
        runtime, ws.admin, do_create_promo_pool, name="Existing", valid_days=None, low_stock=0
    )
    ids["segment_id"] = await perform(
        runtime, ws.admin, do_create_segment, name="Existing", filter={"conditions": []}
    )
    ids["touchpoint_id"] = await make_touchpoint(runtime, ws, cart_reminder(name="Existing"))
    ids["rule_id"] = await perform(
        runtime,
        ws.admin,
        do_create_routing_rule,
        name="Existing",
        conditions=[],
        actions=[{"priority": "low"}],
    )
    # Bodies are refused before the decision is looked up: any id will do.
    ids["decision_id"] = 1
    before = await counts(runtime)
    for ep in ENDPOINTS:
        if ep.body is None:
            continue
        valid = fill(VALID[(ep.method, ep.path)], ids)
        target = url(ep, ids)
        for name, field in ep.body.fields.items():
            for bad in bad_values(field):
                # ASCII-escaped JSON, so lone surrogates travel as \\ud800.
                res = await admin_client.request(
                    ep.method, target, content=json.dumps({**valid, name: bad}), headers=JSON
                )
                assert_clean_4xx(res, f"{ep.method} {ep.path} {name}={bad!r:.40}", name)
        res = await admin_client.request(ep.method, target, json={**valid, "surprise": 1})
        assert_clean_4xx(res, f"{ep.method} {ep.path} unknown field", "surprise")
        for raw in (b'{"name": "\xff\xfe"}', b"{not json", b"[1, 2]", b'"a string"', b"\x00" * 10):
            res = await admin_client.request(
                ep.method, target, content=raw, headers={"content-type": "application/json"}
            )
            assert_clean_4xx(res, f"{ep.method} {ep.path} raw {raw[:12]!r}", "body")
        res = await admin_client.request(
            ep.method, target, content=b"{}", headers={"content-type": "text/plain"}
        )
        if ep.body.required:
            assert_clean_4xx(res, f"{ep.method} {ep.path} text/plain")
        deep = b"[" * 100_000 + b"]" * 100_000
        res = await admin_client.request(
            ep.method, target, content=deep, headers={"content-type": "application/json"}
        )
        assert_clean_4xx(res, f"{ep.method} {ep.path} deep nesting")
    after = await counts(runtime)
    assert after == before


async def test_malformed_query_parameters(ws: Workspace, admin_client: httpx.AsyncClient) -> None:
    ids = {"conversation_id": ws.conversation_id, "contact_id": ws.contact_id}
    for ep in ENDPOINTS:
        if ep.method != "GET" or ep.query is None or any(p not in ids for p in ep.path_params):
            continue
        target = url(ep, ids)
        valid = VALID_QUERY.get((ep.method, ep.path), {})
        res = await admin_client.get(target, params={"no_such_param": "1"})
        assert_clean_4xx(res, f"{ep.path} unknown param", "no_such_param")
        for name, field in ep.query.fields.items():
            for bad in ("\x00", "x" * 20_000, "-99999999999999999999999"):
                if isinstance(field, Str) and bad == "-99999999999999999999999":
                    continue
                res = await admin_client.get(target, params={**valid, name: bad})
                assert_clean_4xx(res, f"{ep.path} {name}={bad[:20]!r}", name)


def int_fields(schema: Obj) -> list[tuple[str, Int]]:
    """The query parameters read as integers, alone or as list items."""
    out: list[tuple[str, Int]] = []
    for name, field in schema.fields.items():
        inner = field.inner if isinstance(field, Nullable) else field
        inner = inner.item if isinstance(inner, List) else inner
        if isinstance(inner, Int):
            out.append((name, inner))
    return out


async def test_malformed_path_ids_name_nothing(admin_client: httpx.AsyncClient) -> None:
    """Every id in every route's path: a malformed one is a 404 naming the
    parameter (it names nothing that exists), whatever the route does."""
    swept = 0
    for ep in ENDPOINTS:
        for name in ep.path_params:
            for bad in BAD_INTEGERS:
                path = API_PREFIX + ep.path
                for other in ep.path_params:
                    value = quote(bad, safe="") if other == name else "1"
                    path = path.replace("{" + other + "}", value)
                res = await admin_client.request(ep.method, path)
                where = f"{ep.method} {ep.path} {name}={bad!r}"
                assert res.status_code == 404, f"{where}: {res.status_code} {res.text[:200]}"
                assert res.json()["error"]["field"] == name, where
                swept += 1
    assert swept


async def test_malformed_integer_query_parameters_are_refused_by_name(
    admin_client: httpx.AsyncClient,
) -> None:
    """Every integer query parameter of every route (its path ids valid in
    form: the query is refused before any id is looked up)."""
    swept = 0
    for ep in ENDPOINTS:
        if ep.query is None:
            continue
        target = url(ep, {p: 1 for p in ep.path_params})
        valid = VALID_QUERY.get((ep.method, ep.path), {})
        for name, field in int_fields(ep.query):
            for bad in [*BAD_INTEGERS, ""]:
                res = await admin_client.request(ep.method, target, params={**valid, name: bad})
                assert_clean_4xx(res, f"{ep.method} {ep.path} {name}={bad!r}", name)
                swept += 1
            # Written plainly, it is read as a number (what it names may
            # still not exist, or not fit the rest: only the parse matters).
            good = str(max(field.minimum, min(field.maximum, 1)))
            res = await admin_client.request(ep.method, target, params={**valid, name: good})
            if res.status_code >= 400:
                message = res.json()["error"]["message"]
                assert "whole number" not in message, f"{ep.path} {name}={good}: {message}"
    assert swept


async def test_scalar_query_parameters_given_twice_are_refused(
    admin_client: httpx.AsyncClient,
) -> None:
    """Not one of the two values silently winning."""
    for ep in ENDPOINTS:
        if ep.query is None:
            continue
        target = url(ep, {p: 1 for p in ep.path_params})
        valid = VALID_QUERY.get((ep.method, ep.path), {})
        for name, field in ep.query.fields.items():
            if isinstance(field, List):
                continue
            pairs = (*((k, v) for k, v in valid.items() if k != name), (name, "1"), (name, "2"))
            res = await admin_client.request(ep.method, target, params=pairs)
            assert_clean_4xx(res, f"{ep.method} {ep.path} {name} twice", name)


async def test_oversized_body_is_413(ws: Workspace, admin_client: httpx.AsyncClient) -> None:
    res = await admin_client.post(
        f"{API_PREFIX}/conversations/{ws.conversation_id}/messages",
        content=b'{"text": "' + b"a" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 413
    assert res.json()["error"]["field"] == "body"


async def test_unknown_api_path_and_method_are_json(admin_client: httpx.AsyncClient) -> None:
    res = await admin_client.get(f"{API_PREFIX}/no-such-thing")
    assert res.status_code == 404 and res.json()["error"]["code"] == "not_found"
    res = await admin_client.delete(f"{API_PREFIX}/conversations")
    assert res.status_code == 405 and res.json()["error"]["code"] == "method_not_allowed"


async def test_raw_uploads_refuse_bad_input_by_field_and_store_nothing(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    """Endpoints whose body is a file (`raw_body`): a bad or missing query
    parameter, an empty body and one over THREADLINE_MAX_UPLOAD_BYTES are
    refused by field, and neither a row nor a stored file is left."""
    session = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    headers = {"X-Widget-Session": session.token, "content-type": "image/png"}
    ids = {"inbox_id": ws.inbox_id}
    # The inbound-email endpoint takes a mail, not a named file: it has its
    # own test in tests/email/test_inbound_email.py.
    uploads = [ep for ep in ENDPOINTS if ep.raw_body is not None and ep.tag != "email"]
    assert uploads
    limit = runtime.settings.max_upload_bytes
    before = await counts(runtime)
    for ep in uploads:
        target = url(ep, ids)
        assert ep.query is not None
        for params, field in (
            ({}, "filename"),
            ({"filename": ""}, "filename"),
            ({"filename": "a\x00.png"}, "filename"),
            ({"filename": "x" * 20_000}, "filename"),
            ({"filename": "a.png", "surprise": "1"}, "surprise"),
        ):
            res = await admin_client.post(target, params=params, content=b"data", headers=headers)
            assert_clean_4xx(res, f"{ep.path} {params!r:.60}", field)
        for body, status in ((b"", 400), (b"x" * (limit + 1), 413)):
            res = await admin_client.post(
                target, params={"filename": "a.png"}, content=body, headers=headers
            )
            assert res.status_code == status, f"{ep.path}: {res.status_code} {res.text[:200]}"
            assert_clean_4xx(res, f"{ep.path} body of {len(body)} bytes", "body")
    assert await counts(runtime) == before
    blobs = runtime.settings.data_dir / "attachments"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


async def test_a_client_gone_before_its_body_arrives_is_no_server_error(
    runtime: Runtime, ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser tab closed in the middle of a POST (the ASGI server reports
    `http.disconnect` while the body is read): nothing is written, nothing
    is logged as an error."""
    app = create_app(runtime)
    body = json.dumps({"email": ws.admin_email, "password": PASSWORD}).encode()
    messages: list[Message] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{API_PREFIX}/auth/login",
        "raw_path": f"{API_PREFIX}/auth/login".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert sent[0]["status"] == 400
    sessions = await fetch_all(runtime, sa.select(t.sessions))
    assert sessions == []
