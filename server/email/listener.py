"""The built-in inbound SMTP listener, wired to the server (F2): it
accepts mail for our signed reply addresses (reply+TOKEN@MAIL_DOMAIN,
which name their inbox) and for the public address of any email inbox
(`settings.address`, for mail forwarded from the team's own domain), and
nothing else: it is not a relay. Each accepted mail is ingested once per
inbox it is addressed to.
"""

from __future__ import annotations

import logging
import ssl

from connectors.email.smtp_listener import Envelope, ListenerConfig, SmtpListener, Verdict
from server.domain.email_tokens import parse_reply_address
from server.email.config import mail_domain
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.queries.email_inboxes import get_inbox_by_address
from server.queries.inboxes import find_inbox
from server.queries.reading import read
from server.settings import Settings

log = logging.getLogger(__name__)


async def inbox_for_recipient(intake: MailIntake, address: str) -> int | None:
    """The inbox a recipient address delivers to, or None (refused)."""
    identity = intake.identity
    claims = parse_reply_address(address, identity.keys, domains=(identity.domain,))
    if claims is not None:
        inbox = await read(intake.writer, find_inbox, claims.inbox_id)
        if inbox is not None and inbox.workspace_id == claims.workspace_id:
            return int(inbox.id)
        return None
    inbox = await read(intake.writer, get_inbox_by_address, address)
    return None if inbox is None else int(inbox.id)


def listener_config(settings: Settings) -> ListenerConfig | None:
    """From THREADLINE_SMTP_LISTEN (HOST:PORT; empty: no listener) and
    the optional STARTTLS certificate."""
    if not settings.smtp_listen:
        return None
    host, _, port = settings.smtp_listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("THREADLINE_SMTP_LISTEN must be HOST:PORT, such as 0.0.0.0:25")
    tls = None
    if settings.smtp_tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key or None)
    return ListenerConfig(
        host=host.strip("[]"),
        port=int(port),
        hostname=mail_domain(settings),
        tls_context=tls,
    )


def make_listener(intake: MailIntake, config: ListenerConfig) -> SmtpListener:
    async def check_recipient(address: str) -> bool:
        return await inbox_for_recipient(intake, address) is not None

    async def sink(envelope: Envelope, raw: bytes) -> Verdict:
        inboxes: list[int] = []
        for address in envelope.rcpt_tos:
            inbox_id = await inbox_for_recipient(intake, address)
            if inbox_id is not None and inbox_id not in inboxes:
                inboxes.append(inbox_id)
        for inbox_id in inboxes:
            outcome = await ingest_mail(
                intake,
                inbox_id=inbox_id,
                raw=raw,
                source="smtp",
                envelope_from=envelope.mail_from,
                envelope_to=envelope.rcpt_tos,
            )
            log.info("mail from %r for inbox %s: %s", envelope.mail_from, inbox_id, outcome.status)
        return Verdict.accepted()

    return SmtpListener(config, check_recipient=check_recipient, sink=sink)
