"""The email delivery worker: claims due outbox rows, renders each mail,
sends it by SMTP and records the outcome (server.actions.outbound_email).

The Message-ID is a pure function of the message (server.domain.
email_tokens, HMAC under the server's key), and the Date is the
message's creation time, so every attempt sends the very same bytes: a
retry after a crash between "sent" and "recorded" is one mail to the
receiving server, deduplicated by its Message-ID (PROTOCOLS.md P1). The
envelope sender is the conversation's signed reply address, so bounces
come back through the SMTP listener to the right inbox (VERP).

A round sends its batch concurrently over pooled connections (a few per
SMTP account, each carrying one mail after another: bulk touchpoint mail
would otherwise spend most of its time in TCP, TLS and AUTH handshakes),
then records every outcome in one transaction while the next batch is
sent. A crash between the sends and that record leaves the whole batch
leased without an outcome: replies
are sent again (the same bytes, deduplicated by Message-ID), automatic
mail becomes `unknown` and is never resent (server.actions.outbound_email).
If the batch's record fails, each outcome is recorded on its own, so one
bad row can't cost the others theirs. Pools stay open while there is mail
to send and are closed when a round finds none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence

from connectors.email.model import Address
from connectors.email.render import (
    OutboundAttachment,
    OutboundEmail,
    envelope_recipients,
    render_email,
)
from connectors.email.smtp_sender import SendOutcome, SmtpAccount, SmtpPool, send_message
from server.actions.context import perform
from server.actions.outbound_email import (
    DeliveryResult,
    OutboxJob,
    do_claim_outbox,
    do_record_deliveries,
)
from server.domain.actors import system_actor
from server.domain.email_headers import MailAddress, stored_headers
from server.domain.email_threading import normalize_message_id
from server.domain.email_tokens import TokenClaims, make_message_id, make_reply_address
from server.domain.unsubscribe import unsubscribe_url
from server.email.accounts import smtp_account
from server.email.config import MailIdentity, mail_identity
from server.queries.inbox_secrets import inbox_secrets_of
from server.queries.outbox import outbox_due
from server.queries.reading import read
from server.runtime import Runtime

log = logging.getLogger(__name__)


POOL_CONNECTIONS = 4  # per SMTP account: bounds how many mails are on the wire at once


class SmtpPools:
    """One SmtpPool per SMTP account, opened on first use."""

    def __init__(self, connections: int = POOL_CONNECTIONS) -> None:
        self.connections = connections
        self._pools: dict[SmtpAccount, SmtpPool] = {}

    def of(self, account: SmtpAccount) -> SmtpPool:
        pool = self._pools.get(account)
        if pool is None:
            pool = self._pools[account] = SmtpPool(account, size=self.connections)
        return pool

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()


class EmailDelivery:
    name = "email delivery"

    def __init__(
        self,
        runtime: Runtime,
        *,
        poll_interval: float = 1.0,
        batch: int = 50,
        connections: int = POOL_CONNECTIONS,
    ) -> None:
        self.runtime = runtime
        self.poll_interval = poll_interval
        self.batch = batch
        self.connections = connections
        self.identity: MailIdentity = mail_identity(runtime.settings)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; an error in one round is logged
        and the next round tries again. A batch's outcomes are recorded
        while the next batch is on the wire (one record at a time), so
        the connections never wait for the database."""
        pools = SmtpPools(self.connections)
        recording: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                try:
                    results = await self.send_due(pools)
                except Exception:
                    log.exception("email delivery round failed")
                    results = []
                if recording is not None:
                    await recording
                    recording = None
                if results:
                    recording = asyncio.create_task(self.record(results))
                    continue
                # Nothing to send: no connection is kept open idle.
                await pools.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval)
        finally:
            if recording is not None:
                await recording
            await pools.close()

    async def deliver_due(self, pools: SmtpPools | None = None) -> int:
        """One round: claim what is due, try each once (concurrently, over
        `pools`; pools of this round only when None) and record the
        outcomes. Returns how many were tried."""
        results = await self.send_due(pools)
        if results:
            await self.record(results)
        return len(results)

    async def send_due(self, pools: SmtpPools | None = None) -> list[tuple[int, DeliveryResult]]:
        """Claim what is due and try each once, concurrently: the
        outcomes to record, by workspace."""
        if not await read(self.runtime, outbox_due, self.runtime.clock.now()):
            return []
        jobs = await perform(self.runtime, system_actor(0), do_claim_outbox, limit=self.batch)
        if not jobs:
            return []
        own = pools is None
        pools = pools or SmtpPools(self.connections)
        try:
            tried = await asyncio.gather(*(self.attempt(job, pools) for job in jobs))
        finally:
            if own:
                await pools.close()
        results = []
        for job, (outcome, message_id) in zip(jobs, tried, strict=True):
            if outcome.status != "sent":
                log.info("email for message %s: %s", job.message_id, outcome.reason)
            results.append((job.workspace_id, _result(job, outcome, message_id)))
        return results

    async def record(self, results: Sequence[tuple[int, DeliveryResult]]) -> None:
        """The outcomes in one transaction per workspace; one by one if
        that fails (a row that can't be recorded keeps its lease and is
        handled like a crash: its outcome is not lost for the others)."""
        by_workspace: defaultdict[int, list[DeliveryResult]] = defaultdict(list)
        for workspace_id, result in results:
            by_workspace[workspace_id].append(result)
        for workspace_id, batch in sorted(by_workspace.items()):
            actor = system_actor(workspace_id)
            try:
                await perform(self.runtime, actor, do_record_deliveries, results=batch)
            except Exception:
                log.exception("recording %s email outcomes failed; one by one", len(batch))
                for one in batch:
                    try:
                        await perform(self.runtime, actor, do_record_deliveries, results=[one])
                    except Exception:
                        log.exception("recording the outcome of outbox %s failed", one.outbox_id)

    async def attempt(
        self, job: OutboxJob, pools: SmtpPools | None = None
    ) -> tuple[SendOutcome, str | None]:
        """Send `job` once (on a connection of its own unless `pools` are
        given); returns the outcome and the Message-ID used."""
        runtime = self.runtime
        account = smtp_account(
            job.inbox_mail,
            inbox_secrets_of(runtime.secrets, job.inbox_secret),
            runtime.settings.smtp_url,
        )
        if account is None:
            return SendOutcome(
                "temporary", None, "no outgoing mail server: set the inbox's SMTP settings"
            ), None
        try:
            mail = await self.compose(job)
            raw = render_email(mail)
        except (ValueError, LookupError) as exc:
            return SendOutcome("permanent", None, f"can't build the mail: {exc}"), None
        message_id = normalize_message_id(mail.message_id)
        mail_from = mail.reply_to.address if mail.reply_to else mail.from_address.address
        recipients = envelope_recipients(mail)
        if pools is None:
            outcome = await send_message(
                account, raw=raw, mail_from=mail_from, recipients=recipients
            )
        else:
            outcome = await pools.of(account).send(
                raw=raw, mail_from=mail_from, recipients=recipients
            )
        return outcome, message_id

    async def compose(self, job: OutboxJob) -> OutboundEmail:
        """The mail of `job`, the same on every attempt. A chat continuity
        mail (server.actions.chat_continuity) is composed the same way: its
        job carries the payload's recipients, subject and text, the last
        reply it carries as `message_id` (its Message-ID's reference) and
        `auto_submitted`; its Reply-To, like any reply's, is the signed
        address of the conversation, so the visitor's answer lands there."""
        key, domain = self.identity.key, self.identity.domain
        message_id = job.email_message_id or make_message_id(
            TokenClaims(job.workspace_id, job.inbox_id, job.conversation_id, job.message_id),
            key=key,
            domain=domain,
        )
        reply_address = make_reply_address(
            TokenClaims(job.workspace_id, job.inbox_id, job.conversation_id),
            key=key,
            domain=domain,
        )
        team = job.inbox_mail.from_name or job.inbox_name
        display = f"{job.sender_name} at {team}" if job.sender_name else team
        address = job.inbox_mail.address or f"support@{domain}"
        files = []
        for file in job.attachments:
            data = await self.runtime.blobs.get(file.storage_key)
            if data is None:
                raise LookupError(f"the attachment {file.filename!r} is missing from storage")
            files.append(OutboundAttachment(file.filename, file.content_type, data))
        headers = stored_headers(job.email)
        to = _addresses(headers.to)
        unsubscribe = None
        if job.auto_submitted and to:
            # Automatic mail carries a one-click unsubscribe (RFC 8058).
            unsubscribe = unsubscribe_url(
                self.runtime.settings.public_url, job.workspace_id, to[0].address, key=key
            )
        return OutboundEmail(
            from_address=Address(display, address),
            to=to,
            cc=_addresses(headers.cc),
            reply_to=Address(display, reply_address),
            subject=headers.subject or job.inbox_name,
            message_id=message_id,
            date=job.created_at,
            text=job.text,
            in_reply_to=headers.in_reply_to,
            references=headers.references,
            html=job.html,
            attachments=tuple(files),
            auto_submitted=job.auto_submitted,
            list_unsubscribe_url=unsubscribe,
        )


def _result(job: OutboxJob, outcome: SendOutcome, message_id: str | None) -> DeliveryResult:
    return DeliveryResult(
        outbox_id=job.outbox_id,
        status=outcome.status,
        # A clean send has nothing to say; a partial one names who missed it.
        reason="" if outcome.status == "sent" and not outcome.refused else outcome.reason,
        email_message_id=message_id,
        maybe_delivered=outcome.maybe_delivered,
    )


def _addresses(addresses: tuple[MailAddress, ...]) -> tuple[Address, ...]:
    return tuple(Address(a.name, a.address) for a in addresses)
