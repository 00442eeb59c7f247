"""REST: the workspace directory — agents, teams, inboxes and personal API
tokens.

Conventions: creating answers 201 with the new object; PUT of a membership
answers 200 with the team or inbox; every DELETE answers 200 with
`{"deleted": true}`, or `{"deleted": false}` when there was nothing left to
delete (not a member, token already revoked), so retrying one is safe.
Secrets are shown once: a token in the response that creates it, a widget
inbox's HMAC key likewise; never again (PROTOCOLS.md P7).
"""

from __future__ import annotations

from typing import TypeVar

from server.actions.agents import do_change_password, do_create_agent, do_update_agent
from server.actions.context import perform
from server.actions.inboxes import (
    do_add_inbox_member,
    do_create_inbox,
    do_remove_inbox_member,
    do_update_inbox,
)
from server.actions.teams import (
    do_add_team_member,
    do_create_team,
    do_delete_team,
    do_remove_team_member,
    do_update_team,
)
from server.actions.tokens import do_create_api_token, do_revoke_api_token
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.values import Availability, InboxKind, Role
from server.http.api import Call, Endpoint
from server.queries.agents import agent_detail, list_agents
from server.queries.directory import (
    api_token_detail,
    inbox_detail,
    list_api_tokens,
    list_inboxes,
    list_teams,
    team_detail,
)
from server.queries.reading import read
from server.wire.records import UNSET, Unset, arg, given, or_none, record
from server.wire.schema import Bool, Int, JsonMap, Nullable, Str

Name = Str(max_length=200, min_length=1)
Password = Str(max_length=1024, min_length=1, strip=False)
Capacity = Int(minimum=0, maximum=10_000, description="most open conversations at once")
Description = Str(max_length=2000)

Change = TypeVar("Change")


def _changes(body: Change) -> Change:
    if not given(body):
        raise InvalidInput("body: nothing to change", field="body")
    return body


@record
class NewAgent:
    email: str = arg(Str(max_length=320, min_length=1))
    name: str = arg(Name)
    password: str = arg(Password)
    role: str = arg(Str.enum(Role, description="default agent"), default=Role.AGENT.value)
    capacity: int | None = arg(Nullable(Capacity), default=None)


@record
class AgentChange:
    name: str | Unset = arg(Name, default=UNSET)
    role: str | Unset = arg(Str.enum(Role), default=UNSET)
    availability: str | Unset = arg(Str.enum(Availability), default=UNSET)
    capacity: int | Unset | None = arg(Nullable(Capacity), default=UNSET)
    active: bool | Unset = arg(Bool(), default=UNSET)


@record
class PasswordReset:
    new_password: str = arg(Password)
    current_password: str | None = arg(Password, default=None)


@record
class NewTeam:
    name: str = arg(Name)
    description: str = arg(Description, default="")


@record
class TeamChange:
    name: str | Unset = arg(Name, default=UNSET)
    description: str | Unset = arg(Description, default=UNSET)


@record
class NewInbox:
    name: str = arg(Name)
    kind: str = arg(Str.enum(InboxKind))
    settings: dict[str, JsonValue] = arg(
        JsonMap(description="channel settings", max_depth=4), default_factory=dict
    )


@record
class InboxChange:
    name: str | Unset = arg(Name, default=UNSET)
    settings: dict[str, JsonValue] | Unset = arg(
        JsonMap(description="keys to set; null removes", max_depth=4), default=UNSET
    )


@record
class TokenListQuery:
    all: bool = arg(Bool(description="every token of the workspace (admins only)"), default=False)


@record
class NewToken:
    name: str = arg(Name)


# -- agents -----------------------------------------------------------------


async def list_agents_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, list_agents, call.actor)


async def create_agent(call: Call[NewAgent, None]) -> JsonValue:
    b = call.body
    agent_id = await perform(
        call.runtime,
        call.actor,
        do_create_agent,
        email=b.email,
        name=b.name,
        password=b.password,
        role=Role(b.role),
        capacity=b.capacity,
    )
    return await read(call.runtime, agent_detail, call.actor, agent_id)


async def get_agent(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, agent_detail, call.actor, call.path["agent_id"])


async def update_agent(call: Call[AgentChange, None]) -> JsonValue:
    b, agent_id = _changes(call.body), call.path["agent_id"]
    await perform(
        call.runtime,
        call.actor,
        do_update_agent,
        agent_id=agent_id,
        name=or_none(b.name),
        role=Role(b.role) if b.role is not UNSET else None,
        availability=Availability(b.availability) if b.availability is not UNSET else None,
        capacity=or_none(b.capacity),
        clear_capacity=b.capacity is None,
        active=or_none(b.active),
    )
    return await read(call.runtime, agent_detail, call.actor, agent_id)


