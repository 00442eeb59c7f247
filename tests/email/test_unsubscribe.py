"""One-click unsubscribe from automatic mail (PROTOCOLS.md P4, RFC 8058):
the continuity mail carries the headers, a GET only asks, a POST stops
automatic mail to that address, and agents' replies still go."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from server.domain.unsubscribe import make_unsubscribe_token
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.chat_continuity import queue_continuity_emails
from server.workers.email_delivery import EmailDelivery
from tests.email.mails import mail
from tests.email.test_chat_continuity import (  # the fixtures come with them
    Visitor,
    browser,
    clock,
    parse,
    received,
    reply,
    runtime,
    sink,
    turn_on,
)
from tests.email.test_inbound_email import post
from tests.services.smtp import SmtpSink
from tests.support import Workspace, events_since, fetch_all, last_event_id

__all__ = ["browser", "runtime", "sink"]


async def test_one_click_unsubscribe_stops_automatic_mail_only(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sink: SmtpSink,
) -> None:
    await turn_on(runtime, ws, 10)
    pat = await Visitor.start(runtime, browser, ws, name="Pat", email="pat@customer.test")
    await pat.say("Hello?")
    await reply(admin_client, pat.conversation_id, "Hi Pat, checking now.")
    clock(runtime).advance(minutes=11)
    assert await queue_continuity_emails(runtime) == 1
    await EmailDelivery(runtime).deliver_due()
    [got] = await received(sink, 1)
    parsed = parse(got.data)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(parsed["List-Unsubscribe"]).strip("<>")
    assert url.startswith(f"{runtime.settings.public_url}/u/")
    path = url.removeprefix(runtime.settings.public_url)

    # A link scanner's GET changes nothing: the page asks first.
    page = await anon_client.get(path)
    assert page.status_code == 200 and "pat@customer.test" in page.text
    assert '<form method="post">' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert await fetch_all(runtime, sa.select(t.email_suppressions)) == []

    before = await last_event_id(runtime)
    done = await anon_client.post(path, content=b"List-Unsubscribe=One-Click")
    assert done.status_code == 200 and "unsubscribed" in done.text
    [row] = await fetch_all(runtime, sa.select(t.email_suppressions))
    assert (row.address, row.scope) == ("pat@customer.test", "automated")
    # Pat typed the address into the widget: the contact it belongs to has
    # email marketing withdrawn too, by the link, in the same write.
    [(kind, consent), (kind2, event)] = await events_since(runtime, before)
    assert (kind, consent["state"], consent["source"]) == (
        "consent.recorded",
        "withdrawn",
        "unsubscribe link",
    )
    assert (kind2, event["scope"]) == ("email.suppressed", "automated")
    [withdrawn] = await fetch_all(runtime, sa.select(t.consents))
    assert (withdrawn.channel, withdrawn.topic, withdrawn.contact_id) == (
        "email",
        "marketing",
        consent["contact_id"],
    )
    again = await anon_client.post(path, content=b"List-Unsubscribe=One-Click")
    assert again.status_code == 200
    assert len(await fetch_all(runtime, sa.select(t.email_suppressions))) == 1
    assert len(await fetch_all(runtime, sa.select(t.consents))) == 1

    # No more automatic mail to Pat...
    await reply(admin_client, pat.conversation_id, "Any news on your side?")
    clock(runtime).advance(minutes=11)
    assert await queue_continuity_emails(runtime) == 0
    # ...but an agent's reply to Pat's own mail still goes.
    inbound = await post(admin_client, ws.other_inbox_id, mail(sender="pat@customer.test"))
    res = await admin_client.post(
        f"/api/v1/conversations/{inbound['conversation_id']}/messages", json={"text": "Sure!"}
    )
    assert res.status_code == 201, res.text


async def test_a_forged_or_broken_link_changes_nothing(
    runtime: Runtime, ws: Workspace, anon_client: httpx.AsyncClient
) -> None:
    forged = make_unsubscribe_token(ws.id, "pat@customer.test", key=b"not our key at all!!")
    for token in (forged, "garbage", "a.b", forged[:-2]):
        res: Any = await anon_client.post(f"/u/{token}")
        assert res.status_code == 404, token
        res = await anon_client.get(f"/u/{token}")
        assert res.status_code == 404, token
    assert await fetch_all(runtime, sa.select(t.email_suppressions)) == []
