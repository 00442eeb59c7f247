"""Mail whose From holds no email address (PROTOCOLS.md P4): quarantined
with the reason, through the inbound-parse endpoint and the SMTP
listener alike (tests/email/test_transports.py), and no contact is made
of it. Addresses a reply goes to
are held to the same rule. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa

from server.runtime import Runtime
from server.storage import tables as t
from tests.connectors.email.expectations import EXPECTATIONS
from tests.email.mails import mail
from tests.email.test_inbound_email import post, set_inbox_address
from tests.support import Workspace, events_since, fetch_all, last_event_id

CORPUS = Path(__file__).parent.parent / "connectors" / "email" / "corpus"
NO_ADDRESS = [
    "from_bare_word.eml",
    "from_dotted_word.eml",
    "from_quoted_name_only.eml",
    "from_address_without_domain.eml",
    "from_raw_cr_in_name.eml",
]


async def counts(runtime: Runtime) -> tuple[int, int, int]:
    rows = [
        await fetch_all(runtime, sa.select(table.c.id))
        for table in (t.contacts, t.contact_identities, t.conversations)
    ]
    return len(rows[0]), len(rows[1]), len(rows[2])


async def test_mail_without_a_from_address_is_quarantined_with_why_and_no_contact_is_made(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    before, events = await counts(runtime), await last_event_id(runtime)
    outcomes = []
    for name in NO_ADDRESS:
        out = await post(admin_client, ws.other_inbox_id, (CORPUS / name).read_bytes())
        reason = EXPECTATIONS[name]["from_problem"]
        assert (out["status"], out["reason"], out["message_id"]) == ("quarantined", reason, None)
        outcomes.append(out)
    # Two unrelated senders who both wrote `From: Evil` would have been one
    # contact named by a bare word; nothing of the kind exists.
    again = mail(sender="Evil", message_id="<other-evil@spoof.test>", subject="Other")
    out = await post(admin_client, ws.other_inbox_id, again)
    assert out["status"] == "quarantined" and "'Evil' is not a usable address" in out["reason"]
    assert await counts(runtime) == before
    assert (
        await fetch_all(
            runtime, sa.select(t.messages.c.id).where(t.messages.c.inbox_id == ws.other_inbox_id)
        )
        == []
    )
    happened = await events_since(runtime, events)
    assert [kind for kind, _ in happened] == ["email.quarantined"] * (len(NO_ADDRESS) + 1)
    assert happened[0][1]["reason"] == EXPECTATIONS[NO_ADDRESS[0]]["from_problem"]
    res = await admin_client.get("/api/v1/inbound_mails", params={"status": "quarantined"})
    assert res.status_code == 200
    listed = {m["id"]: m for m in res.json()["items"]}
    for out in outcomes:
        assert listed[out["id"]]["reason"] == out["reason"]
        assert listed[out["id"]]["from_address"] is None
    # The next mail, from an address, goes through as ever.
    assert (await post(admin_client, ws.other_inbox_id, mail()))["status"] == "stored"


async def test_reply_recipients_are_held_to_the_address_rule_by_field(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    await set_inbox_address(runtime, ws, "support@acme.test")
    # Junk in the customer's own Reply-To and Cc is never offered.
    first = await post(
        admin_client,
        ws.other_inbox_id,
        mail(
            cc="jane, Sam <sam@customer.test>, Bob <bob>",
            headers={"Reply-To": "evil"},
        ),
    )
    assert first["status"] == "stored"
    conversation = f"/api/v1/conversations/{first['conversation_id']}"
    defaults = (await admin_client.get(f"{conversation}/email_defaults")).json()
    assert (defaults["to"], defaults["cc"]) == (["pat@customer.test"], ["sam@customer.test"])
    # What the renderer could not write is refused now, by field, with its
    # reason, instead of failing in the delivery worker later.
    for to, field, reason in (
        (["pat@customer.test", "jane@exa_mple.test"], "to[1]", "to[1]: invalid domain"),
        (["a..b@customer.test"], "to[0]", "to[0]: invalid address"),
        (["jü@customer.test"], "to[0]", "to[0]: non-ASCII local part"),
    ):
        res = await admin_client.post(f"{conversation}/messages", json={"text": "x", "to": to})
        assert res.status_code == 422, res.text
        error = res.json()["error"]
        assert error["field"] == field and error["message"].startswith(reason), error
    assert await fetch_all(runtime, sa.select(t.outbox)) == []
