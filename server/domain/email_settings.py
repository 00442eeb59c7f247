"""An email inbox's own settings, checked on the way in (like a widget's,
server.domain.widget_settings): its public address, the name its mail
goes out under, and its SMTP and IMAP servers.

Passwords are write-only: server.domain.inbox_settings.split_secrets takes
them out of the settings (which every agent of the inbox may read) before
these rules run, so the caller can store them encrypted.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from server.domain.errors import InvalidInput

SECURITIES = ("starttls", "tls", "none")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$|^\d{{1,3}}(?:\.\d{{1,3}}){{3}}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@" + _LABEL + r"(?:\." + _LABEL + r")+$")
TOP_LEVEL = ("address", "from_name", "smtp", "imap")


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def clean_from_name(value: Any, field: str) -> str:
    """The display name mail goes out under: one line (it becomes a header)."""
    if not isinstance(value, str) or len(value) > 100 or any(ch in value for ch in "\r\n\0"):
        raise _fail(field, "must be one line of at most 100 characters")
    return value


def validate_email_settings(settings: Mapping[str, Any], field: str = "settings") -> dict[str, Any]:
    """A copy of `settings` with the email keys checked (passwords already
    split off), or InvalidInput naming the first bad or unknown one."""
    unknown = sorted(set(settings) - set(TOP_LEVEL))
    if unknown:
        raise _fail(f"{field}.{str(unknown[0])[:100]}", "is not a setting of an email inbox")
    out = dict(settings)
    if "address" in out:
        address = out["address"]
        if not isinstance(address, str) or not _ADDRESS.match(address.strip().lower()):
            raise _fail(f"{field}.address", "must be an email address, such as support@acme.com")
        out["address"] = address.strip().lower()
    if "from_name" in out:
        clean_from_name(out["from_name"], f"{field}.from_name")
    for server in ("smtp", "imap"):
        if server in out:
            out[server] = _server(out[server], f"{field}.{server}", imap=server == "imap")
    return out


def _server(value: Any, field: str, *, imap: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, "must be an object with host, port, security and username")
    allowed = {"host", "port", "security", "username"} | ({"mailbox"} if imap else set())
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _fail(f"{field}.{str(unknown[0])[:100]}", "is not a setting here")
    host = value.get("host")
    if not isinstance(host, str) or not _HOST.match(host.strip().lower()):
        raise _fail(f"{field}.host", "must be a host name, such as smtp.example.com")
    out: dict[str, Any] = {"host": host.strip().lower()}
    security = value.get("security", "tls" if imap else "starttls")
    if security not in SECURITIES:
        raise _fail(f"{field}.security", f"must be one of: {', '.join(SECURITIES)}")
    out["security"] = security
    port = value.get("port")
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise _fail(f"{field}.port", "must be a port number (1-65535)")
        out["port"] = port
    username = value.get("username")
    if username is not None:
        if not isinstance(username, str) or len(username) > 320 or "\n" in username:
            raise _fail(f"{field}.username", "must be text of at most 320 characters")
        out["username"] = username
    if imap:
        mailbox = value.get("mailbox", "INBOX")
        if (
            not isinstance(mailbox, str)
            or not mailbox
            or len(mailbox) > 200
            or not mailbox.isascii()
        ):
            raise _fail(f"{field}.mailbox", "must be an ASCII mailbox name, such as INBOX")
        out["mailbox"] = mailbox
    return out


@dataclasses.dataclass(frozen=True)
class MailServer:
    """An SMTP or IMAP server of an inbox, as stored (no password: that is
    one of the inbox's secrets). Unset or empty values are None."""

    host: str
    port: int | None
    security: str | None
    username: str | None
    mailbox: str | None  # IMAP only


@dataclasses.dataclass(frozen=True)
class MailSettings:
    """What the mail transports read of an inbox's stored settings: the
    public address, the name mail goes out under, its own servers. Read
    from the settings of any kind of inbox (a widget's chat continuity
    mail goes out under its `from_name` too); unset or empty is None."""

    address: str | None
    from_name: str | None
    smtp: MailServer | None
    imap: MailServer | None


def mail_settings_of(settings: Mapping[str, Any]) -> MailSettings:
    return MailSettings(
        address=settings.get("address") or None,
        from_name=settings.get("from_name") or None,
        smtp=_stored_server(settings.get("smtp")),
        imap=_stored_server(settings.get("imap")),
    )


def _stored_server(value: Any) -> MailServer | None:
    if not isinstance(value, dict) or not value.get("host"):
        return None
    return MailServer(
        host=value["host"],
        port=int(value["port"]) if value.get("port") else None,
        security=value.get("security"),
        username=value.get("username") or None,
        mailbox=value.get("mailbox") or None,
    )
