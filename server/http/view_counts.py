"""The inbox sidebar's view counts (F4): how many conversations Mine,
Unassigned, All and the other sidebar views hold."""

from __future__ import annotations

from server.domain.json_types import JsonValue
from server.domain.values import ConversationStatus
from server.http.api import Call, Endpoint
from server.queries.reading import read
from server.queries.view_counts import conversation_counts
from server.wire.records import arg, record
from server.wire.schema import List, Str

# What the sidebar counts unless asked otherwise: what still needs an answer.
DEFAULT_STATUSES = [ConversationStatus.OPEN.value]


@record
class CountsQuery:
    status: list[str] | None = arg(List(Str.enum(ConversationStatus), max_items=4), default=None)


async def view_counts(call: Call[None, CountsQuery]) -> JsonValue:
    statuses = sorted(set(call.query.status or DEFAULT_STATUSES))
    return await read(call.runtime, conversation_counts, call.actor, statuses)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/views/counts",
        view_counts,
        "How many conversations are in Mine, Unassigned, All, each inbox, team, label and"
        " saved filter",
        "conversations",
        query=CountsQuery,
    ),
]
