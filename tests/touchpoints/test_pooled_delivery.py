"""A batch of touch mails goes out concurrently over a few pooled SMTP
connections and its outcomes are recorded together, without giving up
anything one mail at a time had: a refusal fails only its own decision,
and a mail whose connection died during DATA is `unknown`, never resent."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from server.runtime import Runtime
from server.storage import tables as t
from server.workers.email_delivery import EmailDelivery
from tests.services.smtp import SmtpSink
from tests.support import Workspace, fetch_all
from tests.touchpoints.claim_support import (
    clock,
    contact,
    mail_inbox,
    make_touchpoint,
    process,
    start,
)

MAILS = 12
CONNECTIONS = 3


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as running:
        yield running


async def _touches(runtime: Runtime, ws: Workspace, sink: SmtpSink) -> list[int]:
    """MAILS touch mails claimed and waiting in the outbox; their decisions."""
    await mail_inbox(runtime, ws, sink)
    tp = await make_touchpoint(runtime, ws)
    ids = []
    for i in range(MAILS):
        cid = await contact(runtime, ws, f"c{i}@shop.test", name=f"C{i}")
        ids.append((await start(runtime, tp, cid, key=f"cart:{i}")).decision_id)
    assert (await process(runtime)).count("sending") == MAILS
    return ids


async def _states(runtime: Runtime, ids: list[int]) -> Counter[str]:
    rows = await fetch_all(runtime, sa.select(t.decisions.c.state).where(t.decisions.c.id.in_(ids)))
    return Counter(row.state for row in rows)


async def test_a_batch_goes_out_over_a_few_connections_each_mail_once(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    ids = await _touches(runtime, ws, sink)
    delivery = EmailDelivery(runtime, batch=50, connections=CONNECTIONS)

    assert await delivery.deliver_due() == MAILS

    assert len(sink.received) == MAILS
    assert sink.connections <= CONNECTIONS  # not one per mail
    message_ids = {
        email.message_from_bytes(r.data, policy=email.policy.default)["Message-ID"]
        for r in sink.received
    }
    assert len(message_ids) == MAILS
    assert await _states(runtime, ids) == {"sent": MAILS}
    outbox = await fetch_all(runtime, sa.select(t.outbox.c.status, t.outbox.c.locked_until))
    assert {(row.status, row.locked_until) for row in outbox} == {("sent", None)}
    assert await delivery.deliver_due() == 0  # nothing is left to send


async def test_a_refused_mail_in_a_pooled_batch_fails_alone(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    ids = await _touches(runtime, ws, sink)
    sink.fail_next("rcpt", 550, "5.1.1 No such user", address="c3@shop.test")

    assert await EmailDelivery(runtime, connections=CONNECTIONS).deliver_due() == MAILS

    assert len(sink.received) == MAILS - 1
    assert "c3@shop.test" not in {r.rcpt_tos[0] for r in sink.received}
    assert await _states(runtime, ids) == {"sent": MAILS - 1, "failed": 1}


async def test_a_connection_lost_during_data_leaves_that_mail_unknown_never_resent(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    ids = await _touches(runtime, ws, sink)
    sink.drop_next_connection("data")
    delivery = EmailDelivery(runtime, connections=CONNECTIONS)

    assert await delivery.deliver_due() == MAILS
    clock(runtime).advance(hours=1)  # past any retry
    while await delivery.deliver_due():
        pass

    # The dropped one may have arrived for all the sender knows: not retried.
    assert len(sink.received) == MAILS - 1
    assert await _states(runtime, ids) == {"sent": MAILS - 1, "unknown": 1}


async def _recorded_counting_statements(runtime: Runtime, delivery: EmailDelivery) -> int:
    """Send one batch, then record its outcomes; the statements the record ran."""
    results = await delivery.send_due()
    assert results
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = runtime.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        await delivery.record(results)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return statements


async def test_recording_a_batch_does_not_grow_with_its_size(
    runtime: Runtime, ws: Workspace, sink: SmtpSink
) -> None:
    ids = await _touches(runtime, ws, sink)

    small = await _recorded_counting_statements(runtime, EmailDelivery(runtime, batch=3))
    large = await _recorded_counting_statements(runtime, EmailDelivery(runtime, batch=9))

    assert large == small  # the outbox rows, messages and decisions: a few statements each
    assert await _states(runtime, ids) == {"sent": MAILS}
    assert len(sink.received) == MAILS
