"""The inbox sidebar's view counts (F4): how many conversations Mine,
Unassigned, All and the other sidebar views hold."""

from __future__ import annotations

from typing import Any

from server.domain.values import ConversationStatus
from server.http.api import Call, Endpoint
from server.queries.reading import read
from server.queries.view_counts import conversation_counts
from server.wire.schema import List, Str, obj

# What the sidebar counts unless asked otherwise: what still needs an answer.
DEFAULT_STATUSES = [ConversationStatus.OPEN.value]


async def view_counts(call: Call) -> Any:
    statuses = sorted(set(call.query.get("status") or DEFAULT_STATUSES))
    return await read(call.runtime, conversation_counts, call.actor, statuses)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/views/counts",
        view_counts,
        "How many conversations are in Mine, Unassigned, All, each inbox, team, label and"
        " saved filter",
        "conversations",
        query=obj(status=List(Str.enum(ConversationStatus), max_items=4)),
    ),
]
