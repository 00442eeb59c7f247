"""PROTOCOLS.md P1 on PostgreSQL: outbox claims use FOR UPDATE SKIP LOCKED,
so a second worker takes the other due rows at once instead of waiting
for (or double-taking) the rows the first holds. (SQLite serialises
every write transaction, so there one worker claims at a time.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.actions.context import ActionContext, perform
from server.actions.messages import do_send_message
from server.actions.outbound_email import do_claim_outbox
from server.domain.actors import system_actor
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from tests.email.mails import mail
from tests.services.postgres import PostgresServer
from tests.support import make_runtime, seed_workspace

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_runtime(
    pg_server: PostgresServer, migrated_pg_template: str, tmp_path: Path
) -> AsyncIterator[Runtime]:
    url = await pg_server.create_database(template=migrated_pg_template)
    runtime = make_runtime(url, tmp_path / "data")
    yield runtime
    await runtime.close()


async def test_a_second_worker_skips_the_rows_the_first_holds(pg_runtime: Runtime) -> None:
    ws = await seed_workspace(pg_runtime)
    for n in range(3):
        got = await ingest_mail(
            MailIntake.of(pg_runtime),
            inbox_id=ws.other_inbox_id,
            raw=mail(sender=f"c{n}@customer.test", message_id=f"<claim{n}@customer.test>"),
            source="http",
        )
        assert got.conversation_id is not None
        await perform(
            pg_runtime, ws.admin, do_send_message, conversation_id=got.conversation_id, text="Hi"
        )
    async with pg_runtime.db.write() as conn:
        ctx = ActionContext(conn, pg_runtime.clock.now(), system_actor(0))
        [held] = await do_claim_outbox(ctx, limit=1)
        # The first worker's transaction is still open, its row locked.
        others = await asyncio.wait_for(
            perform(pg_runtime, system_actor(0), do_claim_outbox, limit=10), timeout=10
        )
    assert len(others) == 2
    assert held.outbox_id not in {job.outbox_id for job in others}
