"""The endpoint wrapper: every REST route is an `Endpoint` declared in a
route table, and this module turns it into a Starlette route that
authenticates, validates path/query/body, calls the handler and maps
errors to JSON. The OpenAPI document is generated from the same table.

Most bodies are JSON objects, parsed before the handler runs. A file
upload declares `raw_body` instead: the wrapper leaves the stream alone
and the handler reads it with `Call.read_raw` once it has checked who is
calling, so a caller who may not upload never gets megabytes buffered.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeAlias, TypedDict, TypeVar, Unpack, overload

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.actions.idempotency import HEADER as IDEMPOTENCY_HEADER
from server.actions.idempotency import Replayed, claiming, current_claim
from server.auth.callers import authenticate
from server.domain.actors import Actor
from server.domain.errors import DomainError, InvalidInput, Unauthenticated
from server.domain.integers import parse_int
from server.domain.json_types import JsonObject, JsonValue
from server.http import idempotency
from server.runtime import Runtime
from server.wire.errors import HttpError, error_response
from server.wire.records import RecordSchema, schema_of, wire_form
from server.wire.schema import QUERY_ARRAY_NOTE, QUERY_ARRAY_STYLE, Id, List

log = logging.getLogger(__name__)

Auth = Literal["public", "agent"]
# "stored": the wrapper honours Idempotency-Key (server.http.idempotency);
# "own": the action dedupes by the key itself. Every agent create has one.
Idempotency = Literal["stored", "own"]

B = TypeVar("B")
Q = TypeVar("Q")
B_co = TypeVar("B_co", covariant=True)
Q_co = TypeVar("Q_co", covariant=True)


@dataclasses.dataclass(frozen=True)
class Call(Generic[B_co, Q_co]):
    """What a handler gets: the parsed, validated request. `body` and
    `query` are the endpoint's records (server.wire.records), None for an
    endpoint that declares none. A helper that reads neither takes a
    `Call[object, object]`."""

    request: Request
    runtime: Runtime
    actor_or_none: Actor | None
    path: dict[str, int]
    query: Q_co
    body: B_co
    # The endpoint's text path params (Endpoint.text_params).
    path_text: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def actor(self) -> Actor:
        if self.actor_or_none is None:
            raise Unauthenticated("log in or send an API token")
        return self.actor_or_none

    async def read_raw(self, limit: int) -> bytes:
        """The body of a `raw_body` endpoint: at most `limit` bytes (413
        beyond, without reading the rest) and not empty (400); the error
        names the field `body`."""
        raw = await _read_capped(self.request, limit)
        if not raw:
            raise HttpError(400, "empty_body", "the body is empty: send the file", field="body")
        claim = current_claim()
        if claim is not None:
            # A repeat with the key must send the same file.
            claim.add(raw)
        return raw


# A JSON answer (status: the endpoint's), or a response of its own.
Answer: TypeAlias = JsonValue | Response
Handler: TypeAlias = Callable[[Call[B, Q]], Awaitable[Answer]]


class Options(TypedDict, total=False):
    """The rest of an endpoint's declaration (see Endpoint's fields)."""

    auth: Auth
    status: int
    response: str
    raw_body: str
    produces: str
    idempotency: Idempotency
    shown_once: tuple[str, ...]
    text_params: tuple[str, ...]


@dataclasses.dataclass(frozen=True, init=False)
class Endpoint:
    """One route. Its constructor takes the handler with the record classes
    of its body and query (`body=NewTeam`); mypy checks they are the ones
    the handler's `Call[...]` reads, None for none."""

    method: str
    path: str  # relative to /api/v1, with {name} params (object ids unless text_params)
    # The Call's records are checked against the handler where it is
    # declared (the overloads below), so stored, its types are erased.
    handler: Handler[Any, Any]
    summary: str
    tag: str
    auth: Auth = "agent"
    body: RecordSchema[object] | None = None
    query: RecordSchema[object] | None = None
    status: int = 200
    response: str = "object"  # a short description for the document
    # Set (to a description of the bytes) for an endpoint whose body is a
    # file rather than JSON; exclusive with `body`.
    raw_body: str | None = None
    # The media type of a successful answer that is not JSON (a download).
    produces: str = "application/json"
    idempotency: Idempotency | None = None
    # Answer fields shown only once (a new token): a replay shows null.
    shown_once: tuple[str, ...] = ()
    # Path params that are short text (a promo code a shop's system has
    # at hand), not ids: `[A-Za-z0-9_-]`, at most TEXT_PARAM_LENGTH.
    text_params: tuple[str, ...] = ()

    @overload
    def __init__(
        self,
        method: str,
        path: str,
        handler: Handler[None, None],
        summary: str,
        tag: str,
        *,
        body: None = None,
        query: None = None,
        **options: Unpack[Options],
    ) -> None: ...
    @overload
    def __init__(
        self,
        method: str,
        path: str,
        handler: Handler[B, None],
        summary: str,
        tag: str,
        *,
        body: type[B],
        query: None = None,
        **options: Unpack[Options],
    ) -> None: ...
    @overload
    def __init__(
        self,
        method: str,
        path: str,
        handler: Handler[None, Q],
        summary: str,
        tag: str,
        *,
        body: None = None,
        query: type[Q],
        **options: Unpack[Options],
    ) -> None: ...
    @overload
    def __init__(
        self,
        method: str,
        path: str,
        handler: Handler[B, Q],
        summary: str,
        tag: str,
        *,
        body: type[B],
        query: type[Q],
        **options: Unpack[Options],
    ) -> None: ...
    def __init__(
        self,
        method: str,
        path: str,
        handler: Handler[Any, Any],
        summary: str,
        tag: str,
        *,
        body: type | None = None,
        query: type | None = None,
        **options: Unpack[Options],
    ) -> None:
        if options.get("raw_body") is not None and body is not None:
            raise ValueError(f"{method} {path}: body and raw_body are exclusive")
        declared: dict[str, object] = {
            "method": method,
            "path": path,
            "handler": handler,
            "summary": summary,
            "tag": tag,
            "body": None if body is None else schema_of(body),
            "query": None if query is None else schema_of(query),
            **options,
        }
        for name, value in declared.items():
            # Frozen: set once, here.
            object.__setattr__(self, name, value)

    @property
    def path_params(self) -> list[str]:
        """The path's object ids."""
        return [name for name in self._params() if name not in self.text_params]

    def _params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


