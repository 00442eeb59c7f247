"""Two `threadline serve` processes behind one database and one Redis
(PROTOCOLS.md P1, P2): a message written through A reaches a websocket on
B over the Redis bus; with Redis down, writes through A still succeed and
B's sockets get every message from the event log, exactly once and in
`seq` order; with Redis back, messages flow over the bus again.

Nothing here sleeps for a fixed time: every wait is for a condition, under
a timeout that says how prompt it must be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.bus.redis import DEFAULT_PREFIX
from server.realtime.hub import Limits
from tests.multiprocess.conftest import Cluster, ServerProcess

pytestmark = pytest.mark.postgres

# The hub compares with the event log this often: the bound on delivery
# when the bus is down.
POLL_INTERVAL = Limits().poll_interval
LIVE_TIMEOUT = 3.0  # a message over the bus: normally milliseconds
CONVERGE_TIMEOUT = POLL_INTERVAL + 3.0  # Redis down: the next poll catches up
RESUBSCRIBE_TIMEOUT = 15.0  # B's bus reconnects with a backoff capped at 5 s
WRITE_TIMEOUT = 10.0  # no write may hang, Redis or not
CONNECT_TIMEOUT = 10.0
ROUND_TRIPS = 5
WORKSPACE_CHANNELS = DEFAULT_PREFIX + "ws.*"


class Feed:
    """One websocket client on /ws/agent: every frame it received, and
    waits on the messages of one conversation."""

    def __init__(
        self, name: str, ws: ClientConnection, cluster: Cluster, conversation_id: int
    ) -> None:
        self.name = name
        self.ws = ws
        self.cluster = cluster
        self.conversation_id = conversation_id
        self.frames: list[dict[str, Any]] = []
        self.ready: dict[str, Any] = {}

    def messages(self) -> list[dict[str, Any]]:
        return [
            f
            for f in self.frames
            if f.get("type") == "message.created"
            and f.get("conversation_id") == self.conversation_id
        ]

    def seqs(self) -> list[int]:
        return [m["seq"] for m in self.messages()]

    async def _receive(self) -> dict[str, Any]:
        try:
            raw = await self.ws.recv()
        except ConnectionClosed as exc:
            self.cluster.check_alive()
            raise AssertionError(f"{self.name}: the socket closed: {exc}") from None
        frame: dict[str, Any] = json.loads(raw)
        self.frames.append(frame)
        return frame

    async def wait_ready(self) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                while (await self._receive()).get("type") != "ready":
                    pass
        except TimeoutError:
            self.cluster.check_alive()
            raise AssertionError(f"{self.name}: no ready frame; got {self.frames}") from None
        self.ready = self.frames[-1]

    async def wait_for_seq(self, seq: int, timeout: float) -> None:
        """Read frames until message `seq` of the conversation is here."""
        try:
            async with asyncio.timeout(timeout):
                while seq not in self.seqs():
                    await self._receive()
        except TimeoutError:
            self.cluster.check_alive()
            raise AssertionError(
                f"{self.name}: message seq {seq} did not arrive within {timeout} s; "
                f"got seqs {self.seqs()}"
            ) from None

    def assert_exactly(self, sent: list[dict[str, Any]]) -> None:
        """The messages received are exactly `sent`: each once, in seq
        order, with its text; and every event came in event_id order."""
        got = [(m["seq"], m["data"]["message_id"], m["data"]["text"]) for m in self.messages()]
        want = [(m["seq"], m["id"], m["text"]) for m in sent]
        assert got == want, f"{self.name}: received {got}, sent {want}"
        ids = [f["event_id"] for f in self.frames if "event_id" in f]
        assert ids == sorted(set(ids)), f"{self.name}: event ids out of order: {ids}"


@contextlib.asynccontextmanager
async def open_feed(
    name: str,
    cluster: Cluster,
    server: ServerProcess,
    conversation_id: int,
    *,
    last_event_id: int | None = None,
) -> AsyncIterator[Feed]:
    """A bot-style client (API token in the Authorization header), ready."""
    url = f"{server.ws_url}/ws/agent"
    if last_event_id is not None:
        url += f"?last_event_id={last_event_id}"
    async with connect(
        url, additional_headers=cluster.bearer_headers(), open_timeout=CONNECT_TIMEOUT
    ) as ws:
        feed = Feed(name, ws, cluster, conversation_id)
        await feed.wait_ready()
        yield feed


class BusWatch:
    """A Redis client of the test's own, pattern-subscribed to every
    workspace channel: what the servers publish, seen on the wire."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.pubsub = client.pubsub()

    async def next_message_of(self, conversation_id: int, seq: int) -> None:
        async with asyncio.timeout(LIVE_TIMEOUT):
            while True:
                raw = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if raw is None or raw["type"] != "pmessage":
                    continue
                event = json.loads(raw["data"])
                if (
                    event["type"] == "message.created"
                    and event["conversation_id"] == conversation_id
                    and event["data"]["seq"] == seq
                ):
                    return


@contextlib.asynccontextmanager
async def watch_bus(url: str) -> AsyncIterator[BusWatch]:
    client = Redis.from_url(url, protocol=2)
    watch = BusWatch(client)
    try:
        await watch.pubsub.psubscribe(WORKSPACE_CHANNELS)
        yield watch
    finally:
        await watch.pubsub.aclose()
        await client.aclose()


async def subscribed_servers(url: str) -> list[bytes | str]:
    """The workspace channels some server is subscribed to (the test's own
    pattern subscription is not counted by PUBSUB CHANNELS)."""
    client = Redis.from_url(url, protocol=2)
    try:
        channels: list[bytes | str] = await client.pubsub_channels(WORKSPACE_CHANNELS)
        return channels
    finally:
        await client.aclose()


