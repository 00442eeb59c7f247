"""REST: touchpoints (F7, API.md of the engine) — the list with counts,
the editor's create / read / replace / status, previews, the seed
templates, decisions and their settling, a contact's touches and the
workspace's touchpoint settings.

Writes are admins' (the actions check); reads every agent's. A spec is
the body `parse_touchpoint` reads: the fields are declared here for their
form (so a malformed body is refused by field before anything runs) and
the domain parser reads their meaning. Every template of every variant
is parsed at save time: a Liquid error is a 422 naming
`steps[i].variants[j].body` and the line.

Two routes take text where API.md has a path parameter, because every
path parameter of this API is an object id: a seed is installed with
`POST /touchpoint_seeds/install {"seed": "abandoned_cart"}`.
"""

from __future__ import annotations

from typing import ClassVar

from server.actions.context import perform
from server.actions.touch_seeds import do_install_seed
from server.actions.touch_settings import do_update_touch_settings
from server.actions.touch_settlement import OUTCOMES, Outcome, do_settle_decision
from server.actions.touchpoints import (
    do_create_touchpoint,
    do_set_touchpoint_status,
    do_update_touchpoint,
)
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_seeds import SEEDS
from server.domain.touch_settings import ConsentMode
from server.domain.touch_timing import MAX_CAPS
from server.domain.touchpoints import (
    MAX_DESCRIPTION,
    MAX_EXIT_RULES,
    MAX_HOLDOUT,
    MAX_KEY,
    MAX_NAME,
    MAX_PRIORITY,
    MAX_STEPS,
    MAX_SUBJECT,
    DecisionState,
    Reentry,
    TouchKind,
    TouchpointSpec,
    TouchStatus,
    parse_touchpoint,
)
from server.http.api import Call, Endpoint
from server.queries.reading import read
from server.queries.touch_previews import draft_preview, step_preview
from server.queries.touch_settings import touch_settings_view
from server.queries.touch_views import (
    DEFAULT_DECISIONS,
    MAX_DECISIONS,
    contact_touchpoints,
    decision_detail,
    list_decisions,
    touchpoint_detail_view,
    touchpoints_view,
)
from server.touch_templates import (
    MAX_BODY_SOURCE_CHARS,
    TemplateSource,
    check_template,
)
from server.wire.records import UNSET, Unset, arg, given, record, wire_form
from server.wire.schema import Bool, Duration, Id, Int, JsonMap, List, Nullable, Str

# A step holds up to five variants of 64 KiB templates; the JSON body's
# own limit (THREADLINE_MAX_BODY_BYTES) bounds the whole.
STEP_BYTES = 1_000_000
Status = Str.enum(TouchStatus)


@record
class SpecBody:
    DOC: ClassVar[str] = "a touchpoint as server.domain.touchpoints.parse_touchpoint reads it"

    name: str = arg(Str(max_length=MAX_NAME, min_length=1))
    description: str | Unset = arg(Str(max_length=MAX_DESCRIPTION), default=UNSET)
    kind: str | Unset = arg(Str.enum(TouchKind), default=UNSET)
    trigger: dict[str, JsonValue] = arg(
        JsonMap(max_keys=20, max_depth=1, description="kind, name, where, segment_id, ...")
    )
    steps: list[dict[str, JsonValue]] = arg(
        List(
            JsonMap(max_keys=20, max_depth=2, max_bytes=STEP_BYTES, description="a step"),
            max_items=MAX_STEPS,
        )
    )
    episode_key: str | Unset | None = arg(Nullable(Str(max_length=MAX_KEY)), default=UNSET)
    exit_rules: list[dict[str, JsonValue]] | Unset = arg(
        List(JsonMap(max_keys=10, max_depth=1), max_items=MAX_EXIT_RULES), default=UNSET
    )
    goal: dict[str, JsonValue] | Unset | None = arg(
        Nullable(JsonMap(max_keys=10, max_depth=1)), default=UNSET
    )
    reentry: str | Unset = arg(Str.enum(Reentry), default=UNSET)
    cooldown: int | str | Unset | None = arg(Nullable(Duration()), default=UNSET)
    priority: int | Unset = arg(Int(minimum=0, maximum=MAX_PRIORITY), default=UNSET)
    holdout_percent: int | Unset = arg(Int(minimum=0, maximum=MAX_HOLDOUT), default=UNSET)
    max_lateness: int | str | Unset | None = arg(Nullable(Duration()), default=UNSET)
    quiet_hours: dict[str, JsonValue] | Unset | None = arg(
        Nullable(JsonMap(max_keys=10)), default=UNSET
    )
    inbox_id: int | Unset | None = arg(Nullable(Id), default=UNSET)
    entry_segment_id: int | Unset | None = arg(Nullable(Id), default=UNSET)


