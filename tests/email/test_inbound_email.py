"""Inbound email end to end through the inbound-parse endpoint (the same
path the SMTP listener and IMAP polling take): threading, identity,
dedupe, quarantine, attachments and the original, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.contacts import do_update_contact
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_status
from server.actions.inboxes import do_update_inbox
from server.domain.email_tokens import TokenClaims, make_message_id, make_reply_address
from server.domain.values import ConversationStatus
from server.email.config import mail_identity
from server.runtime import Runtime
from server.storage import tables as t
from tests.email.mails import PNG, mail
from tests.support import Workspace, events_since, fetch_all, fetch_one, last_event_id

PATH = "/api/v1/inboxes/{}/inbound_email"


async def post(c: httpx.AsyncClient, inbox_id: int, raw: bytes) -> dict[str, Any]:
    res = await c.post(
        PATH.format(inbox_id), content=raw, headers={"content-type": "message/rfc822"}
    )
    assert res.status_code == 200, res.text
    out: dict[str, Any] = res.json()["inbound_mail"]
    return out


async def set_inbox_address(runtime: Runtime, ws: Workspace, address: str) -> None:
    """The workspace's email inbox receives at, and replies from, `address`."""
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.other_inbox_id,
        settings={"address": address},
    )


async def message(runtime: Runtime, message_id: int) -> sa.Row[Any]:
    return await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == message_id))


async def conversation(runtime: Runtime, conversation_id: int) -> sa.Row[Any]:
    return await fetch_one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == conversation_id)
    )


