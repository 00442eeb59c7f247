"""REST: `POST /contacts/{id}/events` — the shop's backend telling
Threadline what a customer did (`signed_up`, `cart_updated`,
`order_placed`), the server-side twin of the widget's `track()`.

The name follows the rule touchpoint triggers use
(server.domain.touchpoints.parse_event_name), so every recorded event
can start or end one; properties are a JSON object of at most 16 KiB,
nested 3 deep like the widget's. An `Idempotency-Key` makes a retried
call from the shop record the event once. Any agent's API token may call
it, as any agent may edit a contact.
"""

from __future__ import annotations

from server.actions.context import perform
from server.actions.visitors import do_track_contact_event
from server.domain.json_types import JsonValue
from server.domain.touchpoints import parse_event_name
from server.http.api import Call, Endpoint
from server.queries.contacts import contact_event_detail
from server.queries.reading import read
from server.wire.records import arg, record
from server.wire.schema import JsonMap, Str

MAX_PROPERTIES_BYTES = 16 * 1024


@record
class NewContactEvent:
    name: str = arg(
        Str(max_length=100, min_length=1, description="lower-case, such as order_placed")
    )
    properties: dict[str, JsonValue] = arg(
        JsonMap(
            description="event properties; lists and objects nest up to 3 deep, 16 KiB as JSON",
            max_depth=3,
            max_bytes=MAX_PROPERTIES_BYTES,
        ),
        default_factory=dict,
    )


async def track_contact_event(call: Call[NewContactEvent, None]) -> JsonValue:
    b, contact_id = call.body, call.path["contact_id"]
    name = parse_event_name(b.name, "name")
    event_id = await perform(
        call.runtime,
        call.actor,
        do_track_contact_event,
        contact_id=contact_id,
        name=name,
        properties=b.properties,
    )
    return await read(call.runtime, contact_event_detail, call.actor, contact_id, event_id)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/contacts/{contact_id}/events",
        track_contact_event,
        "Record something the contact did (the shop's backend: order_placed, cart_updated...)",
        "contacts",
        body=NewContactEvent,
        status=201,
        idempotency="stored",
    ),
]
