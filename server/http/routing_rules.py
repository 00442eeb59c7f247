"""REST: routing rules (F5) — the workspace's ordered rules that set a new
or newly written-to conversation's team, priority, labels or assignee,
its routing mode, and what routing did to a conversation.

Every agent may list and read the rules and the mode (they explain where
conversations land); creating, changing, reordering and deleting rules
and setting the mode is for admins (403 otherwise). `conditions`,
`actions` and `on` are checked as they are parsed (server.domain.
routing_rules), so a 422 names the exact path at fault
(`conditions[2].pattern`, `actions[0].team`); a duplicate name is a 409
naming `name`. Creating answers 201 with the rule; DELETE answers
`{"deleted": true}`. A conversation's routing record is for whoever may
read the conversation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from server.actions.context import perform
from server.actions.routing_rules import (
    do_create_routing_rule,
    do_delete_routing_rule,
    do_reorder_routing_rules,
    do_set_routing_mode,
    do_update_routing_rule,
)
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.routing_rules import (
    KINDS,
    MAX_CONDITIONS,
    MAX_NAME,
    MAX_PER_WORKSPACE,
    Field,
    Match,
    RoutingMode,
    Trigger,
    parse_actions,
    parse_conditions,
    parse_on,
)
from server.http.api import Call, Endpoint
from server.queries.reading import read
from server.queries.routing_rules import (
    conversation_routing,
    list_routing_rules,
    routing_rule_detail,
    routing_settings,
)
from server.wire.records import UNSET, Unset, arg, given, or_none, record
from server.wire.schema import Bool, Id, Int, List, Str


@dataclasses.dataclass(frozen=True)
class Checked:
    """A part of a rule, checked by server.domain.routing_rules (the one
    place that knows its shape) and passed on as written, so that the
    action's own checks (does team 3 exist?) name the index the caller
    wrote."""

    check: Callable[[Any, str], object]
    description: str
    type: str = "array"

    def parse(self, value: Any, path: str) -> JsonValue:
        self.check(value, path)
        checked: JsonValue = value
        return checked

    def parse_text(self, raw: str, path: str) -> JsonValue:
        raise InvalidInput(f"{path}: cannot be given in a query string", field=path)

    def openapi(self) -> dict[str, JsonValue]:
        return {"type": self.type, "description": self.description}


Name = Str(max_length=MAX_NAME, min_length=1)
Conditions = Checked(
    parse_conditions,
    f"At most {MAX_CONDITIONS} conditions, each naming one of: "
    + ", ".join(KINDS)
    + ' (any may add "negate": true). See server/domain/routing_rules.py.',
)
Actions = Checked(
    parse_actions,
    "One-key objects, each kind at most once: " + ", ".join(f.value for f in Field),
)
On = Checked(parse_on, "When the rule runs: " + ", ".join(t.value for t in Trigger))
MatchArg = Str.enum(Match, "all conditions must hold (all) or one (any)")
Mode = Str.enum(RoutingMode, "first: the first matching rule decides; all: every one, in order")
Position = Int(minimum=0, maximum=MAX_PER_WORKSPACE, description="0 is evaluated first")


@record
class NewRoutingRule:
    name: str = arg(Name)
    actions: JsonValue = arg(Actions)
    conditions: JsonValue = arg(Conditions, default_factory=list)
    on: JsonValue | Unset = arg(On, default=UNSET)
    match: str = arg(MatchArg, default=Match.ALL.value)
    enabled: bool = arg(Bool(), default=True)
    position: int | Unset = arg(Position, default=UNSET)


@record
class RoutingRuleChange:
    name: str | Unset = arg(Name, default=UNSET)
    enabled: bool | Unset = arg(Bool(), default=UNSET)
    on: JsonValue | Unset = arg(On, default=UNSET)
    match: str | Unset = arg(MatchArg, default=UNSET)
    conditions: JsonValue | Unset = arg(Conditions, default=UNSET)
    actions: JsonValue | Unset = arg(Actions, default=UNSET)


@record
class RuleOrder:
    rule_ids: list[int] = arg(List(Id, max_items=MAX_PER_WORKSPACE))


@record
class RoutingSettingsChange:
    mode: str = arg(Mode)


async def list_rules_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, list_routing_rules, call.actor)


async def get_rule_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, routing_rule_detail, call.actor, call.path["rule_id"])


async def create_rule_handler(call: Call[NewRoutingRule, None]) -> JsonValue:
    b = call.body
    rule_id = await perform(
        call.runtime,
        call.actor,
        do_create_routing_rule,
        name=b.name,
        conditions=b.conditions,
        actions=b.actions,
        on=or_none(b.on),
        match=b.match,
        enabled=b.enabled,
        position=or_none(b.position),
    )
    return await read(call.runtime, routing_rule_detail, call.actor, rule_id)


async def update_rule_handler(call: Call[RoutingRuleChange, None]) -> JsonValue:
    b, rule_id = call.body, call.path["rule_id"]
    if not given(b):
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_routing_rule,
        rule_id=rule_id,
        name=or_none(b.name),
        enabled=or_none(b.enabled),
        on=or_none(b.on),
        match=or_none(b.match),
        conditions=or_none(b.conditions),
        actions=or_none(b.actions),
    )
    return await read(call.runtime, routing_rule_detail, call.actor, rule_id)


async def delete_rule_handler(call: Call[None, None]) -> JsonValue:
    await perform(call.runtime, call.actor, do_delete_routing_rule, rule_id=call.path["rule_id"])
    return {"deleted": True}


async def reorder_rules_handler(call: Call[RuleOrder, None]) -> JsonValue:
    await perform(call.runtime, call.actor, do_reorder_routing_rules, rule_ids=call.body.rule_ids)
    return await read(call.runtime, list_routing_rules, call.actor)


async def get_settings_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, routing_settings, call.actor)


async def update_settings_handler(call: Call[RoutingSettingsChange, None]) -> JsonValue:
    await perform(call.runtime, call.actor, do_set_routing_mode, mode=call.body.mode)
    return await read(call.runtime, routing_settings, call.actor)


async def conversation_routing_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, conversation_routing, call.actor, call.path["conversation_id"])


TAG = "routing"
ALL = "/routing_rules"
ONE = "/routing_rules/{rule_id}"

# The fixed paths come before ONE: Starlette takes the first route whose
# path matches, and "settings" would otherwise be read as a rule id.
ENDPOINTS = [
    Endpoint("GET", ALL, list_rules_handler, "The routing mode and the rules in order", TAG),
    Endpoint(
        "POST",
        ALL,
        create_rule_handler,
        "Add a routing rule (admins)",
        TAG,
        body=NewRoutingRule,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "POST",
        f"{ALL}/reorder",
        reorder_rules_handler,
        "Put the routing rules in a new order (admins)",
        TAG,
        body=RuleOrder,
    ),
    Endpoint("GET", f"{ALL}/settings", get_settings_handler, "The routing mode", TAG),
    Endpoint(
        "PATCH",
        f"{ALL}/settings",
        update_settings_handler,
        "Route by the first matching rule or by all of them (admins)",
        TAG,
        body=RoutingSettingsChange,
    ),
    Endpoint("GET", ONE, get_rule_handler, "Show a routing rule", TAG),
    Endpoint(
        "PATCH",
        ONE,
        update_rule_handler,
        "Change a routing rule (admins)",
        TAG,
        body=RoutingRuleChange,
    ),
    Endpoint("DELETE", ONE, delete_rule_handler, "Delete a routing rule (admins)", TAG),
    Endpoint(
        "GET",
        "/conversations/{conversation_id}/routing",
        conversation_routing_handler,
        "What routing rules did to a conversation, oldest first",
        TAG,
    ),
]
