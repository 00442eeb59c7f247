"""SmtpPool against a real SMTP server: many messages over few
connections, each arriving once and as given; a refused or failed send
never poisons the next; a session the server dropped while idle is
replaced without losing or doubling the mail."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from connectors.email.smtp_sender import SmtpAccount, SmtpPool
from tests.services.smtp import SmtpSink

FROM = "shop@shop.example"


def raw(n: int) -> bytes:
    return (
        f"From: shop@shop.example\r\nTo: c{n}@customer.example\r\n"
        f"Message-ID: <m{n}@shop.example>\r\nSubject: n{n}\r\n\r\nmail {n}\r\n"
    ).encode()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as running:
        yield running


def pool_for(sink: SmtpSink, size: int = 3) -> SmtpPool:
    return SmtpPool(SmtpAccount(sink.host, sink.port, security="none", timeout=10), size=size)


async def test_many_mails_share_a_few_connections(sink: SmtpSink) -> None:
    pool = pool_for(sink, size=3)
    outcomes = await asyncio.gather(
        *(
            pool.send(raw=raw(n), mail_from=FROM, recipients=[f"c{n}@customer.example"])
            for n in range(60)
        )
    )
    await pool.close()
    assert [o.status for o in outcomes] == ["sent"] * 60
    received = sink.wait_for(60)
    assert sorted(m.data for m in received) == sorted(raw(n) for n in range(60))
    assert sink.connections <= 3


async def test_a_refusal_closes_that_session_and_the_next_mail_goes_out(sink: SmtpSink) -> None:
    pool = pool_for(sink, size=1)
    await pool.send(raw=raw(0), mail_from=FROM, recipients=["c0@customer.example"])
    sink.fail_next("rcpt", 550, "5.1.1 no such user")
    refused = await pool.send(raw=raw(1), mail_from=FROM, recipients=["c1@customer.example"])
    after = await pool.send(raw=raw(2), mail_from=FROM, recipients=["c2@customer.example"])
    await pool.close()
    assert (refused.status, refused.code) == ("permanent", 550)
    assert after.status == "sent"
    assert [m.data for m in sink.wait_for(2)] == [raw(0), raw(2)]
    assert sink.connections == 2  # the refused session was not reused


async def test_an_idle_session_the_server_dropped_is_replaced_once(sink: SmtpSink) -> None:
    pool = pool_for(sink, size=1)
    await pool.send(raw=raw(0), mail_from=FROM, recipients=["c0@customer.example"])
    sink.drop_next_connection("mail")
    outcome = await pool.send(raw=raw(1), mail_from=FROM, recipients=["c1@customer.example"])
    await pool.close()
    assert outcome.status == "sent"
    assert [m.data for m in sink.wait_for(2)] == [raw(0), raw(1)]


async def test_a_drop_during_data_is_reported_maybe_delivered_and_not_retried(
    sink: SmtpSink,
) -> None:
    pool = pool_for(sink, size=1)
    sink.drop_next_connection("data")
    outcome = await pool.send(raw=raw(0), mail_from=FROM, recipients=["c0@customer.example"])
    await pool.close()
    assert outcome.status == "temporary" and outcome.maybe_delivered
    assert sink.received == []
    assert sink.connections == 1
