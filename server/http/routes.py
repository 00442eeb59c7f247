"""The one route table. Every REST endpoint is listed here (through its
module's ENDPOINTS); the OpenAPI document and the access-matrix test are
both generated from it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from server.http import attachments, canned_responses, conversations, reads, sessions, view_counts
from server.http.api import Endpoint, openapi_document, to_route
from server.http.assignment import ENDPOINTS as ASSIGNMENT_ENDPOINTS
from server.http.audit import ENDPOINTS as AUDIT_ENDPOINTS
from server.http.consents import ENDPOINTS as CONSENT_ENDPOINTS
from server.http.contact_events import ENDPOINTS as CONTACT_EVENT_ENDPOINTS
from server.http.contacts import ENDPOINTS as CONTACT_ENDPOINTS
from server.http.directory import ENDPOINTS as DIRECTORY_ENDPOINTS
from server.http.health import healthz, readyz
from server.http.inbound_email import ENDPOINTS as INBOUND_EMAIL_ENDPOINTS
from server.http.macros import ENDPOINTS as MACRO_ENDPOINTS
from server.http.merge_suggestions import ENDPOINTS as MERGE_SUGGESTION_ENDPOINTS
from server.http.merges import ENDPOINTS as MERGE_ENDPOINTS
from server.http.message_html import ENDPOINTS as MESSAGE_HTML_ENDPOINTS
from server.http.promo_codes import ENDPOINTS as PROMO_CODE_ENDPOINTS
from server.http.routing_rules import ENDPOINTS as ROUTING_RULE_ENDPOINTS
from server.http.saved_filters import ENDPOINTS as SAVED_FILTER_ENDPOINTS
from server.http.search import ENDPOINTS as SEARCH_ENDPOINTS
from server.http.segments import ENDPOINTS as SEGMENT_ENDPOINTS
from server.http.touchpoints import ENDPOINTS as TOUCHPOINT_ENDPOINTS
from server.http.widget_api import ENDPOINTS as WIDGET_ENDPOINTS

API_PREFIX = "/api/v1"
API_VERSION = "1.0.0"

ENDPOINTS: list[Endpoint] = [
    *sessions.ENDPOINTS,
    *conversations.ENDPOINTS,
    *reads.ENDPOINTS,
    *view_counts.ENDPOINTS,
    *attachments.ENDPOINTS,
    *canned_responses.ENDPOINTS,
    *MACRO_ENDPOINTS,
    *SAVED_FILTER_ENDPOINTS,
    *SEGMENT_ENDPOINTS,
    *ROUTING_RULE_ENDPOINTS,
    *ASSIGNMENT_ENDPOINTS,
    *CONTACT_ENDPOINTS,
    *CONTACT_EVENT_ENDPOINTS,
    *CONSENT_ENDPOINTS,
    *MERGE_ENDPOINTS,
    *MERGE_SUGGESTION_ENDPOINTS,
    *AUDIT_ENDPOINTS,
    *SEARCH_ENDPOINTS,
    *DIRECTORY_ENDPOINTS,
    *INBOUND_EMAIL_ENDPOINTS,
    *MESSAGE_HTML_ENDPOINTS,
    *WIDGET_ENDPOINTS,
    *PROMO_CODE_ENDPOINTS,
    *TOUCHPOINT_ENDPOINTS,
]


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document(ENDPOINTS, API_PREFIX, API_VERSION))


def api_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [to_route(ep, API_PREFIX) for ep in ENDPOINTS]
    routes.append(Route(f"{API_PREFIX}/openapi.json", openapi, methods=["GET"]))
    routes.append(Route("/healthz", healthz, methods=["GET"]))
    routes.append(Route("/readyz", readyz, methods=["GET"]))
    return routes
