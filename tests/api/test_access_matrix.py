"""Workspaces are sealed and access is checked on every route (PROTOCOLS.md
P7). Generated from the route table: every route that takes an object id
is tried by an anonymous caller, a revoked token, an admin of another
workspace and an agent without access to the object's inbox. A route that
takes ids but is missing from MATRIX fails `test_matrix_covers_every_route`.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from server.actions.attachments import do_upload_attachment, store_file
from server.actions.canned_responses import do_create_canned_response
from server.actions.contact_merges import do_merge_contacts
from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.conversations import do_create_conversation
from server.actions.macros import do_create_macro
from server.actions.messages import do_receive_message, do_send_message
from server.actions.promo_codes import do_create_promo_pool
from server.actions.routing_rules import do_create_routing_rule
from server.actions.saved_filters import do_create_saved_filter
from server.actions.segments import do_create_segment
from server.actions.teams import do_create_team
from server.actions.tokens import do_create_api_token, do_revoke_api_token
from server.actions.visitors import do_send_visitor_message, do_start_visitor_session
from server.domain.macros import MacroScope
from server.domain.values import CannedScope, IdentityKind
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.http.api import Endpoint
from server.http.routes import API_PREFIX, ENDPOINTS
from server.queries.audit import audit_entries
from server.queries.merge_suggestions import offered_suggestions
from server.queries.reading import read
from server.runtime import Runtime
from tests.support import TEXT_PARAMS, Workspace, client, login, seed_workspace
from tests.touchpoints.support import cart_reminder, decisions_of, make_touchpoint, start


@dataclasses.dataclass(frozen=True)
class Case:
    # What an agent of the same workspace who is NOT a member of the target
    # inbox gets: 404 for objects behind the inbox, 403 for visible objects
    # it may not change, 2xx where any agent may act.
    non_member: int
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None
    # A widget route: its caller is a visitor session, not an agent
    # (checked by `test_widget_routes_are_sealed_to_the_visitor`).
    visitor: bool = False


MATRIX: dict[tuple[str, str], Case] = {
    ("GET", "/conversations/{conversation_id}"): Case(404),
    ("PATCH", "/conversations/{conversation_id}"): Case(404, {"priority": "high"}),
    ("GET", "/conversations/{conversation_id}/messages"): Case(404),
    ("POST", "/conversations/{conversation_id}/messages"): Case(404, {"text": "hi"}),
    ("POST", "/conversations/{conversation_id}/read"): Case(404, {"seq": 1}),
    ("GET", "/conversations/{conversation_id}/messages/{message_id}"): Case(404),
    ("POST", "/conversations"): Case(404, {"inbox_id": "{inbox_id}", "contact_id": "{contact_id}"}),
    ("GET", "/contacts/{contact_id}"): Case(200),
    ("PATCH", "/contacts/{contact_id}"): Case(200, {"attributes": {"plan": "pro"}}),
    ("POST", "/contacts/{contact_id}/identities"): Case(
        201, {"kind": "phone", "value": "+1 555 0100"}
    ),
    ("GET", "/contacts/{contact_id}/timeline"): Case(200),
    ("GET", "/contacts/{contact_id}/events"): Case(200),
    ("GET", "/agents/{agent_id}"): Case(200),
    ("PATCH", "/agents/{agent_id}"): Case(403, {"name": "Renamed"}),
    ("POST", "/agents/{agent_id}/password"): Case(403, {"new_password": "another long password"}),
    ("GET", "/teams/{team_id}"): Case(200),
    ("PATCH", "/teams/{team_id}"): Case(403, {"name": "Renamed team"}),
    ("DELETE", "/teams/{team_id}"): Case(403),
    ("PUT", "/teams/{team_id}/members/{agent_id}"): Case(403),
    ("DELETE", "/teams/{team_id}/members/{agent_id}"): Case(403),
    ("GET", "/inboxes/{inbox_id}"): Case(404),
    ("PATCH", "/inboxes/{inbox_id}"): Case(404, {"name": "Renamed inbox"}),
    ("PUT", "/inboxes/{inbox_id}/members/{agent_id}"): Case(404),
    ("DELETE", "/inboxes/{inbox_id}/members/{agent_id}"): Case(404),
    ("DELETE", "/tokens/{token_id}"): Case(404),
    ("POST", "/inboxes/{inbox_id}/attachments"): Case(404, query={"filename": "a.png"}),
    ("GET", "/attachments/{attachment_id}"): Case(404),
    ("GET", "/widget/attachments/{attachment_id}"): Case(404, visitor=True),
    # The target is an inbox response of the inbox the agent is not in.
    ("GET", "/canned_responses/{canned_response_id}"): Case(404),
    ("PATCH", "/canned_responses/{canned_response_id}"): Case(404, {"title": "Renamed"}),
    ("DELETE", "/canned_responses/{canned_response_id}"): Case(404),
    ("POST", "/canned_responses/{canned_response_id}/preview"): Case(
        404, {"conversation_id": "{conversation_id}"}
    ),
    # A workspace macro: every agent reads it, only admins change it, and
    # running it needs the conversation (behind the other inbox).
    ("GET", "/macros/{macro_id}"): Case(200),
    ("PATCH", "/macros/{macro_id}"): Case(403, {"name": "Renamed"}),
    ("DELETE", "/macros/{macro_id}"): Case(403),
    ("POST", "/macros/{macro_id}/run"): Case(404, {"conversation_id": "{conversation_id}"}),
    # The admin's own saved filter: nobody else's to see.
    ("PATCH", "/saved_filters/{saved_filter_id}"): Case(404, {"name": "Renamed"}),
    ("DELETE", "/saved_filters/{saved_filter_id}"): Case(404),
    # Segments are the workspace's: every agent reads, counts and previews
    # them; only admins change them.
    ("GET", "/segments/{segment_id}"): Case(200),
    ("PATCH", "/segments/{segment_id}"): Case(403, {"name": "Renamed"}),
    ("DELETE", "/segments/{segment_id}"): Case(403),
    ("GET", "/segments/{segment_id}/count"): Case(200),
    ("GET", "/segments/{segment_id}/preview"): Case(200),
    # Routing rules too: every agent reads them, only admins change them;
    # a conversation's routing record is its readers'.
    ("GET", "/routing_rules/{rule_id}"): Case(200),
    ("PATCH", "/routing_rules/{rule_id}"): Case(403, {"name": "Renamed"}),
    ("DELETE", "/routing_rules/{rule_id}"): Case(403),
    ("GET", "/conversations/{conversation_id}/routing"): Case(404),
    # Assignment policies: an inbox's are its members' to read (the target
    # inbox is not the agent's: 404 before any 403), a team's every
    # agent's; only admins change them. A conversation's assignments are
    # its readers'.
    ("GET", "/inboxes/{inbox_id}/assignment_policy"): Case(404),
    ("PUT", "/inboxes/{inbox_id}/assignment_policy"): Case(404, {"mode": "manual"}),
    ("DELETE", "/inboxes/{inbox_id}/assignment_policy"): Case(404),
    ("GET", "/teams/{team_id}/assignment_policy"): Case(200),
    ("PUT", "/teams/{team_id}/assignment_policy"): Case(403, {"mode": "manual"}),
    ("DELETE", "/teams/{team_id}/assignment_policy"): Case(403),
    ("GET", "/conversations/{conversation_id}/assignments"): Case(404),
    # Contacts are every agent's to see, but merging one (or previewing the
    # merge) takes every conversation of both: the target contact has one
    # behind the other inbox.
    ("GET", "/contacts/{contact_id}/merge_preview"): Case(
        403, query={"other_id": "{other_contact_id}"}
    ),
    ("POST", "/contacts/{contact_id}/merge"): Case(403, {"other_id": "{other_contact_id}"}),
    # The target merge is the admin's: another agent may see it, not undo it.
    ("POST", "/contact_merges/{merge_id}/undo"): Case(403),
    ("POST", "/conversations/{conversation_id}/merge"): Case(
        404, {"source_id": "{source_conversation_id}"}
    ),
    # Merge suggestions are for whoever may merge the pair: the list (of a
    # visible contact) is empty for the others, and they may not dismiss
    # one whose contact has a conversation behind the other inbox.
    ("GET", "/contacts/{contact_id}/merge_suggestions"): Case(200),
    ("POST", "/merge_suggestions/{suggestion_id}/dismiss"): Case(403),
    # Email: posting mail and reading the raw record are admins' business;
    # an original is shown to whoever may read its message.
    ("POST", "/inboxes/{inbox_id}/inbound_email"): Case(404),
    ("GET", "/inbound_mails/{mail_id}/raw"): Case(403),
    ("GET", "/messages/{message_id}/original"): Case(404),
    ("GET", "/messages/{message_id}/html"): Case(404),
    ("GET", "/conversations/{conversation_id}/email_defaults"): Case(404),
    # Touchpoints (F7). A contact's tracked events and consents are every
    # agent's, as the contact is (the shop's backend calls with any
    # agent's token).
    ("POST", "/contacts/{contact_id}/events"): Case(201, {"name": "order_placed"}),
    ("GET", "/contacts/{contact_id}/consents"): Case(200),
    ("POST", "/contacts/{contact_id}/consents"): Case(
        201, {"channel": "email", "topic": "marketing", "state": "withdrawn"}
    ),
    # Promo pools: every agent sees them, admins fill them.
    ("POST", "/promo_pools/{pool_id}/codes"): Case(403, {"generate": {"count": 1}}),
    # Touchpoints: every agent reads them and previews them for a contact
    # (contacts are visible workspace-wide); admins change and settle.
    ("GET", "/touchpoints/{touchpoint_id}"): Case(200),
    ("PUT", "/touchpoints/{touchpoint_id}"): Case(403, cart_reminder(name="Renamed")),
    ("POST", "/touchpoints/{touchpoint_id}/status"): Case(403, {"status": "paused"}),
    ("POST", "/touchpoints/{touchpoint_id}/preview"): Case(200, {"contact_id": "{contact_id}"}),
    ("POST", "/decisions/{decision_id}/settle"): Case(403, {"outcome": "sent"}),
    ("GET", "/contacts/{contact_id}/touchpoints"): Case(200),
}


# Routes that take no ids but find objects by text. Each query names the
# targets of `make_targets` by name, identity or message text: a caller
# who may not see them must not find them (checked in the tests below).
SEARCHES: dict[tuple[str, str], list[dict[str, str]]] = {
    ("GET", "/search"): [
        {"q": "Hidden Customer"},
        {"q": "hidden@acme.test"},
        {"q": "billing question"},
        {"q": "your invoice"},
    ],
}


# GET lists whose items are under another key than `items` (API.md of
# the touchpoint engine).
LIST_KEYS = {"/promo_pools": "pools", "/touchpoints": "touchpoints", "/decisions": "decisions"}
# Lists that are the same for every workspace (the product's seed templates).
SHARED_LISTS = {"/touchpoint_seeds"}


# Required body fields that end in `_id` but name no object of a workspace:
# the widget's `client_id` is an idempotency key the browser makes up (the
# widget's caller is identified by its session header, not by object ids).
NOT_OBJECT_IDS = {"client_id"}


def takes_ids(ep: Endpoint) -> bool:
    return bool(ep.path_params) or (
        ep.body is not None
        and any(name.endswith("_id") and name not in NOT_OBJECT_IDS for name in ep.body.required)
    )


def test_matrix_covers_every_route() -> None:
    with_ids = {(ep.method, ep.path) for ep in ENDPOINTS if takes_ids(ep)}
    assert set(MATRIX) == with_ids
    searches = {
        (ep.method, ep.path)
        for ep in ENDPOINTS
        if ep.query is not None and "q" in ep.query.required
    }
    assert set(SEARCHES) == searches


@dataclasses.dataclass
class Targets:
    """Objects in workspace A that A's plain agent can't reach through
    inbox membership (they live in `other_inbox`)."""

    ids: dict[str, int]
    revoked_token: str


async def make_targets(runtime: Runtime, ws: Workspace) -> Targets:
    hidden = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "hidden@acme.test"),
        name="Hidden Customer",
        text="billing question",
    )
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    file = await store_file(runtime.blobs, b"%PDF-1.7", filename="bill.pdf", declared_type=None)
    attachment = await perform(
        runtime, ws.admin, do_upload_attachment, file=file, inbox_id=ws.other_inbox_id
    )
    await perform(
        runtime,
        ws.admin,
        do_send_message,
        conversation_id=hidden.conversation_id,
        text="your invoice",
        attachment_ids=[attachment.id],
    )
    canned_response_id = await perform(
        runtime,
        ws.admin,
        do_create_canned_response,
        scope=CannedScope.INBOX,
        inbox_id=ws.other_inbox_id,
        shortcut="invoice",
        title="Invoice",
        body="Hi {{contact.first_name}}, your invoice is attached.",
    )
    source_conversation_id = await perform(
        runtime,
        ws.admin,
        do_create_conversation,
        inbox_id=ws.other_inbox_id,
        contact_id=hidden.contact_id,
    )
    twins = [
        await perform(runtime, ws.admin, do_create_contact, name=name)
        for name in ("Twin A", "Twin B", "Other Twin")
    ]
    merge_id = await perform(
        runtime, ws.admin, do_merge_contacts, contact_id=twins[0], other_id=twins[1]
    )
    [newest_entry, *_] = await read(runtime, audit_entries, ws.admin)
    mail = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=b"From: hidden@acme.test\r\nSubject: billing\r\n\r\nbilling question\r\n",
        source="http",
    )
    # A contact that typed an address in, and mail from that address: a
    # merge suggestion (the new contact's conversation is in other_inbox).
    claimer = await perform(
        runtime, ws.admin, do_create_contact, name="Claimer", attributes={"email": "c@acme.test"}
    )
    await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=b"From: c@acme.test\r\nSubject: a claim\r\n\r\nit is me\r\n",
        source="http",
    )
    [suggestion] = await read(runtime, offered_suggestions, ws.admin, claimer)
    macro_id = await perform(
        runtime,
        ws.admin,
        do_create_macro,
        scope=MacroScope.WORKSPACE,
        name="Escalate",
        actions=[{"type": "set_priority", "priority": "urgent"}],
    )
    saved_filter_id = await perform(
        runtime, ws.admin, do_create_saved_filter, name="Billing", query={"mine": True}
    )
    pool_id = await perform(
        runtime, ws.admin, do_create_promo_pool, name="Birthday", valid_days=30, low_stock=5
    )
    segment_id = await perform(
        runtime,
        ws.admin,
        do_create_segment,
        name="Hidden customers",
        filter={"conditions": [{"identity": "email"}]},
    )
    rule_id = await perform(
        runtime,
        ws.admin,
        do_create_routing_rule,
        name="Hidden rule",
        conditions=[],
        actions=[{"priority": "low"}],
    )
    touchpoint_id = await make_touchpoint(runtime, ws, cart_reminder())
    await start(runtime, ws, touchpoint_id, {"cart_id": "c-1"}, contact_id=hidden.contact_id)
    [decision] = await decisions_of(runtime, touchpoint_id)
    admin_token = await perform(runtime, ws.admin, do_create_api_token, name="admin script")
    agent_token = await perform(runtime, ws.agent, do_create_api_token, name="old script")
    await perform(runtime, ws.agent, do_revoke_api_token, token_id=agent_token.token_id)
    return Targets(
        ids={
            "conversation_id": hidden.conversation_id,
            "message_id": hidden.message_id,
            "contact_id": hidden.contact_id,
            "inbox_id": ws.other_inbox_id,
            "agent_id": ws.admin_id,
            "team_id": team_id,
            "token_id": admin_token.token_id,
            "attachment_id": attachment.id,
            "canned_response_id": canned_response_id,
            "other_contact_id": twins[2],
            "merge_id": merge_id,
            "source_conversation_id": source_conversation_id,
            "audit_entry_id": newest_entry.id,
            "macro_id": macro_id,
            "saved_filter_id": saved_filter_id,
            "segment_id": segment_id,
            "rule_id": rule_id,
            "mail_id": mail.inbound_mail_id,
            "inbound_mail_id": mail.inbound_mail_id,
            "suggestion_id": suggestion.suggestion.id,
            "pool_id": pool_id,
            "touchpoint_id": touchpoint_id,
            "decision_id": decision.id,
        },
        revoked_token=agent_token.token,
    )


def request_for(
    ep: Endpoint, case: Case, ids: dict[str, int]
) -> tuple[str, str, dict[str, Any] | None]:
    path = API_PREFIX + ep.path
    for name in ep.path_params:
        path = path.replace("{" + name + "}", str(ids[name]))
    for name in ep.text_params:
        path = path.replace("{" + name + "}", TEXT_PARAMS[name])
    if case.query is not None:
        query = {k: str(ids[v[1:-1]]) if v.startswith("{") else v for k, v in case.query.items()}
        path += "?" + urlencode(query)
    body = None
    if case.body is not None:
        body = {
            k: ids[v[1:-1]] if isinstance(v, str) and v.startswith("{") else v
            for k, v in case.body.items()
        }
    return ep.method, path, body


async def call(
    c: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> httpx.Response:
    return await c.request(method, path, json=body)


ROUTES = [
    ep
    for ep in ENDPOINTS
    if (ep.method, ep.path) in MATRIX and not MATRIX[(ep.method, ep.path)].visitor
]
VISITOR_ROUTES = [
    ep
    for ep in ENDPOINTS
    if (ep.method, ep.path) in MATRIX and MATRIX[(ep.method, ep.path)].visitor
]


@pytest.fixture
async def world(runtime: Runtime, ws: Workspace) -> tuple[Workspace, Targets, Workspace]:
    targets = await make_targets(runtime, ws)
    other = await seed_workspace(runtime, "Other Co")
    return ws, targets, other


async def test_anonymous_and_revoked_callers_get_401_everywhere(
    runtime: Runtime, world: tuple[Workspace, Targets, Workspace]
) -> None:
    _ws, targets, _other = world
    async with client(runtime) as anon, client(runtime) as revoked:
        revoked.headers["authorization"] = f"Bearer {targets.revoked_token}"
        for ep in ENDPOINTS:
            if ep.auth == "public":
                continue
            case = MATRIX.get((ep.method, ep.path), Case(200, {}))
            method, path, body = request_for(ep, case, targets.ids)
            for who, c in (("anonymous", anon), ("revoked token", revoked)):
                res = await call(c, method, path, body)
                assert res.status_code == 401, (
                    f"{who} {method} {path}: {res.status_code} {res.text}"
                )
                assert res.json()["error"]["code"] == "unauthenticated"


async def test_another_workspace_sees_nothing(
    runtime: Runtime, world: tuple[Workspace, Targets, Workspace]
) -> None:
    _ws, targets, other = world
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)  # an *admin*, of the other workspace
        for ep in ROUTES:
            method, path, body = request_for(ep, MATRIX[(ep.method, ep.path)], targets.ids)
            res = await call(outsider, method, path, body)
            assert res.status_code == 404, f"{method} {path}: {res.status_code} {res.text}"
        # Lists are sealed too: nothing of workspace A shows up.
        for ep in ENDPOINTS:
            if (
                ep.method == "GET"
                and not ep.path_params
                and ep.path.count("/") == 1
                and ep.auth == "agent"
                and (ep.method, ep.path) not in SEARCHES
                and ep.path not in SHARED_LISTS
            ):
                res = await outsider.get(API_PREFIX + ep.path)
                assert res.status_code == 200, ep.path
                # The touchpoint engine's lists are named by what they hold.
                listed = LIST_KEYS.get(ep.path, "items")
                ids = {item["id"] for item in res.json()[listed]}
                key = {
                    "/conversations": "conversation_id",
                    "/contacts": "contact_id",
                    "/agents": "agent_id",
                    "/teams": "team_id",
                    "/inboxes": "inbox_id",
                    "/tokens": "token_id",
                    "/canned_responses": "canned_response_id",
                    "/audit_log": "audit_entry_id",
                    "/macros": "macro_id",
                    "/saved_filters": "saved_filter_id",
                    "/segments": "segment_id",
                    "/routing_rules": "rule_id",
                    "/inbound_mails": "inbound_mail_id",
                    "/promo_pools": "pool_id",
                    "/touchpoints": "touchpoint_id",
                    "/decisions": "decision_id",
                }[ep.path]
                assert targets.ids[key] not in ids, ep.path
        # So is search: the targets' names and texts find nothing.
        for (method, path), queries in SEARCHES.items():
            for params in queries:
                res = await outsider.request(method, API_PREFIX + path, params=params)
                assert res.status_code == 200, f"{path} {params}: {res.text}"
                assert res.json() == {"contacts": [], "conversations": []}, params


async def test_agent_without_inbox_access(
    runtime: Runtime, world: tuple[Workspace, Targets, Workspace]
) -> None:
    ws, targets, _other = world
    async with client(runtime) as agent:
        await login(agent, ws.agent_email)
        for ep in ROUTES:
            case = MATRIX[(ep.method, ep.path)]
            method, path, body = request_for(ep, case, targets.ids)
            res = await call(agent, method, path, body)
            assert res.status_code == case.non_member, (
                f"{method} {path}: {res.status_code} {res.text}"
            )
        # The contact is visible, but its timeline hides the inbox the agent
        # is not a member of.
        timeline = await agent.get(f"{API_PREFIX}/contacts/{targets.ids['contact_id']}/timeline")
        assert timeline.json()["items"] == []
        listed = await agent.get(f"{API_PREFIX}/conversations")
        assert targets.ids["conversation_id"] not in {c["id"] for c in listed.json()["items"]}
        # Search never shows the conversation nor counts it; the contact is
        # found by its name (visible workspace-wide, as GET /contacts lists it).
        for params in SEARCHES[("GET", "/search")]:
            found = (await agent.get(f"{API_PREFIX}/search", params=params)).json()
            assert found["conversations"] == [], params
            assert all(c["conversation_count"] == 0 for c in found["contacts"]), params
        found = (await agent.get(f"{API_PREFIX}/search", params={"q": "hidden customer"})).json()
        assert [c["id"] for c in found["contacts"]] == [targets.ids["contact_id"]]


async def test_widget_routes_are_sealed_to_the_visitor(runtime: Runtime, ws: Workspace) -> None:
    """A widget route's objects belong to one visitor: without a session it
    is 401; another visitor of the same inbox, or of another workspace,
    gets 404."""
    ann = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    file = await store_file(runtime.blobs, b"hello", filename="a.txt", declared_type=None)
    attachment = await perform(
        runtime, ws.system, do_upload_attachment, file=file, visitor_session_id=ann.session_id
    )
    await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=ann.session_id,
        text="see file",
        client_id="c1",
        attachment_ids=[attachment.id],
    )
    ids = {"attachment_id": attachment.id}
    bob = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    other = await seed_workspace(runtime, "Other Co")
    stranger = await perform(
        runtime, other.system, do_start_visitor_session, inbox_id=other.inbox_id, origin=None
    )
    assert VISITOR_ROUTES
    async with client(runtime) as c:
        for ep in VISITOR_ROUTES:
            case = MATRIX[(ep.method, ep.path)]
            method, path, body = request_for(ep, case, ids)
            res = await c.request(method, path, json=body)
            assert res.status_code == 401, f"no session {method} {path}: {res.text}"
            for who, token in (
                ("another visitor", bob.token),
                ("another workspace", stranger.token),
            ):
                res = await c.request(method, path, json=body, headers={"X-Widget-Session": token})
                assert res.status_code == case.non_member, f"{who} {method} {path}: {res.text}"
            res = await c.request(method, path, json=body, headers={"X-Widget-Session": ann.token})
            assert res.status_code < 300, f"owner {method} {path}: {res.text}"
