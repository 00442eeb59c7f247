"""A workspace's touchpoint settings (server.domain.touch_settings): an
admin changes the zone of last resort, the frequency caps, the quiet
hours or the consent mode. Keys left out keep what is stored; the whole
result is stored in its round-trip form under `settings["touchpoints"]`,
beside the workspace's other settings, which are left alone."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_settings import (
    SETTINGS_KEY,
    TouchSettings,
    parse_touch_settings,
    settings_json,
    touch_settings_of,
)
from server.queries.access import require_admin
from server.storage import tables as t

# The parser names fields under this prefix; the request has them at its top.
_PREFIX = "settings"


def _parse(changes: Mapping[str, JsonValue], base: TouchSettings) -> TouchSettings:
    try:
        return parse_touch_settings(dict(changes), _PREFIX, base=base)
    except InvalidInput as exc:
        field = (exc.field or "").removeprefix(f"{_PREFIX}.")
        message = exc.message.removeprefix(f"{_PREFIX}.")
        raise InvalidInput(message, field=field or "body") from None


async def do_update_touch_settings(
    ctx: ActionContext, *, changes: Mapping[str, JsonValue]
) -> TouchSettings:
    """Apply `changes` (any of timezone, caps, quiet_hours, consent) over
    the stored settings; returns the settings now in force."""
    require_admin(ctx.actor)
    w = t.workspaces.c
    stored = await ctx.conn.scalar(
        sa.select(w.settings).where(w.id == ctx.actor.workspace_id).with_for_update()
    )
    current = dict(stored) if isinstance(stored, dict) else {}
    settings = _parse(changes, touch_settings_of(current))
    current[SETTINGS_KEY] = settings_json(settings)
    await ctx.conn.execute(
        t.workspaces.update().where(w.id == ctx.actor.workspace_id).values(settings=current)
    )
    return settings
