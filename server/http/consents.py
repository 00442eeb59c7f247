"""REST: a contact's consents (TOUCHPOINTS.md rule 3) — the history with
its sources, the state that counts now, and an agent recording a change
the customer asked for (the source is then `agent:<id>`).

Any agent may record one, as any agent may edit the contact: a customer
who says "stop mailing me" in a chat must be heard by whoever answers.
"""

from __future__ import annotations

from server.actions.consents import do_record_consent
from server.actions.context import perform
from server.domain.consents import CHANNELS, TOPICS, ConsentState, agent_source
from server.domain.json_types import JsonValue
from server.http.api import Call, Endpoint
from server.queries.consents import contact_consents
from server.queries.reading import read
from server.wire.records import arg, record
from server.wire.schema import Str


@record
class NewConsent:
    channel: str = arg(Str(max_length=16, choices=CHANNELS))
    topic: str = arg(Str(max_length=40, choices=TOPICS))
    state: str = arg(Str.enum(ConsentState))


async def get_consents(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, contact_consents, call.actor, call.path["contact_id"])


async def record_consent(call: Call[NewConsent, None]) -> JsonValue:
    b, contact_id = call.body, call.path["contact_id"]
    await perform(
        call.runtime,
        call.actor,
        do_record_consent,
        contact_id=contact_id,
        channel=b.channel,
        topic=b.topic,
        state=ConsentState(b.state),
        source=agent_source(call.actor.agent_id),
    )
    return await read(call.runtime, contact_consents, call.actor, contact_id)


TAG = "contacts"
PATH = "/contacts/{contact_id}/consents"

ENDPOINTS = [
    Endpoint(
        "GET",
        PATH,
        get_consents,
        "A contact's consent history (newest first) and current state per channel and topic",
        TAG,
    ),
    Endpoint(
        "POST",
        PATH,
        record_consent,
        "Record a contact's consent granted or withdrawn for a channel and topic",
        TAG,
        body=NewConsent,
        status=201,
        idempotency="stored",
    ),
]
