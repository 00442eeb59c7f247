"""Redis bus: PUBLISH/SUBSCRIBE between several `serve` and `worker` processes.

Publishing uses a small connection pool with short timeouts: with Redis down
or hung, `publish` raises within `timeout` seconds (a second by default), the
caller logs it, and listeners resume from the events table (PROTOCOLS.md P1).

Subscribing shares ONE pub/sub connection per bus, however many local
subscribers there are. A reader task reads it and fans each message out to
the local subscriptions of its topic (the bounded buffers of `MemoryBus`).
A Redis channel is subscribed while at least one local subscriber of its
topic exists; the last one leaving unsubscribes it.

When the connection drops (Redis stopped, the network gone, or no answer to
a PING within `ping_interval`) every subscription is marked lost. The reader
reconnects with capped exponential backoff and jitter, subscribes again to
every topic that still has subscribers and, once Redis confirms, marks those
subscriptions lost once more: messages flow again from that point, and a
replay from the database made after it covers the whole outage (see
`Subscription.losses`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from server.bus.memory import DEFAULT_BUFFER, MemorySubscription

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1.0
DEFAULT_PING_INTERVAL = 5.0
DEFAULT_RECONNECT_MIN = 0.1
DEFAULT_RECONNECT_MAX = 5.0
# Channels are namespaced, so a Redis shared with other applications is fine.
DEFAULT_PREFIX = "threadline:"

# What a broken connection raises; anything else is a bug and propagates.
_FAILURES = (RedisError, OSError)

_Confirmation = tuple[str, Callable[[], None]]


class _Topic:
    """The local subscribers of one Redis channel."""

    def __init__(self, ready: asyncio.Future[None]) -> None:
        self.subscribers: set[MemorySubscription] = set()
        # Done once Redis has confirmed the SUBSCRIBE, or the connection is
        # down (the subscribers are then lost anyway).
        self.ready = ready


class RedisBus:
    """A `Bus` on Redis pub/sub. Create it anywhere; it connects on first use.

    `subscribe` returns once Redis has confirmed the channel, at once while
    Redis is known to be down (the subscription then starts lost), and at
    the latest when the connection is declared dead: about `timeout` for an
    unreachable Redis, two `ping_interval`s for a hung one.
    """

    def __init__(
        self,
        url: str,
        *,
        buffer: int = DEFAULT_BUFFER,
        timeout: float = DEFAULT_TIMEOUT,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        reconnect_min: float = DEFAULT_RECONNECT_MIN,
        reconnect_max: float = DEFAULT_RECONNECT_MAX,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        options: dict[str, Any] = {
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "socket_keepalive": True,
            # One immediate retry, only for a connection found closed (Redis
            # restarted since it was pooled). A timeout is never retried: that
            # would only stretch the time a write waits.
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            **parse_url(url),
            # Whatever the URL says: the reader parses pub/sub replies as
            # RESP2 bytes. (redis-py 8 defaults to RESP3, under which its pool
            # also stops weeding out connections Redis closed, and each new
            # connection asks for maintenance notifications Redis < 8 lacks.)
            "protocol": 2,
            "decode_responses": False,
        }
        self._client = Redis.from_pool(ConnectionPool(**options))
        self._buffer = buffer
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._prefix = prefix
        self._topics: dict[str, _Topic] = {}
        # Per channel, what to do when Redis confirms each SUBSCRIBE sent
        # for it, oldest first (Redis answers in order).
        self._confirmations: defaultdict[str, deque[Callable[[], None]]] = defaultdict(deque)
        # The pub/sub connection while it is up; None while it is down.
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        # Commands on the pub/sub connection go out one at a time, in the
        # order their confirmations are queued.
        self._send_lock = asyncio.Lock()
        self._closed = False

    # --- Bus ---------------------------------------------------------------

    async def publish(self, topic: str, message: bytes) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        async with asyncio.timeout(self._timeout):
            await self._client.publish(self._prefix + topic, message)

    async def ping(self) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        async with asyncio.timeout(self._timeout):
            await self._client.ping()

    async def subscribe(self, topic: str) -> MemorySubscription:
        if self._closed:
            raise RuntimeError("the bus is closed")
        await self._start()
        name = self._prefix + topic
        sub = MemorySubscription(self, name, self._buffer)
        entry = self._topics.get(name)
        is_new = entry is None
        if entry is None:
            entry = self._topics[name] = _Topic(asyncio.get_running_loop().create_future())
        entry.subscribers.add(sub)
        conn = self._conn
        if conn is None:
            # Nothing arrives until the connection is back: say so now.
            sub.mark_lost()
            _resolve(entry.ready)
        try:
            if conn is not None and is_new:
                ready = entry.ready
                await self._send(conn, "SUBSCRIBE", name, confirm=[(name, lambda: _resolve(ready))])
            # Messages published from here on reach `sub`.
            await asyncio.shield(entry.ready)
        except BaseException:
            await sub.close()
            raise
        if self._closed:
            raise RuntimeError("the bus is closed")
        return sub

    async def unsubscribe(self, topic: str, sub: MemorySubscription) -> None:
        """Called by `sub.close()` with its channel (the prefixed topic):
        forget it; the last one out unsubscribes the channel."""
        entry = self._topics.get(topic)
        if entry is None or sub not in entry.subscribers:
            return
        entry.subscribers.discard(sub)
        if entry.subscribers:
            return
        del self._topics[topic]
        conn = self._conn
        if conn is not None and not self._closed:
            await self._send(conn, "UNSUBSCRIBE", topic)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for entry in list(self._topics.values()):
            _resolve(entry.ready)
            for sub in list(entry.subscribers):
                await sub.close()
        reader, self._reader = self._reader, None
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect(nowait=True)  # a pending read fails at once
        if reader is not None:
            # Cancel until it has ended: on Python 3.11 a cancellation can be
            # lost (asyncio.wait_for, which redis-py uses, swallows one that
            # races with completion). The reader also stops on its own once
            # it sees the bus closed.
            while not reader.done():
                reader.cancel()
                await asyncio.wait({reader}, timeout=0.1)
        await self._client.aclose()

    # --- The pub/sub connection ------------------------------------------

    async def _start(self) -> None:
        """Connect and start the reader, on first use."""
        if self._reader is not None:
            return
        async with self._start_lock:
            if self._reader is not None:
                return
            conn = await self._connect()
            if self._closed:
                if conn is not None:
                    await conn.disconnect()
                raise RuntimeError("the bus is closed")
            if conn is not None:
                await self._install(conn)
            self._reader = asyncio.create_task(self._run(conn), name="redis-bus-reader")

    async def _connect(self) -> AbstractConnection | None:
        # A connection of its own, built like the pool's (same URL and
        # options) but never lent out by it.
        pool = self._client.connection_pool
        conn: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
        try:
            # What connect() runs; unlike it, annotated for the type checker.
            await conn.connect_check_health(retry_socket_connect=False)
        except _FAILURES as exc:
            log.debug("redis bus: connecting failed: %s", exc)
            await conn.disconnect(nowait=True)
            return None
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        return conn

    async def _install(self, conn: AbstractConnection) -> None:
        """Make `conn` the live connection and subscribe it to every topic
        that has subscribers. Those existed while no connection was up, so
        they are marked lost once Redis confirms: from then on, messages
        arrive again."""
        self._conn = conn
        confirm: list[_Confirmation] = []
        loop = asyncio.get_running_loop()
        for name, entry in self._topics.items():
            entry.ready = loop.create_future()
            confirm.append(
                (name, functools.partial(_resubscribed, entry, tuple(entry.subscribers)))
            )
        if confirm:
            await self._send(conn, "SUBSCRIBE", *(name for name, _ in confirm), confirm=confirm)
        # An answer proves the connection healthy, which resets the backoff.
        await self._send(conn, "PING")

    async def _send(
        self, conn: AbstractConnection, *args: str, confirm: Iterable[_Confirmation] = ()
    ) -> None:
        async with self._send_lock:
            # Skip if the connection has dropped meanwhile: the drop settled
            # everything (and sending would silently reconnect it).
            if self._conn is not conn or not conn.is_connected:
                return
            for name, callback in confirm:
                self._confirmations[name].append(callback)
            try:
                await conn.send_command(*args, check_health=False)
            except _FAILURES as exc:
                log.warning("redis bus: sending %s failed: %s", args[0], exc)
                # The reader's pending read fails on it and handles the drop.
                await conn.disconnect(nowait=True)

    async def _run(self, conn: AbstractConnection | None) -> None:
        """The reader: read while connected, reconnect when not, until the
        bus is closed."""
        failures = 0
        while not self._closed:
            if conn is None:
                await asyncio.sleep(self._backoff(failures))
                failures += 1
                conn = await self._connect()
                if conn is None:
                    continue
                if self._closed:
                    await conn.disconnect(nowait=True)
                    return
                await self._install(conn)
                log.info("redis bus: connected")
            try:
                healthy = await self._read(conn)
            except Exception:
                # A bug, not an outage; starting over beats going deaf.
                log.exception("redis bus: reader failed")
                healthy = False
            await self._drop(conn)
            conn = None
            if healthy:
                failures = 0

    async def _read(self, conn: AbstractConnection) -> bool:
        """Dispatch what arrives until the connection fails; return whether
        it ever answered."""
        healthy = False
        awaiting_pong = False
        while not self._closed:
            try:
                response = await conn.read_response(
                    timeout=self._ping_interval, disconnect_on_error=False
                )
            except _FAILURES as exc:
                if not self._closed:
                    log.warning(
                        "redis bus: connection lost (%s); subscribers resume from the database",
                        exc,
                    )
                return healthy
            if response is None:  # silence for ping_interval
                if awaiting_pong:
                    log.warning("redis bus: no answer to PING; reconnecting")
                    return healthy
                awaiting_pong = True
                await self._send(conn, "PING")
                continue
            healthy = True
            awaiting_pong = False
            self._dispatch(response)
        return healthy

    def _dispatch(self, response: object) -> None:
        # Pub/sub replies are [kind, channel, payload]; a PONG is not.
        if not isinstance(response, list) or len(response) != 3:
            return
        kind, channel, payload = response
        if not isinstance(channel, bytes):
            return
        name = channel.decode("utf-8", errors="replace")
        if kind == b"message" and isinstance(payload, bytes):
            entry = self._topics.get(name)
            if entry is not None:
                for sub in tuple(entry.subscribers):
                    sub.deliver(payload)
        elif kind == b"subscribe":
            pending = self._confirmations.get(name)
            if pending:
                pending.popleft()()
                if not pending:
                    del self._confirmations[name]

    async def _drop(self, conn: AbstractConnection) -> None:
        self._conn = None
        self._confirmations.clear()
        for entry in self._topics.values():
            _resolve(entry.ready)
            for sub in tuple(entry.subscribers):
                sub.mark_lost()
        await conn.disconnect(nowait=True)

    def _backoff(self, failures: int) -> float:
        delay = min(self._reconnect_max, self._reconnect_min * 2 ** min(failures, 30))
        # Jitter keeps many processes from reconnecting in lockstep.
        return random.uniform(delay / 2, delay)  # noqa: S311 - not a secret


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _resubscribed(entry: _Topic, subscribers: tuple[MemorySubscription, ...]) -> None:
    for sub in subscribers:
        sub.mark_lost()
    _resolve(entry.ready)
