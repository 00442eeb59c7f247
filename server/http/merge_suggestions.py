"""REST: merge suggestions (F3), the possible duplicates of a contact that
nothing proves to be one person (server.actions.contact_suggestions).

An agent accepts one by merging the two contacts (POST
/contacts/{id}/merge, server.http.merges) or dismisses it here.
Dismissing is idempotent: a dismissed suggestion answers as it is; one
already accepted (the contacts were merged) is a 409.
"""

from __future__ import annotations

from server.actions.contact_suggestions import do_dismiss_merge_suggestion
from server.actions.context import perform
from server.domain.json_types import JsonValue
from server.http.api import Call, Endpoint
from server.queries.merge_suggestions import contact_merge_suggestions, merge_suggestion_detail
from server.queries.reading import read


async def list_merge_suggestions(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, contact_merge_suggestions, call.actor, call.path["contact_id"])


async def dismiss_merge_suggestion(call: Call[None, None]) -> JsonValue:
    suggestion_id = call.path["suggestion_id"]
    await perform(
        call.runtime, call.actor, do_dismiss_merge_suggestion, suggestion_id=suggestion_id
    )
    return await read(call.runtime, merge_suggestion_detail, call.actor, suggestion_id)


TAG = "merges"

ENDPOINTS = [
    Endpoint(
        "GET",
        "/contacts/{contact_id}/merge_suggestions",
        list_merge_suggestions,
        "Open merge suggestions for this contact (possible duplicates), each with the other contact",
        TAG,
    ),
    Endpoint(
        "POST",
        "/merge_suggestions/{suggestion_id}/dismiss",
        dismiss_merge_suggestion,
        "Dismiss a merge suggestion: the two contacts are not one person (idempotent)",
        TAG,
    ),
]
