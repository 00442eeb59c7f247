"""Each event reaches only its declared audience over a real socket, live
and on resume alike (PROTOCOLS.md P2): the inbound-mail quarantine and the
suppression list are admins', an unsent upload is its uploader's, exactly
as over REST."""

from __future__ import annotations

from server.actions.attachments import upload_file
from server.actions.context import perform
from server.actions.email_bounces import do_unsubscribe_email, suppress_address
from server.actions.inboxes import do_add_inbox_member
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from tests.realtime.live import LiveServer, Socket, say
from tests.support import Workspace

MARKER = "that was all"


async def _make_admin_only_and_personal_events(runtime: Runtime, ws: Workspace) -> dict[str, int]:
    """In an email inbox the agent is a member of: a quarantined mail, two
    suppressions, an upload by each of the admin and the agent; then a
    message both may read. Returns the uploads' ids by uploader."""
    mail = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=b"Subject: hi\r\n\r\nno sender\r\n",
        source="http",
    )
    assert mail.status == "quarantined"
    await perform(runtime, ws.system, do_unsubscribe_email, address="gone@customer.test")
    await perform(
        runtime,
        ws.system,
        suppress_address,
        inbox_id=ws.other_inbox_id,
        address="bounced@customer.test",
        reason="550 no such user",
    )
    uploads = {}
    for name, actor in (("admin", ws.admin), ("agent", ws.agent)):
        made = await upload_file(
            runtime,
            actor,
            b"plain words",
            filename=f"{name}.txt",
            declared_type="text/plain",
            inbox_id=ws.other_inbox_id,
        )
        uploads[name] = made.id
    await say(runtime, ws.admin, ws.conversation_id, MARKER)
    return uploads


async def _read_to_marker(sock: Socket) -> dict[str, list[int]]:
    """The event types read up to the marker: for each, the ids they are about."""
    got = await sock.until(lambda f: f["type"] == "message.created" and f["data"]["text"] == MARKER)
    seen: dict[str, list[int]] = {}
    for frame in got:
        if "event_id" in frame:
            seen.setdefault(frame["type"], []).append(frame["data"].get("attachment_id", 0))
    return seen


async def test_admin_only_and_uploader_only_events_live_and_on_resume(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    agent, admin = await live.open(token=agent_token), await live.open(token=admin_token)
    start = (await agent.ready())["last_event_id"]
    await admin.ready()

    uploads = await _make_admin_only_and_personal_events(runtime, ws)
    agent_live, admin_live = await _read_to_marker(agent), await _read_to_marker(admin)
    agent_resumed = await _read_to_marker(await live.open(token=agent_token, last_event_id=start))
    admin_resumed = await _read_to_marker(await live.open(token=admin_token, last_event_id=start))

    for agent_saw in (agent_live, agent_resumed):
        assert "email.quarantined" not in agent_saw
        assert "email.suppressed" not in agent_saw
        assert agent_saw["attachment.uploaded"] == [uploads["agent"]]
    for admin_saw in (admin_live, admin_resumed):
        assert admin_saw["email.quarantined"] == [0]
        assert admin_saw["email.suppressed"] == [0, 0]
        assert admin_saw["attachment.uploaded"] == [uploads["admin"]]
    # Live and resumed, each connection is sent the same events.
    assert agent_live == agent_resumed and admin_live == admin_resumed

    # The same over REST: the quarantine is the admin's, each upload its uploader's.
    async with live.http(authorization=f"Bearer {agent_token}") as http:
        res = await http.get("/api/v1/inbound_mails", params={"status": "quarantined"})
        assert res.status_code == 403
        assert (await http.get(f"/api/v1/attachments/{uploads['admin']}")).status_code == 404
        assert (await http.get(f"/api/v1/attachments/{uploads['agent']}")).status_code == 200
    async with live.http(authorization=f"Bearer {admin_token}") as http:
        assert (await http.get(f"/api/v1/attachments/{uploads['agent']}")).status_code == 404
