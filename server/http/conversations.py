"""REST: conversations and their messages."""

from __future__ import annotations

from datetime import datetime

from starlette.responses import JSONResponse

from server.actions.canned_replies import send_canned_response
from server.actions.context import perform
from server.actions.conversations import do_create_conversation, do_update_conversation
from server.actions.messages import do_send_message
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
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
from server.wire.records import UNSET, Unset, arg, given, or_none, record, schema_of
from server.wire.schema import Bool, DateTime, Id, Int, List, Nullable, Str

Limit = Int(minimum=1, maximum=MAX_LIMIT, description=f"page size, default {DEFAULT_LIMIT}")
Label = Str(max_length=100, min_length=1)
Labels = List(Label, max_items=50)
Address = Str(max_length=320, min_length=1)
ATTACHMENT_IDS = List(
    Id, max_items=10, description="your own uploads to this inbox that no message carries yet"
)


@record
class ConversationFilters:
    """The list's filters; a saved filter's `query` takes the same ones
    (server.http.saved_filters, as FILTERS)."""

    status: list[str] | None = arg(List(Str.enum(ConversationStatus), max_items=4), default=None)
    inbox_id: int | None = arg(Id, default=None)
    team_id: int | None = arg(Id, default=None)
    assignee_id: int | None = arg(Id, default=None)
    contact_id: int | None = arg(Id, default=None)
    label: str | None = arg(Label, default=None)
    unassigned: bool = arg(Bool(description="only conversations assigned to nobody"), default=False)
    mine: bool = arg(Bool(description="only conversations assigned to you"), default=False)


FILTERS = schema_of(ConversationFilters).fields


@record
class ConversationListQuery(ConversationFilters):
    cursor: str | None = arg(Str(max_length=500), default=None)
    limit: int = arg(Limit, default=DEFAULT_LIMIT)


@record
class NewConversation:
    inbox_id: int = arg(Id)
    contact_id: int = arg(Id)
    subject: str | None = arg(Nullable(Str(max_length=500)), default=None)


@record
class ConversationChange:
    status: str | Unset = arg(Str.enum(ConversationStatus), default=UNSET)
    snoozed_until: datetime | Unset | None = arg(Nullable(DateTime()), default=UNSET)
    priority: str | Unset = arg(Str.enum(Priority), default=UNSET)
    labels: list[str] | Unset = arg(Labels, default=UNSET)
    add_labels: list[str] | Unset = arg(Labels, default=UNSET)
    remove_labels: list[str] | Unset = arg(Labels, default=UNSET)
    assignee_id: int | Unset | None = arg(Nullable(Id), default=UNSET)
    team_id: int | Unset | None = arg(Nullable(Id), default=UNSET)


@record
class MessageListQuery:
    after_seq: int | None = arg(Int(minimum=0), default=None)
    before_seq: int | None = arg(Int(minimum=1), default=None)
    limit: int = arg(Limit, default=DEFAULT_LIMIT)


@record
class NewMessage:
    # None: not given (the parsers never read a null into these).
    text: str | None = arg(
        Str(
            max_length=65_536,
            description="may be empty when attachment_ids or canned_response_id is not",
        ),
        default=None,
    )
    private: bool = arg(Bool(description="a private note, visible to agents only"), default=False)
    attachment_ids: list[int] = arg(ATTACHMENT_IDS, default_factory=list)
    canned_response_id: int | None = arg(
        Int(
            minimum=Id.minimum,
            maximum=Id.maximum,
            description="send with this canned response: its files, its body rendered"
            " when text is empty, and its use counted",
        ),
        default=None,
    )
    to: list[str] | None = arg(
        List(
            Address,
            max_items=20,
            description="email conversations: the recipients (default: reply to the"
            " customer's latest mail, see email_defaults)",
        ),
        default=None,
    )
    cc: list[str] | None = arg(
        List(Address, max_items=20, description="email conversations: copied recipients"),
        default=None,
    )


async def list_conversations_handler(call: Call[None, ConversationListQuery]) -> JsonValue:
    q = call.query
    return await read(
        call.runtime,
        list_conversations,
        call.actor,
        status=q.status,
        inbox_id=q.inbox_id,
        team_id=q.team_id,
        assignee_id=q.assignee_id,
        contact_id=q.contact_id,
        label=q.label,
        unassigned=q.unassigned,
        mine=q.mine,
        cursor=q.cursor,
        limit=q.limit,
    )