@record
class NewTouchpoint(SpecBody):
    status: str | Unset = arg(Status, default=UNSET)


@record
class StatusChange:
    status: str = arg(Status)


@record
class StepPreview:
    contact_id: int = arg(Id)
    position: int = arg(Int(minimum=0, maximum=MAX_STEPS - 1), default=0)
    variant: str | None = arg(Nullable(Str(max_length=40, min_length=1)), default=None)


@record
class DraftPreview:
    contact_id: int | None = arg(Nullable(Id), default=None)
    subject: str = arg(Str(max_length=MAX_SUBJECT, strip=False), default="")
    body: str = arg(Str(max_length=MAX_BODY_SOURCE_CHARS, strip=False))
    html: bool = arg(Bool(), default=False)


@record
class SeedInstall:
    seed: str = arg(Str(max_length=40, min_length=1, description="a seed's id"))


@record
class DecisionsQuery:
    state: str | None = arg(Str.enum(DecisionState), default=None)
    touchpoint_id: int | None = arg(Id, default=None)
    contact_id: int | None = arg(Id, default=None)
    limit: int = arg(Int(minimum=1, maximum=MAX_DECISIONS), default=DEFAULT_DECISIONS)
    cursor: str | None = arg(Str(max_length=200), default=None)


@record
class Settlement:
    outcome: str = arg(Str(max_length=16, choices=OUTCOMES))


@record
class SettingsChange:
    timezone: str | Unset = arg(Str(max_length=64, description="IANA zone"), default=UNSET)
    caps: dict[str, JsonValue] | Unset = arg(
        JsonMap(
            max_keys=MAX_CAPS,
            max_depth=2,
            description='{"marketing": [{"count": 1, "window": "16h"}], "service": [...]}',
        ),
        default=UNSET,
    )
    quiet_hours: dict[str, JsonValue] | Unset = arg(
        JsonMap(max_keys=10, description='{"start": "21:00", "end": "08:00"}'), default=UNSET
    )
    consent: str | Unset = arg(Str.enum(ConsentMode), default=UNSET)


def check_templates(spec: TouchpointSpec) -> None:
    """Every variant's subject and body parse as Liquid (InvalidInput
    naming `steps[i].variants[j].body` and the line otherwise)."""
    for step in spec.steps:
        for j, variant in enumerate(step.variants):
            check_template(
                TemplateSource(variant.subject, variant.body, variant.html),
                field_prefix=f"steps[{step.position}].variants[{j}].",
            )


def _spec(body: SpecBody) -> TouchpointSpec:
    sent = wire_form(given(body))
    assert isinstance(sent, dict)
    sent.pop("status", None)
    return parse_touchpoint(sent)


async def list_touchpoints_handler(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, touchpoints_view, call.actor)


async def create_touchpoint(call: Call[NewTouchpoint, None]) -> JsonValue:
    b = call.body
    touchpoint_id = await perform(
        call.runtime,
        call.actor,
        do_create_touchpoint,
        spec=_spec(b),
        status=TouchStatus.DRAFT if isinstance(b.status, Unset) else TouchStatus(b.status),
        validate_templates=check_templates,
    )
    return await read(call.runtime, touchpoint_detail_view, call.actor, touchpoint_id)


async def get_touchpoint(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, touchpoint_detail_view, call.actor, call.path["touchpoint_id"])


async def replace_touchpoint(call: Call[SpecBody, None]) -> JsonValue:
    touchpoint_id = call.path["touchpoint_id"]
    await perform(
        call.runtime,
        call.actor,
        do_update_touchpoint,
        touchpoint_id=touchpoint_id,
        spec=_spec(call.body),
        validate_templates=check_templates,
    )
    return await read(call.runtime, touchpoint_detail_view, call.actor, touchpoint_id)


async def set_touchpoint_status(call: Call[StatusChange, None]) -> JsonValue:
    touchpoint_id = call.path["touchpoint_id"]
    await perform(
        call.runtime,
        call.actor,
        do_set_touchpoint_status,
        touchpoint_id=touchpoint_id,
        status=TouchStatus(call.body.status),
    )
    return await read(call.runtime, touchpoint_detail_view, call.actor, touchpoint_id)


# -- previews ------------------------------------------------------------------


async def preview_step(call: Call[StepPreview, None]) -> JsonValue:
    b = call.body
    return await read(
        call.runtime,
        step_preview,
        call.actor,
        call.path["touchpoint_id"],
        contact_id=b.contact_id,
        position=b.position,
        variant_id=b.variant,
    )


async def preview_draft(call: Call[DraftPreview, None]) -> JsonValue:
    b = call.body
    return await read(
        call.runtime,
        draft_preview,
        call.actor,
        TemplateSource(b.subject, b.body, b.html),
        contact_id=b.contact_id,
    )