async def test_a_new_mail_opens_a_conversation_for_a_new_contact(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    before = await last_event_id(runtime)
    raw = mail(
        text="Hello, my order #1042 has not arrived.\n\n-- \nPat Doe\nCEO",
        html="<p>Hello, my order <b>#1042</b> has not arrived.</p><script>alert(1)</script>",
    )
    out = await post(admin_client, ws.other_inbox_id, raw)
    assert out["status"] == "stored" and out["replayed"] is False
    msg = await message(runtime, out["message_id"])
    assert msg.text == "Hello, my order #1042 has not arrived."  # signature stripped
    assert msg.html is not None and "<b>#1042</b>" in msg.html and "script" not in msg.html
    assert msg.direction == "inbound" and msg.inbox_id == ws.other_inbox_id
    assert msg.email["subject"] == "Where is my order?"
    assert msg.email["from"] == {"name": "Pat Doe", "address": "pat@customer.test"}
    assert msg.email["thread"]["reason"] == "new_no_references"
    assert msg.email_message_id is not None and msg.email_message_id.endswith("@customer.test>")
    conv = await conversation(runtime, out["conversation_id"])
    assert conv.subject == "Where is my order?" and conv.status == "open"
    identities = await fetch_all(
        runtime,
        sa.select(
            t.contact_identities.c.kind,
            t.contact_identities.c.value,
            t.contact_identities.c.verified,
        ).where(t.contact_identities.c.contact_id == conv.contact_id),
    )
    # A From header proves nothing: the identity is kept, unverified.
    assert [tuple(r) for r in identities] == [("email", "pat@customer.test", False)]
    types = [kind for kind, _ in await events_since(runtime, before)]
    assert types == [
        "contact.created",
        "contact.identity_added",
        "conversation.created",
        "message.created",
    ]
    created = dict(await events_since(runtime, before))["message.created"]
    assert created["email"]["subject"] == "Where is my order?"
    record = await fetch_one(
        runtime, sa.select(t.inbound_mails).where(t.inbound_mails.c.id == out["id"])
    )
    assert record.source == "http" and record.size == len(raw)
    assert record.thread["reason"] == "new_no_references"
    assert await runtime.blobs.get(record.storage_key) == raw


async def test_the_same_mail_twice_is_stored_once(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    raw = mail(message_id="<once@customer.test>")
    first = await post(admin_client, ws.other_inbox_id, raw)
    again = await post(admin_client, ws.other_inbox_id, raw)
    assert again["replayed"] is True and again["message_id"] == first["message_id"]
    # Same Message-ID, other bytes (a second delivery path added a header).
    relayed = b"Received: from relay.test\r\n" + raw
    dup = await post(admin_client, ws.other_inbox_id, relayed)
    assert dup["status"] == "duplicate" and dup["message_id"] == first["message_id"]
    rows = await fetch_all(
        runtime, sa.select(t.messages.c.id).where(t.messages.c.inbox_id == ws.other_inbox_id)
    )
    assert len(rows) == 1


async def test_replies_thread_by_stored_message_id_and_flag_a_new_subject(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    first = await post(admin_client, ws.other_inbox_id, mail(message_id="<m1@customer.test>"))
    outlook = mail(
        subject="RE: Where is my order?",
        message_id="<m2@customer.test>",
        in_reply_to="<rewritten@outlook.test>",
        references="<m1@customer.test>",
    )
    second = await post(admin_client, ws.other_inbox_id, outlook)
    assert second["conversation_id"] == first["conversation_id"]
    msg = await message(runtime, second["message_id"])
    assert msg.email["thread"]["reason"] == "stored_message_id"
    assert msg.email["thread"]["flags"] == []
    changed = mail(
        subject="Also: my invoice",
        message_id="<m3@customer.test>",
        in_reply_to="<m2@customer.test>",
    )
    third = await post(admin_client, ws.other_inbox_id, changed)
    assert third["conversation_id"] == first["conversation_id"]
    msg = await message(runtime, third["message_id"])
    assert msg.email["thread"]["flags"] == ["subject_changed"]
    # Someone else citing a stored (unsigned) id gets a conversation of their own.
    stranger = mail(
        sender="eve@elsewhere.test",
        message_id="<e1@elsewhere.test>",
        in_reply_to="<m1@customer.test>",
    )
    other = await post(admin_client, ws.other_inbox_id, stranger)
    assert other["conversation_id"] != first["conversation_id"]
    msg = await message(runtime, other["message_id"])
    assert msg.email["thread"]["reason"] == "new_different_sender"
    assert msg.email["thread"]["linked_conversation_id"] == first["conversation_id"]


async def test_a_reply_reopens_a_resolved_conversation_but_an_out_of_office_does_not(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    first = await post(admin_client, ws.other_inbox_id, mail(message_id="<r1@customer.test>"))
    conversation_id = first["conversation_id"]
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_status,
        conversation_id=conversation_id,
        status=ConversationStatus.RESOLVED,
    )
    away = mail(
        subject="Automatic reply: Where is my order?",
        message_id="<ooo@customer.test>",
        in_reply_to="<r1@customer.test>",
        headers={"Auto-Submitted": "auto-replied"},
    )
    out = await post(admin_client, ws.other_inbox_id, away)
    assert out["conversation_id"] == conversation_id
    assert (await conversation(runtime, conversation_id)).status == "resolved"
    assert "automatic" in (await message(runtime, out["message_id"])).email["thread"]["flags"]
    before = await last_event_id(runtime)
    reply = mail(message_id="<r2@customer.test>", in_reply_to="<r1@customer.test>")
    out = await post(admin_client, ws.other_inbox_id, reply)
    assert out["conversation_id"] == conversation_id
    assert (await conversation(runtime, conversation_id)).status == "open"
    types = [kind for kind, _ in await events_since(runtime, before)]
    assert types == ["conversation.status_changed", "message.created"]


async def test_signed_reply_address_and_message_id_thread_and_forgeries_do_not(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    first = await post(admin_client, ws.other_inbox_id, mail(message_id="<s1@customer.test>"))
    ident = mail_identity(runtime.settings)
    claims = TokenClaims(ws.id, ws.other_inbox_id, first["conversation_id"])
    address = make_reply_address(claims, key=ident.key, domain=ident.domain)
    # No references at all, only our signed Reply-To as the recipient.
    by_address = mail(to=address, subject="new thread?", message_id="<s2@customer.test>")
    out = await post(admin_client, ws.other_inbox_id, by_address)
    assert out["conversation_id"] == first["conversation_id"]
    thread = (await message(runtime, out["message_id"])).email["thread"]
    assert thread["reason"] == "reply_address"
    ours = make_message_id(
        TokenClaims(ws.id, ws.other_inbox_id, first["conversation_id"], message_ref=7),
        key=ident.key,
        domain=ident.domain,
    )
    by_id = mail(message_id="<s3@customer.test>", references=ours)
    out = await post(admin_client, ws.other_inbox_id, by_id)
    assert out["conversation_id"] == first["conversation_id"]
    assert (await message(runtime, out["message_id"])).email["thread"]["reason"] == (
        "signed_message_id"
    )
    # A token for a conversation of another inbox (the widget) never attaches
    # here, and a token with a broken signature is refused.
    foreign = make_reply_address(
        TokenClaims(ws.id, ws.inbox_id, ws.conversation_id), key=ident.key, domain=ident.domain
    )
    local = address.split("@")[0]
    forged = f"{local[:-1]}{'a' if local[-1] != 'a' else 'b'}@{ident.domain}"
    for to, code in ((foreign, "other_inbox"), (forged, "bad_signature")):
        out = await post(
            admin_client, ws.other_inbox_id, mail(to=to, message_id=f"<x-{code}@customer.test>")
        )
        assert out["conversation_id"] != first["conversation_id"]
        thread = (await message(runtime, out["message_id"])).email["thread"]
        assert thread["reason"] == "new_rejected_references"
        assert thread["rejected"][0].startswith(code)


async def test_one_timeline_for_a_known_address_and_a_suggestion_for_a_claimed_one(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    # ws.contact chatted in the widget and holds customer@acme.test.
    out = await post(admin_client, ws.other_inbox_id, mail(sender="customer@acme.test"))
    conv = await conversation(runtime, out["conversation_id"])
    assert conv.contact_id == ws.contact_id
    timeline = await fetch_all(
        runtime,
        sa.select(t.messages.c.inbox_id).where(t.messages.c.contact_id == ws.contact_id),
    )
    assert {r.inbox_id for r in timeline} == {ws.inbox_id, ws.other_inbox_id}
    # A widget visitor who only typed an address in (an attribute, no proof):
    # mail from that address gets its own contact and a merge suggestion.
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"email": "Claimed@Example.test"},
    )
    before = await last_event_id(runtime)
    out = await post(admin_client, ws.other_inbox_id, mail(sender="claimed@example.test"))
    conv = await conversation(runtime, out["conversation_id"])
    assert conv.contact_id != ws.contact_id
    rows = await fetch_all(runtime, sa.select(t.contact_merge_suggestions))
    assert [(r.contact_id, r.candidate_id, r.status) for r in rows] == [
        (conv.contact_id, ws.contact_id, "open")
    ]
    assert "contact.merge_suggested" in [kind for kind, _ in await events_since(runtime, before)]


async def test_attachments_and_inline_images_are_stored_with_the_message(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    raw = mail(
        html='<p>See <img src="cid:shot1@customer.test"></p>',
        inline_image=("shot1@customer.test", PNG),
        attachments=[("invoice.pdf", "application/pdf", b"%PDF-1.4 fake")],
    )
    out = await post(admin_client, ws.other_inbox_id, raw)
    msg = await message(runtime, out["message_id"])
    names = sorted(a["filename"] for a in msg.attachments)
    assert len(names) == 2 and "invoice.pdf" in names
    rows = await fetch_all(
        runtime, sa.select(t.attachments).where(t.attachments.c.message_id == msg.id)
    )
    assert {r.uploader_kind for r in rows} == {"email"}
    image_id = msg.email["inline"]["shot1@customer.test"]
    image = next(r for r in rows if r.id == image_id)
    assert image.content_type == "image/png"
    assert await runtime.blobs.get(image.storage_key) == PNG
    assert 'src="cid:shot1@customer.test"' in (msg.html or "")


async def test_unparseable_mail_is_quarantined_for_admins_and_the_next_goes_through(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    before = await last_event_id(runtime)
    headers = b"".join(b"X-Junk-%d: x\r\n" % i for i in range(1200))
    junk = headers + b"From: a@b.test\r\nSubject: many headers\r\n\r\nbody\r\n"
    out = await post(admin_client, ws.other_inbox_id, junk)
    assert out["status"] == "quarantined" and "header" in out["reason"]
    assert out["message_id"] is None
    no_sender = await post(admin_client, ws.other_inbox_id, b"Subject: hi\r\n\r\nno from\r\n")
    assert no_sender["status"] == "quarantined" and "From" in no_sender["reason"]
    fine = await post(admin_client, ws.other_inbox_id, mail())
    assert fine["status"] == "stored"
    assert [k for k, _ in await events_since(runtime, before)][:2] == [
        "email.quarantined",
        "email.quarantined",
    ]
    res = await admin_client.get("/api/v1/inbound_mails", params={"status": "quarantined"})
    assert res.status_code == 200
    assert [m["id"] for m in res.json()["items"]] == [no_sender["id"], out["id"]]
    raw = await admin_client.get(f"/api/v1/inbound_mails/{out['id']}/raw")
    assert raw.status_code == 200 and raw.content == junk
    assert raw.headers["content-security-policy"] == "sandbox"
    assert raw.headers["content-disposition"].startswith("inline;")
    # The quarantine's Download link.
    raw = await admin_client.get(f"/api/v1/inbound_mails/{out['id']}/raw?download=1")
    assert raw.status_code == 200 and raw.content == junk
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert (await agent_client.get("/api/v1/inbound_mails")).status_code == 403


async def test_show_original_for_those_who_can_read_the_message(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    raw = mail(message_id="<orig@customer.test>")
    out = await post(admin_client, ws.other_inbox_id, raw)
    res = await admin_client.get(f"/api/v1/messages/{out['message_id']}/original")
    assert res.status_code == 200 and res.content == raw
    assert res.headers["content-type"] == "text/plain; charset=utf-8"
    assert res.headers["x-content-type-options"] == "nosniff"
    # The agent is not a member of this inbox: the message does not exist for it.
    res = await agent_client.get(f"/api/v1/messages/{out['message_id']}/original")
    assert res.status_code == 404


async def test_only_admins_post_mail_and_an_empty_body_is_refused(
    ws: Workspace, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    res = await agent_client.post(PATH.format(ws.inbox_id), content=mail())
    assert res.status_code == 403
    res = await admin_client.post(PATH.format(ws.other_inbox_id), content=b"")
    assert res.status_code == 400 and res.json()["error"]["field"] == "body"


async def test_bad_requests_are_refused_by_field_and_store_nothing(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    target = PATH.format(ws.other_inbox_id)
    res = await admin_client.post(target, params={"surprise": "1"}, content=mail())
    assert res.status_code == 422 and res.json()["error"]["field"] == "surprise"
    big = b"X-Pad: " + b"x" * (25 * 1024 * 1024) + b"\r\n\r\n"
    res = await admin_client.post(target, content=big)
    assert res.status_code == 413 and res.json()["error"]["field"] == "body"
    assert await fetch_all(runtime, sa.select(t.inbound_mails)) == []
    blobs = runtime.settings.data_dir / "attachments"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


async def test_mail_from_the_inbox_itself_is_quarantined_not_answered(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    await set_inbox_address(runtime, ws, "billing@acme.test")
    looped = await post(admin_client, ws.other_inbox_id, mail(sender="Billing <Billing@acme.test>"))
    assert looped["status"] == "quarantined" and "itself" in looped["reason"]
    ident = mail_identity(runtime.settings)
    ours = make_reply_address(
        TokenClaims(ws.id, ws.other_inbox_id, 1), key=ident.key, domain=ident.domain
    )
    bounced_back = await post(admin_client, ws.other_inbox_id, mail(sender=ours))
    assert bounced_back["status"] == "quarantined"
    assert (
        await fetch_all(
            runtime, sa.select(t.messages).where(t.messages.c.inbox_id == ws.other_inbox_id)
        )
        == []
    )