async def new_conversation(http: httpx.AsyncClient, cluster: Cluster) -> int:
    res = await http.post(
        "/api/v1/conversations",
        json={"inbox_id": cluster.inbox_id, "contact_id": cluster.contact_id},
    )
    assert res.status_code == 201, res.text
    conversation_id: int = res.json()["id"]
    return conversation_id


async def post_message(
    http: httpx.AsyncClient, cluster: Cluster, conversation_id: int, text: str
) -> dict[str, Any]:
    """POST a reply through `http`; it must answer 201 within WRITE_TIMEOUT."""
    try:
        async with asyncio.timeout(WRITE_TIMEOUT):
            res = await http.post(
                f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}
            )
    except (TimeoutError, httpx.TimeoutException):
        cluster.check_alive()
        raise AssertionError(f"writing {text!r} hung for over {WRITE_TIMEOUT} s") from None
    assert res.status_code == 201, f"writing {text!r}: {res.status_code} {res.text}"
    message: dict[str, Any] = res.json()
    return message


async def round_trips(
    http: httpx.AsyncClient,
    cluster: Cluster,
    conversation_id: int,
    feeds: list[Feed],
    watch: BusWatch,
    label: str,
) -> list[dict[str, Any]]:
    """POST ROUND_TRIPS messages through A one after another, each once the
    previous one has reached every feed on B, and show they went over the
    bus: A published each (the watch saw it), and together they took less
    than POLL_INTERVAL. Without the bus, B reads the log once per poll (and
    once per bus loss), so sequential round trips would each wait for the
    next poll: in that time the log could have carried one or two of them,
    never all."""
    sent: list[dict[str, Any]] = []
    started = time.monotonic()
    for i in range(ROUND_TRIPS):
        message = await post_message(http, cluster, conversation_id, f"{label} {i}")
        sent.append(message)
        await watch.next_message_of(conversation_id, message["seq"])
        for feed in feeds:
            await feed.wait_for_seq(message["seq"], LIVE_TIMEOUT)
    elapsed = time.monotonic() - started
    assert elapsed < POLL_INTERVAL, (
        f"{ROUND_TRIPS} round trips A -> B took {elapsed:.2f} s: not over the bus"
    )
    return sent


async def test_a_message_written_through_a_reaches_a_socket_on_b_over_the_bus(
    cluster: Cluster,
) -> None:
    async with cluster.agent_client(cluster.a) as http:
        conversation_id = await new_conversation(http, cluster)
        async with (
            watch_bus(cluster.redis.url) as watch,
            open_feed("socket on B", cluster, cluster.b, conversation_id) as feed,
        ):
            # B subscribed its workspace channel before it said ready.
            assert len(await subscribed_servers(cluster.redis.url)) == 1
            sent = await round_trips(http, cluster, conversation_id, [feed], watch, "hello")
            feed.assert_exactly(sent)
            assert [m["seq"] for m in sent] == list(range(1, ROUND_TRIPS + 1))
    cluster.check_alive()


async def test_with_redis_down_writes_succeed_and_sockets_on_b_converge_from_the_log(
    cluster: Cluster,
) -> None:
    redis = cluster.redis
    async with (
        cluster.agent_client(cluster.a) as http,
        contextlib.AsyncExitStack() as stack,
    ):
        conversation_id = await new_conversation(http, cluster)
        early = await stack.enter_async_context(
            open_feed("socket on B (connected before)", cluster, cluster.b, conversation_id)
        )
        before = [await post_message(http, cluster, conversation_id, "before the outage")]
        await early.wait_for_seq(before[-1]["seq"], LIVE_TIMEOUT)
        resume_from = early.messages()[-1]["event_id"]

        redis.stop()
        try:
            # Writes through A: every one 201, none slowed past WRITE_TIMEOUT.
            down: list[dict[str, Any]] = []
            for i in range(3):
                down.append(await post_message(http, cluster, conversation_id, f"down {i}"))
            # A client that connects (resuming) while Redis is down.
            late = await stack.enter_async_context(
                open_feed(
                    "socket on B (connected during)",
                    cluster,
                    cluster.b,
                    conversation_id,
                    last_event_id=resume_from,
                )
            )
            assert late.ready["resumed"] is True
            for i in range(3, 6):
                down.append(await post_message(http, cluster, conversation_id, f"down {i}"))

            # Both converge from the event log while Redis is still down.
            for feed in (early, late):
                await feed.wait_for_seq(down[-1]["seq"], CONVERGE_TIMEOUT)
            early.assert_exactly(before + down)
            late.assert_exactly(down)
        finally:
            if not redis.running:
                redis.start_again()

        # Redis is back: B subscribes again, and messages flow over the bus.
        try:
            async with asyncio.timeout(RESUBSCRIBE_TIMEOUT):
                while not await subscribed_servers(redis.url):
                    await asyncio.sleep(0.05)  # polling interval of a condition wait
        except TimeoutError:
            cluster.check_alive()
            raise AssertionError(
                f"B did not subscribe again within {RESUBSCRIBE_TIMEOUT} s of Redis restarting"
            ) from None
        async with watch_bus(redis.url) as watch:
            after = await round_trips(
                http, cluster, conversation_id, [early, late], watch, "after the outage"
            )

        # The last message came after all the others: nothing was missed,
        # nothing came twice, all in seq order.
        early.assert_exactly(before + down + after)
        late.assert_exactly(down + after)
        assert [m["seq"] for m in before + down + after] == list(range(1, 1 + 1 + 6 + ROUND_TRIPS))
    cluster.check_alive()