# -- seeds -----------------------------------------------------------------------


async def list_seeds(call: Call[None, None]) -> JsonValue:
    return {
        "seeds": [
            {"id": s.id, "name": s.name, "description": s.description, "kind": s.kind}
            for s in SEEDS.values()
        ]
    }


async def install_seed(call: Call[SeedInstall, None]) -> JsonValue:
    touchpoint_id = await perform(
        call.runtime,
        call.actor,
        do_install_seed,
        seed_id=call.body.seed,
        validate_templates=check_templates,
    )
    return await read(call.runtime, touchpoint_detail_view, call.actor, touchpoint_id)


# -- decisions ---------------------------------------------------------------------


async def list_decisions_handler(call: Call[None, DecisionsQuery]) -> JsonValue:
    q = call.query
    return await read(
        call.runtime,
        list_decisions,
        call.actor,
        state=q.state,
        touchpoint_id=q.touchpoint_id,
        contact_id=q.contact_id,
        limit=q.limit,
        cursor=q.cursor,
    )


async def settle_decision(call: Call[Settlement, None]) -> JsonValue:
    decision_id = call.path["decision_id"]
    outcome: Outcome = "sent" if call.body.outcome == "sent" else "resend"
    await perform(
        call.runtime, call.actor, do_settle_decision, decision_id=decision_id, outcome=outcome
    )
    return await read(call.runtime, decision_detail, call.actor, decision_id)


async def get_contact_touchpoints(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, contact_touchpoints, call.actor, call.path["contact_id"])


# -- settings ----------------------------------------------------------------------


async def get_settings(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, touch_settings_view, call.actor)


async def change_settings(call: Call[SettingsChange, None]) -> JsonValue:
    changes = given(call.body)
    if not changes:
        raise InvalidInput("body: nothing to change", field="body")
    sent = wire_form(changes)
    assert isinstance(sent, dict)
    await perform(call.runtime, call.actor, do_update_touch_settings, changes=sent)
    return await read(call.runtime, touch_settings_view, call.actor)


TAG = "touchpoints"
ONE = "/touchpoints/{touchpoint_id}"

ENDPOINTS = [
    Endpoint(
        "GET",
        "/touchpoints",
        list_touchpoints_handler,
        "Touchpoints with their decisions counted by state and skips by reason",
        TAG,
    ),
    Endpoint(
        "POST",
        "/touchpoints",
        create_touchpoint,
        "Create a touchpoint (a draft unless `status` says otherwise; admins)",
        TAG,
        body=NewTouchpoint,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "POST",
        "/touchpoints/preview",
        preview_draft,
        "Render a template for a contact (or sample data) before it is saved",
        TAG,
        body=DraftPreview,
    ),
    Endpoint("GET", ONE, get_touchpoint, "A touchpoint with its whole spec and counts", TAG),
    Endpoint(
        "PUT",
        ONE,
        replace_touchpoint,
        "Replace a touchpoint's spec: a new version (started episodes keep theirs; admins)",
        TAG,
        body=SpecBody,
    ),
    Endpoint(
        "POST",
        ONE + "/status",
        set_touchpoint_status,
        "Switch a touchpoint live, paused, archived or back to draft (admins)",
        TAG,
        body=StatusChange,
    ),
    Endpoint(
        "POST",
        ONE + "/preview",
        preview_step,
        "Render one step's variant with a contact's latest data",
        TAG,
        body=StepPreview,
    ),
    Endpoint(
        "GET",
        "/touchpoint_seeds",
        list_seeds,
        "The ready touchpoints a workspace can install",
        TAG,
    ),
    Endpoint(
        "POST",
        "/touchpoint_seeds/install",
        install_seed,
        "Install a ready touchpoint as an editable draft (admins)",
        TAG,
        body=SeedInstall,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "GET",
        "/decisions",
        list_decisions_handler,
        "Touchpoint decisions, newest first, by state, touchpoint or contact",
        TAG,
        query=DecisionsQuery,
    ),
    Endpoint(
        "POST",
        "/decisions/{decision_id}/settle",
        settle_decision,
        "Settle an unknown decision as sent, or resend it knowingly (admins)",
        TAG,
        body=Settlement,
    ),
    Endpoint(
        "GET",
        "/contacts/{contact_id}/touchpoints",
        get_contact_touchpoints,
        "A contact's upcoming touches and its past ones with their reasons",
        TAG,
    ),
    Endpoint(
        "GET",
        "/settings/touchpoints",
        get_settings,
        "The workspace's touchpoint settings: zone, caps, quiet hours, consent mode",
        TAG,
    ),
    Endpoint(
        "PATCH",
        "/settings/touchpoints",
        change_settings,
        "Change the workspace's touchpoint settings (admins)",
        TAG,
        body=SettingsChange,
    ),
]
