"""Reading a workspace's touchpoint settings, defaults filled in."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.json_types import JsonValue
from server.domain.touch_settings import settings_json, touch_settings_of
from server.storage import tables as t


async def touch_settings_view(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    stored = await conn.scalar(
        sa.select(t.workspaces.c.settings).where(t.workspaces.c.id == actor.workspace_id)
    )
    return settings_json(touch_settings_of(stored))
