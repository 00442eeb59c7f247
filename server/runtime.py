"""The running server's shared parts, built once and handed to every
transport: settings, database, bus, clock, secret box, blob store."""

from __future__ import annotations

import dataclasses

from server.bus.base import Bus
from server.bus.factory import make_bus
from server.clock import Clock, SystemClock
from server.settings import Settings
from server.storage.blobs import BlobStore, LocalBlobStore
from server.storage.db import Database
from server.storage.secrets import SecretBox


@dataclasses.dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    clock: Clock
    secrets: SecretBox
    blobs: BlobStore

    @classmethod
    def create(
        cls, settings: Settings, *, clock: Clock | None = None, bus: Bus | None = None
    ) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            bus=bus or make_bus(settings.redis_url),
            clock=clock or SystemClock(),
            secrets=SecretBox(settings.secret_key),
            blobs=LocalBlobStore(settings.data_dir / "attachments"),
        )

    async def close(self) -> None:
        await self.bus.close()
        await self.db.dispose()
