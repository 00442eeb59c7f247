"""The `Idempotency-Key` header on creates, for the endpoint wrapper
(server.http.api): which request a key names, the answer stored for it
and the replay of that answer. The rules are in server.actions.idempotency.

An endpoint declares `idempotency="stored"` to get this (every agent
create does; a test walks them), or `"own"` when its action already dedupes
by the key itself (a message's key is UNIQUE in its conversation, a macro
run derives its replies' keys from it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.actions.context import perform
from server.actions.idempotency import HEADER, KEEP_FOR, Claim, Replayed, do_record_answer
from server.domain.actors import Actor
from server.domain.json_types import JsonValue
from server.runtime import Runtime
from server.wire.schema import Str

log = logging.getLogger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = Str(max_length=200, min_length=1)


def header_key(request: Request) -> str | None:
    """The request's key (1 to 200 characters, or a 422 naming the header),
    None without one: for an `"own"` endpoint to hand to its action."""
    header = request.headers.get(HEADER)
    return None if header is None else _KEY.parse(header, HEADER)


def request_claim(
    route: str,
    actor: Actor,
    header: str | None,
    parts: Mapping[str, object],
) -> Claim | None:
    """The claim for a request to `route` carrying `header` (None without
    one). `parts` (path ids, query, body) are what a repeat must match; a
    file body is added when it is read (`Call.read_raw`)."""
    if header is None or actor.agent_id is None:
        return None
    claim = Claim(actor.agent_id, route, _KEY.parse(header, HEADER))
    claim.add(json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode())
    return claim


async def record(
    runtime: Runtime,
    actor: Actor,
    claim: Claim,
    result: JsonValue | Response,
    *,
    status: int,
    shown_once: tuple[str, ...],
) -> JsonValue | Response:
    """Store what the claimed create answered, for repeats; `shown_once`
    fields are stored as null. A failure here is logged, not raised: the
    object exists, and a repeat is told the first request is in progress
    rather than creating another."""
    if claim.row_id is None:
        return result
    if isinstance(result, Response):
        if not isinstance(result, JSONResponse):
            return result
        status = result.status_code
        answer: JsonValue = json.loads(bytes(result.body))
    else:
        answer = result
    if isinstance(answer, dict):
        answer = {k: (None if k in shown_once else v) for k, v in answer.items()}
    try:
        await perform(
            runtime, actor, do_record_answer, row_id=claim.row_id, status=status, response=answer
        )
    except Exception:
        log.exception("could not store the answer for an %s on %s", HEADER, claim.route)
    return result


def replay(exc: Replayed) -> JSONResponse:
    return JSONResponse(exc.response, status_code=exc.status, headers={REPLAYED_HEADER: "true"})


def openapi_parameter(mode: str) -> dict[str, JsonValue]:
    if mode == "stored":
        description = (
            f"Makes the create safe to retry: a repeat with the same key (yours, on this"
            f" operation, within {KEEP_FOR.total_seconds() / 3600:.0f} hours) creates nothing"
            f" and answers the first response again, with `{REPLAYED_HEADER}: true`; values"
            " shown only once (a token, a secret) come back null. The same key with a"
            " different request, or while the first is still running, is a 409."
        )
    else:
        description = (
            "Makes the request safe to retry: a repeat with the same key answers the first"
            " result and writes nothing; the same key with a different request is a 409."
        )
    return {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": description,
        "schema": _KEY.openapi(),
    }
