"""An email inbox's own settings, checked on the way in (like a widget's,
server.domain.widget_settings): its public address, the name its mail
goes out under, and its SMTP and IMAP servers.

Passwords are write-only: `split_mail_passwords` takes them out of the
settings (which every agent of the inbox may read) so the caller can
store them encrypted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from server.domain.errors import InvalidInput

SECURITIES = ("starttls", "tls", "none")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$|^\d{{1,3}}(?:\.\d{{1,3}}){{3}}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@" + _LABEL + r"(?:\." + _LABEL + r")+$")
MAX_PASSWORD = 1000


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def split_mail_passwords(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(settings without passwords, {"smtp_password": …, "imap_password": …})."""
    out = dict(settings)
    passwords: dict[str, str] = {}
    for server in ("smtp", "imap"):
        block = out.get(server)
        if isinstance(block, dict) and "password" in block:
            block = dict(block)
            password = block.pop("password")
            field = f"settings.{server}.password"
            if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
                raise _fail(field, f"must be text of 1 to {MAX_PASSWORD} characters")
            passwords[f"{server}_password"] = password
            out[server] = block
    return out, passwords


def validate_email_settings(settings: Mapping[str, Any], field: str = "settings") -> dict[str, Any]:
    """A copy of `settings` with the email keys checked (passwords already
    split off), or InvalidInput naming the first bad one. Other keys are
    kept as given."""
    out = dict(settings)
    if "address" in out:
        address = out["address"]
        if not isinstance(address, str) or not _ADDRESS.match(address.strip().lower()):
            raise _fail(f"{field}.address", "must be an email address, such as support@acme.com")
        out["address"] = address.strip().lower()
    if "from_name" in out:
        name = out["from_name"]
        if not isinstance(name, str) or len(name) > 100 or any(ch in name for ch in "\r\n\0"):
            raise _fail(f"{field}.from_name", "must be one line of at most 100 characters")
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
        raise _fail(f"{field}.{unknown[0]}", "is not a setting here")
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
