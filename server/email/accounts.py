"""Which mail servers an inbox uses: its own SMTP / IMAP settings with
their passwords (stored encrypted in `inboxes.secret_encrypted`), or the
server-wide default SMTP relay (THREADLINE_SMTP_URL)."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.email.imap_client import ImapAccount
from connectors.email.smtp_sender import Security, SmtpAccount
from server.domain.email_settings import SECURITIES
from server.queries.inbox_secrets import inbox_secrets_of
from server.runtime import Runtime

DEFAULT_SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def smtp_account(
    runtime: Runtime, inbox_settings: dict[str, Any], secret: str | None
) -> SmtpAccount | None:
    own = inbox_settings.get("smtp")
    if isinstance(own, dict) and own.get("host"):
        security = cast(Security, own.get("security", "starttls"))
        return SmtpAccount(
            host=own["host"],
            port=int(own.get("port") or DEFAULT_SMTP_PORTS[security]),
            security=security,
            username=own.get("username") or None,
            password=inbox_secrets_of(runtime.secrets, secret).get("smtp_password"),
        )
    url = runtime.settings.smtp_url
    return smtp_url_account(url) if url else None


def smtp_url_account(url: str) -> SmtpAccount:
    """`smtp://[user:pass@]host[:port][?security=starttls|tls|none]`."""
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ValueError("THREADLINE_SMTP_URL must look like smtp://user:pass@host:587")
    security = parse_qs(parts.query).get("security", ["starttls"])[0]
    if security not in SECURITIES:
        raise ValueError("THREADLINE_SMTP_URL: security must be starttls, tls or none")
    return SmtpAccount(
        host=parts.hostname,
        port=parts.port or DEFAULT_SMTP_PORTS[security],
        security=cast(Security, security),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def imap_account(
    runtime: Runtime, inbox_settings: dict[str, Any], secret: str | None
) -> ImapAccount | None:
    own = inbox_settings.get("imap")
    if not isinstance(own, dict) or not own.get("host"):
        return None
    password = inbox_secrets_of(runtime.secrets, secret).get("imap_password")
    if password is None:
        return None
    security = own.get("security", "tls")
    return ImapAccount(
        host=own["host"],
        port=int(own.get("port") or (993 if security == "tls" else 143)),
        username=own.get("username") or "",
        password=password,
        security=security,
        mailbox=own.get("mailbox") or "INBOX",
    )