async def create_conversation(call: Call[NewConversation, None]) -> JsonValue:
    b = call.body
    conversation_id = await perform(
        call.runtime,
        call.actor,
        do_create_conversation,
        inbox_id=b.inbox_id,
        contact_id=b.contact_id,
        subject=b.subject,
    )
    return await read(call.runtime, conversation_detail, call.actor, conversation_id)


async def get_conversation(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, conversation_detail, call.actor, call.path["conversation_id"])


async def update_conversation(call: Call[ConversationChange, None]) -> JsonValue:
    """One PATCH for status/snooze, priority, labels and assignment, applied
    in one transaction (all or nothing), one event per part."""
    b, conversation_id = call.body, call.path["conversation_id"]
    if not given(b):
        raise InvalidInput("body: nothing to change", field="body")
    if b.snoozed_until is not UNSET and b.status is UNSET:
        raise InvalidInput("snoozed_until goes with status", field="status")
    # Assignment left out stays as it is: the action's own default.
    assignment = {
        name: value
        for name, value in (("assignee_id", b.assignee_id), ("team_id", b.team_id))
        if value is not UNSET
    }
    await perform(
        call.runtime,
        call.actor,
        do_update_conversation,
        conversation_id=conversation_id,
        status=ConversationStatus(b.status) if b.status is not UNSET else None,
        snoozed_until=or_none(b.snoozed_until),
        priority=Priority(b.priority) if b.priority is not UNSET else None,
        labels=or_none(b.labels),
        add_labels=or_none(b.add_labels),
        remove_labels=or_none(b.remove_labels),
        **assignment,
    )
    return await read(call.runtime, conversation_detail, call.actor, conversation_id)


async def list_messages_handler(call: Call[None, MessageListQuery]) -> JsonValue:
    q = call.query
    if q.after_seq is not None and q.before_seq is not None:
        raise InvalidInput("give after_seq or before_seq, not both", field="before_seq")
    return await read(
        call.runtime,
        list_messages,
        call.actor,
        call.path["conversation_id"],
        after_seq=q.after_seq,
        before_seq=q.before_seq,
        limit=q.limit,
    )


async def create_message(call: Call[NewMessage, None]) -> JSONResponse:
    key = header_key(call.request)
    b, conversation_id = call.body, call.path["conversation_id"]
    count_message(
        call.request,
        call.runtime,
        target=f"conversation:{conversation_id}",
        account=f"agent:{call.actor.agent_id}",
    )
    if b.canned_response_id is not None:
        # Empty text: the server renders the response; text: the agent's edit.
        result = await send_canned_response(
            call.runtime,
            call.actor,
            conversation_id=conversation_id,
            canned_response_id=b.canned_response_id,
            text=b.text,
            private=b.private,
            idempotency_key=key,
            attachment_ids=b.attachment_ids,
            email_to=b.to,
            email_cc=b.cc,
        )
    else:
        result = await perform(
            call.runtime,
            call.actor,
            do_send_message,
            conversation_id=conversation_id,
            text=b.text or "",
            private=b.private,
            idempotency_key=key,
            attachment_ids=b.attachment_ids,
            email_to=b.to,
            email_cc=b.cc,
        )
    # A replayed idempotent request answers 200 with the original message.
    return JSONResponse(message_view(result.message), status_code=200 if result.replayed else 201)


async def get_email_defaults(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, email_reply_defaults, call.actor, call.path["conversation_id"])


async def get_message(call: Call[None, None]) -> JsonValue:
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
        query=ConversationListQuery,
    ),
    Endpoint(
        "POST",
        "/conversations",
        create_conversation,
        "Open a conversation for a contact in an inbox",
        "conversations",
        body=NewConversation,
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
        body=ConversationChange,
    ),
    Endpoint(
        "GET",
        "/conversations/{conversation_id}/messages",
        list_messages_handler,
        "List messages in seq order",
        "messages",
        query=MessageListQuery,
    ),
    Endpoint(
        "POST",
        "/conversations/{conversation_id}/messages",
        create_message,
        "Send a reply or a private note (honours the Idempotency-Key header)",
        "messages",
        body=NewMessage,
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