TEXT_PARAM_LENGTH = 64
_TEXT_PARAM = re.compile(rf"[A-Za-z0-9_-]{{1,{TEXT_PARAM_LENGTH}}}")
TEXT_PARAM_SCHEMA: JsonValue = {
    "type": "string",
    "pattern": _TEXT_PARAM.pattern,
    "maxLength": TEXT_PARAM_LENGTH,
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _read_capped(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes
    (by its declared length, or while streaming when that lied)."""
    try:
        declared = parse_int(request.headers.get("content-length", ""), "content-length")
    except InvalidInput:
        # Absent or malformed (the HTTP server refuses a malformed one
        # before we run): the count while streaming below still holds.
        declared = 0
    if declared > limit:
        raise HttpError(413, "too_large", f"body larger than {limit} bytes", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "too_large", f"body larger than {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_json(request: Request, runtime: Runtime) -> Any:
    """The body as JSON (untrusted: Any until parsed), {} when empty."""
    raw = await _read_capped(request, runtime.settings.max_body_bytes)
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HttpError(415, "unsupported_media_type", "send application/json", field="body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "bad_encoding", "body is not valid UTF-8", field="body") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise HttpError(400, "bad_json", "body is not valid JSON", field="body") from None


def _path_text(endpoint: Endpoint, request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in endpoint.text_params:
        raw = str(request.path_params.get(name, ""))
        if not _TEXT_PARAM.fullmatch(raw):
            # Like a malformed id: it names nothing that exists.
            raise HttpError(404, "not_found", f"{name} not found", field=name)
        out[name] = raw
    return out


def _path_ids(endpoint: Endpoint, request: Request) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in endpoint.path_params:
        raw = str(request.path_params.get(name, ""))
        try:
            out[name] = Id.parse_text(raw, name)
        except DomainError:
            # A malformed id names nothing that exists.
            raise HttpError(404, "not_found", f"{name} not found", field=name) from None
    return out


def to_route(endpoint: Endpoint, prefix: str) -> Route:
    async def asgi_handler(request: Request) -> Response:
        runtime = _runtime(request)
        try:
            path = _path_ids(endpoint, request)
            path_text = _path_text(endpoint, request)
            # Public endpoints (login) ignore credentials: a stale cookie
            # must not stand in the way of logging in again.
            actor = None
            if endpoint.auth == "agent":
                actor = await authenticate(request, runtime, method=endpoint.method)
                if actor is None:
                    raise Unauthenticated("log in or send an API token")
            query_fields = (
                endpoint.query.parse_query(request.query_params.multi_items())
                if endpoint.query is not None
                else {}
            )
            if endpoint.query is None and request.query_params:
                key = next(iter(request.query_params))
                raise HttpError(422, "invalid", f"{key}: unknown query parameter", field=key[:100])
            body_fields = (
                endpoint.body.parse(await _read_json(request, runtime))
                if endpoint.body is not None
                else {}
            )
            call = Call(
                request,
                runtime,
                actor,
                path,
                query=None if endpoint.query is None else endpoint.query.build(query_fields),
                body=None if endpoint.body is None else endpoint.body.build(body_fields),
                path_text=path_text,
            )
            claim = None
            if endpoint.idempotency == "stored" and actor is not None:
                # What a repeat must match: the fields as sent (parsed), not
                # the records' defaults.
                claim = idempotency.request_claim(
                    f"{endpoint.method} {endpoint.path}",
                    actor,
                    request.headers.get(IDEMPOTENCY_HEADER),
                    {
                        "path": path,
                        "query": wire_form(query_fields),
                        "body": wire_form(body_fields),
                    },
                )
            if claim is None:
                result = await endpoint.handler(call)
            else:
                assert actor is not None
                with claiming(claim):
                    result = await endpoint.handler(call)
                result = await idempotency.record(
                    runtime,
                    actor,
                    claim,
                    result,
                    status=endpoint.status,
                    shown_once=endpoint.shown_once,
                )
        except Replayed as exc:
            return idempotency.replay(exc)
        except DomainError as exc:
            return error_response(exc)
        except ClientDisconnect:
            # The caller went away before its body arrived (a closed tab, a
            # page that navigated): nothing was written and nobody is left
            # to answer. Not a server error.
            log.info(
                "%s %s: client disconnected before its body arrived",
                endpoint.method,
                request.url.path,
            )
            return Response(status_code=400)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, status_code=endpoint.status)

    asgi_handler.__name__ = endpoint.handler.__name__
    return Route(prefix + endpoint.path, asgi_handler, methods=[endpoint.method])


# -- the OpenAPI document ---------------------------------------------------

_ERROR_SCHEMA: JsonObject = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True},
            },
        }
    },
}


def _schema_of(media_type: str) -> JsonObject:
    if media_type == "application/json":
        return {"type": "object"}
    return {"type": "string", "format": "binary"}


def openapi_document(endpoints: list[Endpoint], prefix: str, version: str) -> dict[str, Any]:
    """The document, as a tree its readers walk by key (hence `Any` at the
    top: what lies under each key is for them to know)."""
    paths: dict[str, dict[str, JsonValue]] = {}
    for ep in endpoints:
        parameters: list[JsonValue] = [
            {"name": p, "in": "path", "required": True, "schema": Id.openapi()}
            for p in ep.path_params
        ]
        parameters += [
            {"name": p, "in": "path", "required": True, "schema": TEXT_PARAM_SCHEMA}
            for p in ep.text_params
        ]
        op: dict[str, JsonValue] = {
            "operationId": ep.handler.__name__,
            "summary": ep.summary,
            "tags": [ep.tag],
            "parameters": parameters,
            "responses": {
                str(ep.status): {
                    "description": ep.response,
                    "content": {ep.produces: {"schema": _schema_of(ep.produces)}},
                },
                "4XX": {
                    "description": "error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if ep.auth == "agent":
            op["security"] = [{"session": []}, {"bearer": []}]
        if ep.query is not None:
            for name, field in ep.query.fields.items():
                param: dict[str, JsonValue] = {
                    "name": name,
                    "in": "query",
                    "required": name in ep.query.required,
                    "schema": field.openapi(),
                }
                if isinstance(field, List):
                    # Said explicitly, as Obj.parse_query reads it.
                    param.update(QUERY_ARRAY_STYLE, description=QUERY_ARRAY_NOTE.format(name))
                parameters.append(param)
        if ep.idempotency is not None:
            parameters.append(idempotency.openapi_parameter(ep.idempotency))
        if ep.body is not None:
            op["requestBody"] = {
                "required": bool(ep.body.required),
                "content": {"application/json": {"schema": ep.body.openapi()}},
            }
        if ep.raw_body is not None:
            op["requestBody"] = {
                "required": True,
                "description": ep.raw_body,
                "content": {"*/*": {"schema": _schema_of("*/*")}},
            }
        paths.setdefault(prefix + ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Threadline API", "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR_SCHEMA},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "tl_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