async def reset_agent_password(call: Call[PasswordReset, None]) -> JsonValue:
    await perform(
        call.runtime,
        call.actor,
        do_change_password,
        agent_id=call.path["agent_id"],
        current_password=call.body.current_password,
        new_password=call.body.new_password,
    )
    return {"changed": True}


# -- teams ------------------------------------------------------------------


async def list_teams_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, list_teams, call.actor)


async def create_team(call: Call[NewTeam, None]) -> JsonValue:
    team_id = await perform(
        call.runtime,
        call.actor,
        do_create_team,
        name=call.body.name,
        description=call.body.description,
    )
    return await read(call.runtime, team_detail, call.actor, team_id)


async def get_team(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, team_detail, call.actor, call.path["team_id"])


async def update_team(call: Call[TeamChange, None]) -> JsonValue:
    b, team_id = _changes(call.body), call.path["team_id"]
    await perform(
        call.runtime,
        call.actor,
        do_update_team,
        team_id=team_id,
        name=or_none(b.name),
        description=or_none(b.description),
    )
    return await read(call.runtime, team_detail, call.actor, team_id)


async def delete_team(call: Call[None, None]) -> JsonValue:
    await perform(call.runtime, call.actor, do_delete_team, team_id=call.path["team_id"])
    return {"deleted": True}


async def add_team_member(call: Call[None, None]) -> JsonValue:
    team_id = call.path["team_id"]
    await perform(
        call.runtime,
        call.actor,
        do_add_team_member,
        team_id=team_id,
        agent_id=call.path["agent_id"],
    )
    return await read(call.runtime, team_detail, call.actor, team_id)


async def remove_team_member(call: Call[None, None]) -> JsonValue:
    removed = await perform(
        call.runtime,
        call.actor,
        do_remove_team_member,
        team_id=call.path["team_id"],
        agent_id=call.path["agent_id"],
    )
    return {"deleted": removed}


# -- inboxes ----------------------------------------------------------------


async def list_inboxes_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, list_inboxes, call.actor, call.runtime.secrets)


async def create_inbox(call: Call[NewInbox, None]) -> JsonValue:
    b = call.body
    settings = {k: v for k, v in b.settings.items() if v is not None}
    new = await perform(
        call.runtime,
        call.actor,
        do_create_inbox,
        name=b.name,
        kind=InboxKind(b.kind),
        settings=settings,
        box=call.runtime.secrets,
    )
    inbox = await read(call.runtime, inbox_detail, call.actor, new.inbox_id, call.runtime.secrets)
    # The widget's identity-verification key: shown here, never again.
    return {**inbox, "secret": new.secret}


async def get_inbox(call: Call[None, None]) -> JsonValue:
    return await read(
        call.runtime, inbox_detail, call.actor, call.path["inbox_id"], call.runtime.secrets
    )


async def update_inbox(call: Call[InboxChange, None]) -> JsonValue:
    b, inbox_id = _changes(call.body), call.path["inbox_id"]
    await perform(
        call.runtime,
        call.actor,
        do_update_inbox,
        inbox_id=inbox_id,
        name=or_none(b.name),
        settings=or_none(b.settings),
        box=call.runtime.secrets,
    )
    return await read(call.runtime, inbox_detail, call.actor, inbox_id, call.runtime.secrets)


async def add_inbox_member(call: Call[None, None]) -> JsonValue:
    inbox_id = call.path["inbox_id"]
    await perform(
        call.runtime,
        call.actor,
        do_add_inbox_member,
        inbox_id=inbox_id,
        agent_id=call.path["agent_id"],
    )
    return await read(call.runtime, inbox_detail, call.actor, inbox_id, call.runtime.secrets)


async def remove_inbox_member(call: Call[None, None]) -> JsonValue:
    removed = await perform(
        call.runtime,
        call.actor,
        do_remove_inbox_member,
        inbox_id=call.path["inbox_id"],
        agent_id=call.path["agent_id"],
    )
    return {"deleted": removed}


# -- API tokens -------------------------------------------------------------


async def list_tokens_handler(call: Call[None, TokenListQuery]) -> JsonValue:
    return await read(call.runtime, list_api_tokens, call.actor, everyone=call.query.all)


async def create_token(call: Call[NewToken, None]) -> JsonValue:
    new = await perform(call.runtime, call.actor, do_create_api_token, name=call.body.name)
    token = await read(call.runtime, api_token_detail, call.actor, new.token_id)
    # The bearer token itself: shown here, never again (only its hash is kept).
    return {**token, "token": new.token}


