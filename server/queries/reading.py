"""`read`: run a query function in a read transaction. Transports use this
instead of touching the database handle themselves.

`read` needs a database and nothing else of the running server: it takes
any `Reader` (server.runtime.Runtime is one), so queries never depend on
the process that hosts them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.db import Database

P = ParamSpec("P")
T = TypeVar("T")


class Reader(Protocol):
    """What reading uses: the database."""

    @property
    def db(self) -> Database: ...


async def read(
    source: Reader,
    query: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    async with source.db.read() as conn:
        return await query(conn, *args, **kwargs)
