"""Two `threadline serve` processes on one PostgreSQL database each run
the scheduler: conversations snoozed for two seconds reopen at their
time, each exactly once, with one `snooze_expired` event, whichever
process claimed it (ARCHITECTURE.md rule 5)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from server.storage import tables as t
from server.storage.db import Database
from tests.multiprocess.conftest import Cluster
from tests.multiprocess.test_two_processes import new_conversation

pytestmark = pytest.mark.postgres

CONVERSATIONS = 10
SNOOZE = timedelta(seconds=2)
# The runner reads when the next job is due at least once a second.
WAKE_TIMEOUT = SNOOZE.total_seconds() + 10.0


async def test_each_snooze_wakes_once_with_two_servers_running(cluster: Cluster) -> None:
    async with cluster.agent_client(cluster.a) as http:
        cids = [await new_conversation(http, cluster) for _ in range(CONVERSATIONS)]
        until = (datetime.now(UTC) + SNOOZE).isoformat()
        for cid in cids:
            res = await http.patch(
                f"/api/v1/conversations/{cid}", json={"status": "snoozed", "snoozed_until": until}
            )
            assert res.status_code == 200, res.text

        async def all_open() -> None:
            while True:
                statuses = [
                    (await http.get(f"/api/v1/conversations/{cid}")).json()["status"]
                    for cid in cids
                ]
                if statuses == ["open"] * CONVERSATIONS:
                    return
                await asyncio.sleep(0.2)  # the next look, not a wait for the outcome

        try:
            await asyncio.wait_for(all_open(), WAKE_TIMEOUT)
        except TimeoutError:
            cluster.check_alive()
            raise AssertionError(f"not all woken within {WAKE_TIMEOUT} s") from None

    db = Database(cluster.database_url)
    try:
        async with db.read() as conn:
            e = t.events.c
            rows = await conn.execute(
                sa.select(e.payload).where(
                    e.type == "conversation.status_changed", e.conversation_id.in_(cids)
                )
            )
            woken = Counter(
                r.payload["conversation_id"]
                for r in rows
                if r.payload.get("reason") == "snooze_expired"
            )
    finally:
        await db.dispose()
    assert woken == dict.fromkeys(cids, 1)
    cluster.check_alive()