async def revoke_token(call: Call[None, None]) -> JsonValue:
    token_id = call.path["token_id"]
    before = await read(call.runtime, api_token_detail, call.actor, token_id)
    await perform(call.runtime, call.actor, do_revoke_api_token, token_id=token_id)
    return {"deleted": before["revoked_at"] is None}


ENDPOINTS = [
    Endpoint("GET", "/agents", list_agents_handler, "List the workspace's agents", "agents"),
    Endpoint(
        "POST",
        "/agents",
        create_agent,
        "Add an agent to the workspace (admins)",
        "agents",
        body=NewAgent,
        status=201,
        idempotency="stored",
    ),
    Endpoint("GET", "/agents/{agent_id}", get_agent, "Get an agent", "agents"),
    Endpoint(
        "PATCH",
        "/agents/{agent_id}",
        update_agent,
        "Change an agent: your own name and availability; role, capacity (null clears) "
        "and active are for admins. Deactivating ends the agent's sessions",
        "agents",
        body=AgentChange,
    ),
    Endpoint(
        "POST",
        "/agents/{agent_id}/password",
        reset_agent_password,
        "Set an agent's password (admins; your own needs current_password). "
        "The agent's other sessions end",
        "agents",
        body=PasswordReset,
    ),
    Endpoint("GET", "/teams", list_teams_handler, "List teams with their members", "teams"),
    Endpoint(
        "POST",
        "/teams",
        create_team,
        "Create a team (admins)",
        "teams",
        body=NewTeam,
        status=201,
        idempotency="stored",
    ),
    Endpoint("GET", "/teams/{team_id}", get_team, "Get a team with its members", "teams"),
    Endpoint(
        "PATCH",
        "/teams/{team_id}",
        update_team,
        "Rename a team or change its description (admins)",
        "teams",
        body=TeamChange,
    ),
    Endpoint(
        "DELETE",
        "/teams/{team_id}",
        delete_team,
        "Delete a team (admins); its conversations lose the team. Answers {deleted: true}",
        "teams",
    ),
    Endpoint(
        "PUT",
        "/teams/{team_id}/members/{agent_id}",
        add_team_member,
        "Add an agent to a team (admins; idempotent); answers the team",
        "teams",
    ),
    Endpoint(
        "DELETE",
        "/teams/{team_id}/members/{agent_id}",
        remove_team_member,
        "Remove an agent from a team (admins). Answers {deleted: false} if not a member",
        "teams",
    ),
    Endpoint(
        "GET",
        "/inboxes",
        list_inboxes_handler,
        "List the inboxes you are a member of (admins: all)",
        "inboxes",
    ),
    Endpoint(
        "POST",
        "/inboxes",
        create_inbox,
        "Create an inbox (admins). A widget inbox's HMAC `secret` is in this response only",
        "inboxes",
        body=NewInbox,
        status=201,
        idempotency="stored",
        shown_once=("secret",),
    ),
    Endpoint("GET", "/inboxes/{inbox_id}", get_inbox, "Get an inbox (never its secret)", "inboxes"),
    Endpoint(
        "PATCH",
        "/inboxes/{inbox_id}",
        update_inbox,
        "Rename an inbox and/or merge keys into its settings, null removes one (admins)",
        "inboxes",
        body=InboxChange,
    ),
    Endpoint(
        "PUT",
        "/inboxes/{inbox_id}/members/{agent_id}",
        add_inbox_member,
        "Give an agent access to an inbox (admins; idempotent); answers the inbox",
        "inboxes",
    ),
    Endpoint(
        "DELETE",
        "/inboxes/{inbox_id}/members/{agent_id}",
        remove_inbox_member,
        "Take an agent's access to an inbox away (admins). "
        "Answers {deleted: false} if not a member",
        "inboxes",
    ),
    Endpoint(
        "GET",
        "/tokens",
        list_tokens_handler,
        "List your API tokens, revoked ones included (admins: all=true for the workspace's)",
        "tokens",
        query=TokenListQuery,
    ),
    Endpoint(
        "POST",
        "/tokens",
        create_token,
        "Issue a personal API token; `token` is in this response only",
        "tokens",
        body=NewToken,
        status=201,
        idempotency="stored",
        shown_once=("token",),
    ),
    Endpoint(
        "DELETE",
        "/tokens/{token_id}",
        revoke_token,
        "Revoke an API token (its owner or an admin). "
        "Answers {deleted: false} if it was already revoked",
        "tokens",
    ),
]
