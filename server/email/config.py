"""The server's email identity: the domain of our Message-IDs and reply
addresses, and the keys that sign their tokens (server.domain.email_tokens).

The signing key is derived from the server's secret key, so nothing new
has to be configured or stored, and tokens stay valid across restarts.
A rotated secret key would orphan old tokens; `previous` keys (none yet)
are where an old one would go.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from urllib.parse import urlsplit

from server.settings import Settings


@dataclasses.dataclass(frozen=True)
class MailIdentity:
    domain: str
    keys: tuple[bytes, ...]  # current first

    @property
    def key(self) -> bytes:
        return self.keys[0]


def token_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"threadline email tokens v1", hashlib.sha256).digest()


def mail_identity(settings: Settings) -> MailIdentity:
    return MailIdentity(mail_domain(settings), (token_key(settings.secret_key),))


def mail_domain(settings: Settings) -> str:
    """THREADLINE_MAIL_DOMAIN, else the public URL's host name (an IP
    address is no mail domain: `localhost` then)."""
    if settings.mail_domain:
        return settings.mail_domain.lower()
    host = (urlsplit(settings.public_url).hostname or "").lower()
    if not host or host.replace(".", "").isdigit() or ":" in host:
        return "localhost"
    return host
