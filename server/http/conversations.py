"""REST: conversations and their messages."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from server.actions.canned_replies import send_canned_response
from server.actions.context import perform
from server.actions.conversations import do_create_conversation, do_update_conversation
from server.actions.messages import do_send_message
from server.domain.errors import InvalidInput
from server.domain.values import ConversationStatus, Priority
from server.http.api import Call, Endpoint
from server.http.idempotency import header_key
from server.http.ratelimit import count_message
from server.queries.api_shapes import message_view
from server.queries.conversations import (
    conversation_detail,
    list_conversations,
    list_messages,
    message_detail,
)
from server.queries.email_replies import email_reply_defaults
from server.queries.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.queries.reading import read
from server.wire.schema import Bool, DateTime, Field, Id, Int, List, Nullable, Obj, Str, obj

Limit = Int(minimum=1, maximum=MAX_LIMIT, description=f"page size, default {DEFAULT_LIMIT}")
Label = Str(max_length=100, min_length=1)
ATTACHMENT_IDS = List(
    Id, max_items=10, description="your own uploads to this inbox that no message carries yet"
)
# The list's filters; a saved filter's `query` takes the same ones
# (server.http.saved_filters).
FILTERS: dict[str, Field] = {
    "status": List(Str.enum(ConversationStatus), max_items=4),
    "inbox_id": Id,
    "team_id": Id,
    "assignee_id": Id,
    "contact_id": Id,
    "label": Label,
    "unassigned": Bool(description="only conversations assigned to nobody"),
    "mine": Bool(description="only conversations assigned to you"),
}


async def list_conversations_handler(call: Call[Any, Any]) -> Any:
    q = call.query
    return await read(
        call.runtime,
        list_conversations,
        call.actor,
        status=q.get("status"),
        inbox_id=q.get("inbox_id"),
        team_id=q.get("team_id"),
        assignee_id=q.get("assignee_id"),
        contact_id=q.get("contact_id"),
        label=q.get("label"),
        unassigned=q.get("unassigned", False),
        mine=q.get("mine", False),
        cursor=q.get("cursor"),
        limit=q.get("limit", DEFAULT_LIMIT),
    )


async def create_conversation(call: Call[Any, Any]) -> Any:
    b = call.body
    conversation_id = await perform(
        call.runtime,
        call.actor,
        do_create_conversation,
        inbox_id=b["inbox_id"],
        contact_id=b["contact_id"],
        subject=b.get("subject"),
    )
    return await read(call.runtime, conversation_detail, call.actor, conversation_id)


async def get_conversation(call: Call[Any, Any]) -> Any:
    return await read(call.runtime, conversation_detail, call.actor, call.path["conversation_id"])


async def update_conversation(call: Call[Any, Any]) -> Any:
    """One PATCH for status/snooze, priority, labels and assignment, applied
    in one transaction (all or nothing), one event per part."""
    b, conversation_id = call.body, call.path["conversation_id"]
    if not b:
        raise InvalidInput("body: nothing to change", field="body")
    if "snoozed_until" in b and "status" not in b:
        raise InvalidInput("snoozed_until goes with status", field="status")
    await perform(
        call.runtime,
        call.actor,
        do_update_conversation,
        conversation_id=conversation_id,
        status=ConversationStatus(b["status"]) if "status" in b else None,
        snoozed_until=b.get("snoozed_until"),
        priority=Priority(b["priority"]) if "priority" in b else None,
        labels=b.get("labels"),
        add_labels=b.get("add_labels"),
        remove_labels=b.get("remove_labels"),
        **{k: b[k] for k in ("assignee_id", "team_id") if k in b},
    )
    return await read(call.runtime, conversation_detail, call.actor, conversation_id)


async def list_messages_handler(call: Call[Any, Any]) -> Any:
    q = call.query
    if "after_seq" in q and "before_seq" in q:
        raise InvalidInput("give after_seq or before_seq, not both", field="before_seq")
    return await read(
        call.runtime,
        list_messages,
        call.actor,
        call.path["conversation_id"],
        after_seq=q.get("after_seq"),
        before_seq=q.get("before_seq"),
        limit=q.get("limit", DEFAULT_LIMIT),
    )


async def create_message(call: Call[Any, Any]) -> Any:
    key = header_key(call.request)
    b, conversation_id = call.body, call.path["conversation_id"]
    count_message(
        call.request,
        call.runtime,
        target=f"conversation:{conversation_id}",
        account=f"agent:{call.actor.agent_id}",
    )
    if "canned_response_id" in b:
        # Empty text: the server renders the response; text: the agent's edit.
        result = await send_canned_response(
            call.runtime,
            call.actor,
            conversation_id=conversation_id,
            canned_response_id=b["canned_response_id"],
            text=b.get("text"),
            private=b.get("private", False),
            idempotency_key=key,
            attachment_ids=b.get("attachment_ids", []),
            email_to=b.get("to"),
            email_cc=b.get("cc"),
        )
    else:
        result = await perform(
            call.runtime,
            call.actor,
            do_send_message,
            conversation_id=conversation_id,
            text=b.get("text", ""),
            private=b.get("private", False),
            idempotency_key=key,
            attachment_ids=b.get("attachment_ids", []),
            email_to=b.get("to"),
            email_cc=b.get("cc"),
        )
    # A replayed idempotent request answers 200 with the original message.
    return JSONResponse(message_view(result.message), status_code=200 if result.replayed else 201)


async def get_email_defaults(call: Call[Any, Any]) -> Any:
    return await read(call.runtime, email_reply_defaults, call.actor, call.path["conversation_id"])


async def get_message(call: Call[Any, Any]) -> Any:
    return await read(
        call.runtime,
        message_detail,
        call.actor,
        call.path["conversation_id"],
        call.path["message_id"],
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/conversations",
        list_conversations_handler,
        "List conversations, newest activity first",
        "conversations",
        query=Obj(fields={**FILTERS, "cursor": Str(max_length=500), "limit": Limit}),
    ),
    Endpoint(
        "POST",
        "/conversations",
        create_conversation,
        "Open a conversation for a contact in an inbox",
        "conversations",
        body=obj(
            ("inbox_id", "contact_id"),
            inbox_id=Id,
            contact_id=Id,
            subject=Nullable(Str(max_length=500)),
        ),
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "GET",
        "/conversations/{conversation_id}",
        get_conversation,
        "Get a conversation",
        "conversations",
    ),
    Endpoint(
        "PATCH",
        "/conversations/{conversation_id}",
        update_conversation,
        "Change status (snooze with snoozed_until), priority, labels, assignee or team",
        "conversations",
        body=obj(
            status=Str.enum(ConversationStatus),
            snoozed_until=Nullable(DateTime()),
            priority=Str.enum(Priority),
            labels=List(Label, max_items=50),
            add_labels=List(Label, max_items=50),
            remove_labels=List(Label, max_items=50),
            assignee_id=Nullable(Id),
            team_id=Nullable(Id),
        ),
    ),
    Endpoint(
        "GET",
        "/conversations/{conversation_id}/messages",
        list_messages_handler,
        "List messages in seq order",
        "messages",
        query=obj(after_seq=Int(minimum=0), before_seq=Int(minimum=1), limit=Limit),
    ),
    Endpoint(
        "POST",
        "/conversations/{conversation_id}/messages",
        create_message,
        "Send a reply or a private note (honours the Idempotency-Key header)",
        "messages",
        body=obj(
            text=Str(
                max_length=65_536,
                description="may be empty when attachment_ids or canned_response_id is not",
            ),
            private=Bool(description="a private note, visible to agents only"),
            attachment_ids=ATTACHMENT_IDS,
            canned_response_id=Int(
                minimum=Id.minimum,
                maximum=Id.maximum,
                description="send with this canned response: its files, its body rendered"
                " when text is empty, and its use counted",
            ),
            to=List(
                Str(max_length=320, min_length=1),
                max_items=20,
                description="email conversations: the recipients (default: reply to the"
                " customer's latest mail, see email_defaults)",
            ),
            cc=List(
                Str(max_length=320, min_length=1),
                max_items=20,
                description="email conversations: copied recipients",
            ),
        ),
        status=201,
        idempotency="own",
    ),
    Endpoint(
        "GET",
        "/conversations/{conversation_id}/email_defaults",
        get_email_defaults,
        "Who an email reply goes to unless changed (to, cc) and its subject",
        "messages",
    ),
    Endpoint(
        "GET",
        "/conversations/{conversation_id}/messages/{message_id}",
        get_message,
        "Get one message",
        "messages",
    ),
]
