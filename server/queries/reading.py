"""`read`: run a query function in a read transaction. Transports use this
instead of touching the database handle themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    from server.runtime import Runtime

P = ParamSpec("P")
T = TypeVar("T")


async def read(
    runtime: Runtime,
    query: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    async with runtime.db.read() as conn:
        return await query(conn, *args, **kwargs)
