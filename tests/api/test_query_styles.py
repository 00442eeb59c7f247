"""The OpenAPI document and the server read array query parameters the same
way: each one, sent as the document's style/explode says (what a
generated client does), filters by every value given — the same answer as
the comma-separated form the UI sends, and not the answer for its last
value alone (which is what keeping one value per name gave)."""

from __future__ import annotations

from typing import Any

import httpx

from server.actions.contacts import do_create_contact
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_status, do_create_conversation
from server.domain.values import ConversationStatus
from server.runtime import Runtime
from tests.support import Workspace

API = "/api/v1"


def documented_form(param: dict[str, Any], values: list[str]) -> tuple[tuple[str, str], ...]:
    """The query pairs for `values` as OpenAPI 3.0 serializes a query array
    (a tuple: httpx takes a list only of its own wider pair type)."""
    style, explode = param.get("style", "form"), param.get("explode", True)
    assert style == "form", f"{param['name']}: style {style} is not handled here"
    if explode:
        return tuple((param["name"], v) for v in values)
    return ((param["name"], ",".join(values)),)


async def test_array_query_parameters_filter_as_documented(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    # Data each sample below tells apart: the seeded conversation is open,
    # this one pending.
    contact = await perform(runtime, ws.system, do_create_contact, name="Pending person")
    pending = await perform(
        runtime, ws.system, do_create_conversation, inbox_id=ws.inbox_id, contact_id=contact
    )
    await perform(
        runtime,
        ws.system,
        do_change_conversation_status,
        conversation_id=pending,
        status=ConversationStatus.PENDING,
    )
    doc = (await admin_client.get(f"{API}/openapi.json")).json()
    checked = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op["parameters"]:
                if param["in"] != "query" or param["schema"]["type"] != "array":
                    continue
                assert "{" not in path, f"{path}: give its path ids here"
                assert method == "get", f"{method} {path}: only GET filters are sampled"
                # Two values the data above tells apart: the first two of the enum.
                a, b = param["schema"]["items"]["enum"][:2]
                target = path
                both = await admin_client.get(target, params=documented_form(param, [a, b]))
                comma = await admin_client.get(target, params={param["name"]: f"{a},{b}"})
                last = await admin_client.get(target, params={param["name"]: b})
                where = f"{path} {param['name']}"
                assert both.status_code == comma.status_code == last.status_code == 200, where
                assert both.json() == comma.json(), where
                assert both.json() != last.json(), f"{where}: only the last value was used"
                checked.append(where)
    assert "/api/v1/conversations status" in checked, checked


async def test_repeated_and_comma_forms_mix(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    res = await admin_client.get(
        f"{API}/conversations", params=[("status", "open,pending"), ("status", "resolved")]
    )
    assert res.status_code == 200
    assert [c["id"] for c in res.json()["items"]] == [ws.conversation_id]
    # The item limit counts every value, however they were sent.
    res = await admin_client.get(
        f"{API}/conversations",
        params=[("status", s) for s in ("open", "pending", "snoozed", "resolved", "open")],
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "status"
    res = await admin_client.get(
        f"{API}/conversations", params=[("status", "open"), ("status", "x")]
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "status[1]"
