"""What readiness reports about the database: the schema revision it is at
and the one this code needs."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.migrate import current_revision, head_revision


@dataclasses.dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: never migrated
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head


async def schema_state(conn: AsyncConnection) -> SchemaState:
    return SchemaState(await current_revision(conn), head_revision())
