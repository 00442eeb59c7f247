"""Previews of touchpoint templates for the editor: a step's variant (or
a draft not saved yet) rendered with a real contact's latest data, as a
send would see it now, or with sample data. A template error is an
InvalidInput naming the field (`steps[0].variants[1].body`) and line."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.queries.access import access_contact
from server.queries.touch_data import touch_data
from server.queries.touchpoints import touchpoint_spec
from server.touch_templates import (
    Rendered,
    TemplateError,
    TemplateSource,
    render_template,
    sample_data,
)

# What a preview shows where a send would have its own: a made-up code and
# a link that unsubscribes nobody.
_PREVIEW_PROMO: dict[str, JsonValue] = {"code": "PREVIEW-CODE", "expires_at": None}
_PREVIEW_LINKS: dict[str, JsonValue] = {"unsubscribe": "https://example.invalid/unsubscribe"}


def _rendered(rendered: Rendered) -> dict[str, JsonValue]:
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}


def _render(source: TemplateSource, data: Mapping[str, object], prefix: str) -> JsonValue:
    try:
        return _rendered(render_template(source, data))
    except TemplateError as exc:
        field = prefix + exc.field
        raise InvalidInput(f"{prefix}{exc}", field=field) from None


async def _contact_data(
    conn: AsyncConnection,
    actor: Actor,
    contact_id: int,
    *,
    touchpoint_name: str,
    promo: bool,
) -> dict[str, JsonValue]:
    """The template data of a real contact, as a send would see it now
    (without an episode: the latest cart, the last order)."""
    await access_contact(conn, actor, contact_id)
    return await touch_data(
        conn,
        workspace_id=actor.workspace_id,
        contact_id=contact_id,
        episode_context={},
        promo=_PREVIEW_PROMO if promo else None,
        links=_PREVIEW_LINKS,
        touchpoint_name=touchpoint_name,
    )


async def step_preview(
    conn: AsyncConnection,
    actor: Actor,
    touchpoint_id: int,
    *,
    contact_id: int,
    position: int = 0,
    variant_id: str | None = None,
) -> JsonValue:
    """Step `position`'s variant `variant_id` (the first when None) of the
    touchpoint's current version, for the contact."""
    row, spec = await touchpoint_spec(conn, actor.workspace_id, touchpoint_id)
    if position >= len(spec.steps):
        raise InvalidInput(
            f"position: the touchpoint has {len(spec.steps)} steps", field="position"
        )
    variants = spec.steps[position].variants
    index = 0
    if variant_id is not None:
        found = [i for i, v in enumerate(variants) if v.id == variant_id]
        if not found:
            raise InvalidInput(f"variant: step {position} has no {variant_id!r}", field="variant")
        index = found[0]
    variant = variants[index]
    data = await _contact_data(
        conn,
        actor,
        contact_id,
        touchpoint_name=row.name,
        promo=variant.promo_pool_id is not None,
    )
    return _render(
        TemplateSource(variant.subject, variant.body, variant.html),
        data,
        f"steps[{position}].variants[{index}].",
    )


async def draft_preview(
    conn: AsyncConnection, actor: Actor, source: TemplateSource, *, contact_id: int | None
) -> JsonValue:
    """A template not saved yet, for the contact or, without one, for the
    sample data the editor starts with."""
    data: Mapping[str, object]
    if contact_id is None:
        data = sample_data()
    else:
        data = await _contact_data(conn, actor, contact_id, touchpoint_name="Preview", promo=True)
    return _render(source, data, "")
