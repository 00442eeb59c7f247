"""REST: assignment policies (F5) — how an inbox's or a team's waiting
conversations are handed to its online agents — and who a conversation
was assigned to.

GET answers the policy in its stored form (durations in seconds, every
setting present) or `null` when the inbox or team has none: 404 is kept
for an inbox or team the caller may not see (an inbox: its members and
admins; a team: every agent). PUT takes the policy object itself (what
GET answers, or any part of it: left-out settings take their defaults)
and answers the stored form; DELETE answers `{"deleted": true}` (false
when there was none). Both are for admins (403 otherwise; 404 first for
an inbox the caller may not see). Every setting is checked by
server.domain.assignment.parse_policy, the one place that knows a
policy's shape, so a 422 names the setting at fault (`mode`,
`channel_capacity.sms`). A conversation's assignments are for whoever
may read the conversation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from server.actions.assignment import do_delete_assignment_policy, do_set_assignment_policy
from server.actions.context import perform
from server.domain.assignment import CHANNELS, MAX_CAPACITY, Mode, parse_policy
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.http.api import Call, Endpoint
from server.queries.assignment import assignment_policy_view, conversation_assignments
from server.queries.reading import read
from server.wire.records import UNSET, Unset, arg, record

# The prefix parse_policy gives its fields when told the policy is `policy`.
_PREFIX = "policy."


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of a policy, checked by parse_policy and passed on as
    written (the action parses the whole policy again and stores its
    normal form). Its errors name the setting as the body spells it."""

    key: str
    description: str
    type: str | list[str]

    def parse(self, value: Any, path: str) -> JsonValue:
        try:
            parse_policy({self.key: value}, field="policy")
        except InvalidInput as exc:
            field = (exc.field or _PREFIX + path).removeprefix(_PREFIX)
            raise InvalidInput(exc.message, field=field) from None
        checked: JsonValue = value
        return checked

    def parse_text(self, raw: str, path: str) -> JsonValue:
        raise InvalidInput(f"{path}: cannot be given in a query string", field=path)

    def openapi(self) -> dict[str, JsonValue]:
        kinds: JsonValue = self.type if isinstance(self.type, str) else list(self.type)
        return {"type": kinds, "description": self.description}


_DURATION = ["integer", "string", "null"]
_CAPACITY = f"Open conversations per agent, 0 to {MAX_CAPACITY}; null: no limit"


@record
class PolicyBody:
    DOC = "An assignment policy; left-out settings take their defaults"
    mode: JsonValue | Unset = arg(
        Setting("mode", "How to pick: " + ", ".join(m.value for m in Mode), "string"),
        default=UNSET,
    )
    capacity: JsonValue | Unset = arg(
        Setting("capacity", _CAPACITY + " (an agent's own capacity wins)", ["integer", "null"]),
        default=UNSET,
    )
    channel_capacity: JsonValue | Unset = arg(
        Setting(
            "channel_capacity",
            "Per channel (" + ", ".join(CHANNELS) + "): open conversations per agent",
            ["object", "null"],
        ),
        default=UNSET,
    )
    fairness_window: JsonValue | Unset = arg(
        Setting("fairness_window", 'Round robin evens out over this ("8h"; 1m to 31d)', _DURATION),
        default=UNSET,
    )
    reassign_after: JsonValue | Unset = arg(
        Setting(
            "reassign_after",
            'No agent reply within this: back to the queue ("15m"; 1m to 7d; null: never)',
            _DURATION,
        ),
        default=UNSET,
    )
    offline_grace: JsonValue | Unset = arg(
        Setting(
            "offline_grace",
            'An agent whose last socket closed this long ago is away ("2m"; 0s to 1d)',
            _DURATION,
        ),
        default=UNSET,
    )


def _inbox(call: Call[object, object]) -> dict[str, int]:
    return {"inbox_id": call.path["inbox_id"]}


def _team(call: Call[object, object]) -> dict[str, int]:
    return {"team_id": call.path["team_id"]}


async def _get(call: Call[None, None], scope: dict[str, int]) -> JsonValue:
    return await read(call.runtime, assignment_policy_view, call.actor, **scope)


async def _put(call: Call[PolicyBody, None], scope: dict[str, int]) -> JsonValue:
    # Who may not see the inbox learns nothing of it, not even a 403.
    await read(call.runtime, assignment_policy_view, call.actor, **scope)
    b = call.body
    settings: dict[str, JsonValue | Unset] = {
        "mode": b.mode,
        "capacity": b.capacity,
        "channel_capacity": b.channel_capacity,
        "fairness_window": b.fairness_window,
        "reassign_after": b.reassign_after,
        "offline_grace": b.offline_grace,
    }
    policy = {k: v for k, v in settings.items() if not isinstance(v, Unset)}
    await perform(call.runtime, call.actor, do_set_assignment_policy, policy=policy, **scope)
    return await read(call.runtime, assignment_policy_view, call.actor, **scope)


async def _delete(call: Call[None, None], scope: dict[str, int]) -> JsonValue:
    existed = await read(call.runtime, assignment_policy_view, call.actor, **scope)
    await perform(call.runtime, call.actor, do_delete_assignment_policy, **scope)
    return {"deleted": existed is not None}


# One handler per route: a handler's name is its OpenAPI operationId.
async def get_inbox_policy(call: Call[None, None]) -> JsonValue:
    return await _get(call, _inbox(call))


async def put_inbox_policy(call: Call[PolicyBody, None]) -> JsonValue:
    return await _put(call, _inbox(call))


async def delete_inbox_policy(call: Call[None, None]) -> JsonValue:
    return await _delete(call, _inbox(call))


async def get_team_policy(call: Call[None, None]) -> JsonValue:
    return await _get(call, _team(call))


async def put_team_policy(call: Call[PolicyBody, None]) -> JsonValue:
    return await _put(call, _team(call))


async def delete_team_policy(call: Call[None, None]) -> JsonValue:
    return await _delete(call, _team(call))


async def conversation_assignments_handler(call: Call[None, None]) -> JsonValue:
    return await read(
        call.runtime, conversation_assignments, call.actor, call.path["conversation_id"]
    )


TAG = "assignment"
INBOX = "/inboxes/{inbox_id}/assignment_policy"
TEAM = "/teams/{team_id}/assignment_policy"


def _policy_endpoints(
    path: str,
    what: str,
    get: Callable[[Call[None, None]], Awaitable[JsonValue]],
    put: Callable[[Call[PolicyBody, None]], Awaitable[JsonValue]],
    delete: Callable[[Call[None, None]], Awaitable[JsonValue]],
) -> list[Endpoint]:
    return [
        Endpoint("GET", path, get, f"The assignment policy of {what}, or null", TAG),
        Endpoint(
            "PUT",
            path,
            put,
            f"Set the assignment policy of {what} (admins); waiting conversations are assigned",
            TAG,
            body=PolicyBody,
        ),
        Endpoint(
            "DELETE",
            path,
            delete,
            f"Remove the assignment policy of {what} (admins): its conversations wait for a person",
            TAG,
        ),
    ]


ENDPOINTS = [
    *_policy_endpoints(INBOX, "an inbox", get_inbox_policy, put_inbox_policy, delete_inbox_policy),
    *_policy_endpoints(TEAM, "a team", get_team_policy, put_team_policy, delete_team_policy),
    Endpoint(
        "GET",
        "/conversations/{conversation_id}/assignments",
        conversation_assignments_handler,
        "Who a conversation was assigned to and why, newest first",
        TAG,
    ),
]
