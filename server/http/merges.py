"""REST: merging contacts (with a preview and an undo) and merging
conversations (FEATURES.md F3). The rules live in
server.actions.contact_merges and server.actions.conversation_merges.

Refusals: a merge that makes no sense (into itself, with a contact or
conversation already merged, across contacts or inboxes) is a 422 naming
the field; an id the caller can't see, a 404; an undo by someone other
than the merging agent or an admin, a 403; an undo that is too late,
repeated, or blocked by a later merge, a 409 saying why.
"""

from __future__ import annotations

from server.actions.contact_merges import do_merge_contacts, do_undo_contact_merge
from server.actions.context import perform
from server.actions.conversation_merges import do_merge_conversations
from server.domain.json_types import JsonValue
from server.http.api import Call, Endpoint
from server.queries.conversations import conversation_detail
from server.queries.merges import contact_merge_detail, merge_preview
from server.queries.reading import read
from server.wire.records import arg, record
from server.wire.schema import Id


@record
class OtherContact:
    other_id: int = arg(Id)


@record
class SourceConversation:
    source_id: int = arg(Id)


async def merge_preview_handler(call: Call[None, OtherContact]) -> JsonValue:
    return await read(
        call.runtime, merge_preview, call.actor, call.path["contact_id"], call.query.other_id
    )


async def merge_contacts_handler(call: Call[OtherContact, None]) -> JsonValue:
    merge_id = await perform(
        call.runtime,
        call.actor,
        do_merge_contacts,
        contact_id=call.path["contact_id"],
        other_id=call.body.other_id,
    )
    return await read(call.runtime, contact_merge_detail, call.actor, merge_id)


async def undo_contact_merge_handler(call: Call[None, None]) -> JsonValue:
    merge_id = call.path["merge_id"]
    await perform(call.runtime, call.actor, do_undo_contact_merge, merge_id=merge_id)
    return await read(call.runtime, contact_merge_detail, call.actor, merge_id)


async def merge_conversations_handler(call: Call[SourceConversation, None]) -> JsonValue:
    merged = await perform(
        call.runtime,
        call.actor,
        do_merge_conversations,
        conversation_id=call.path["conversation_id"],
        source_id=call.body.source_id,
    )
    return {
        "conversation": await read(
            call.runtime, conversation_detail, call.actor, merged.conversation_id
        ),
        "source_id": merged.source_id,
        "moved_messages": merged.moved_messages,
    }


TAG = "merges"

ENDPOINTS = [
    Endpoint(
        "GET",
        "/contacts/{contact_id}/merge_preview",
        merge_preview_handler,
        "What merging contact other_id into this one would move, and which attributes conflict",
        TAG,
        query=OtherContact,
    ),
    Endpoint(
        "POST",
        "/contacts/{contact_id}/merge",
        merge_contacts_handler,
        "Merge contact other_id into this one (the survivor); undoable for 24 hours",
        TAG,
        body=OtherContact,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "POST",
        "/contact_merges/{merge_id}/undo",
        undo_contact_merge_handler,
        "Undo a contact merge: what it moved goes back to the merged contact",
        TAG,
    ),
    Endpoint(
        "POST",
        "/conversations/{conversation_id}/merge",
        merge_conversations_handler,
        "Append the messages of conversation source_id (same contact and inbox) to this one",
        TAG,
        body=SourceConversation,
    ),
]
