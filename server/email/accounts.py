"""Which mail servers an inbox uses: its own SMTP / IMAP settings with
their passwords (stored encrypted in `inboxes.secret_encrypted`), or the
server-wide default SMTP relay (THREADLINE_SMTP_URL). The caller hands
over the inbox's secrets decrypted (server.queries.inbox_secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.email.imap_client import ImapAccount
from connectors.email.imap_client import Security as ImapSecurity
from connectors.email.smtp_sender import Security, SmtpAccount
from server.domain.email_settings import SECURITIES, MailSettings

DEFAULT_SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def smtp_account(
    settings: MailSettings, secrets: Mapping[str, str], default_url: str | None
) -> SmtpAccount | None:
    """The inbox's own SMTP server, else the relay at `default_url`."""
    own = settings.smtp
    if own is not None:
        security = cast(Security, own.security or "starttls")
        return SmtpAccount(
            host=own.host,
            port=own.port or DEFAULT_SMTP_PORTS[security],
            security=security,
            username=own.username,
            password=secrets.get("smtp_password"),
        )
    return smtp_url_account(default_url) if default_url else None


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


def imap_account(settings: MailSettings, secrets: Mapping[str, str]) -> ImapAccount | None:
    own = settings.imap
    if own is None:
        return None
    password = secrets.get("imap_password")
    if password is None:
        return None
    # Checked when the settings were written, and again by ImapAccount.
    security = cast(ImapSecurity, own.security or "tls")
    return ImapAccount(
        host=own.host,
        port=own.port or (993 if security == "tls" else 143),
        username=own.username or "",
        password=password,
        security=security,
        mailbox=own.mailbox or "INBOX",
    )
