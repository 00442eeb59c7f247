"""What touchpoints read about a contact: its time zone and attributes.

Scheduling a step (server.actions.touch_episodes) and the guards at claim
time (quiet hours, local send times) must agree on the contact's zone, so
both read it here: the contact's own `timezone` attribute, else the zone
its latest widget session reported, else the workspace's touchpoint
`timezone` setting (server.domain.touch_settings, the one admins edit on
the settings page), else UTC (server.domain.touch_guards.resolve_zone; an invalid
name is passed over, never an error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.domain.touch_guards import resolve_zone
from server.domain.touch_settings import touch_settings_of
from server.storage import tables as t


@dataclasses.dataclass(frozen=True, slots=True)
class ContactTiming:
    """A contact's zone and the attributes a date-relative step reads."""

    zone: ZoneInfo
    attributes: Mapping[str, JsonValue]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def contact_timing(
    conn: AsyncConnection, workspace_id: int, contact_id: int
) -> ContactTiming:
    """The contact's zone and attributes, in one read."""
    vs = t.visitor_sessions.c
    widget_zone = (
        sa.select(vs.timezone)
        .where(vs.contact_id == t.contacts.c.id, vs.timezone.is_not(None))
        .order_by(vs.last_seen_at.desc(), vs.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            sa.select(t.contacts.c.attributes, t.workspaces.c.settings, widget_zone.label("widget"))
            .join(t.workspaces, t.workspaces.c.id == t.contacts.c.workspace_id)
            .where(t.contacts.c.id == contact_id, t.contacts.c.workspace_id == workspace_id)
        )
    ).first()
    if row is None:
        raise NotFound("contact not found")
    attributes = row.attributes if isinstance(row.attributes, Mapping) else {}
    workspace_zone = touch_settings_of(row.settings).timezone
    zone = resolve_zone(_text(attributes.get("timezone")), _text(row.widget), workspace_zone)
    return ContactTiming(zone, attributes)


async def contact_zone(conn: AsyncConnection, workspace_id: int, contact_id: int) -> ZoneInfo:
    """The IANA zone the contact lives in, as far as we know."""
    return (await contact_timing(conn, workspace_id, contact_id)).zone


async def contact_timings(
    conn: AsyncConnection, workspace_id: int, contact_ids: set[int]
) -> dict[int, ContactTiming]:
    """`contact_timing` of many contacts of one workspace, in one read
    (the claim reads a whole batch's); contacts not found are absent."""
    if not contact_ids:
        return {}
    vs, c = t.visitor_sessions.c, t.contacts.c
    widget_zone = (
        sa.select(vs.timezone)
        .where(vs.contact_id == c.id, vs.timezone.is_not(None))
        .order_by(vs.last_seen_at.desc(), vs.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = await conn.execute(
        sa.select(c.id, c.attributes, t.workspaces.c.settings, widget_zone.label("widget"))
        .join(t.workspaces, t.workspaces.c.id == c.workspace_id)
        .where(c.id.in_(contact_ids), c.workspace_id == workspace_id)
    )
    timings = {}
    for row in rows:
        attributes = row.attributes if isinstance(row.attributes, Mapping) else {}
        settings = row.settings if isinstance(row.settings, Mapping) else {}
        zone = resolve_zone(
            _text(attributes.get("timezone")), _text(row.widget), _text(settings.get("timezone"))
        )
        timings[row.id] = ContactTiming(zone, attributes)
    return timings
