"""An inbox's secrets, decrypted, for the server's own use: the mail
passwords its SMTP/IMAP clients log in with, a Slack bot token... Never
for a response (PROTOCOLS.md P7): views show only which are set
(server.domain.inbox_settings.with_secret_flags)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage import tables as t
from server.storage.secrets import SecretBox


def inbox_secrets_of(box: SecretBox, secret_encrypted: str | None) -> dict[str, str]:
    """The secrets an inbox stored, by name (`smtp_password`, `bot_token`...).
    They are one encrypted JSON object; a widget inbox's HMAC key is not
    one and reads as {}."""
    if not secret_encrypted:
        return {}
    try:
        found = json.loads(box.decrypt(secret_encrypted))
    except ValueError:
        return {}
    return {k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {}


async def inbox_secrets(conn: AsyncConnection, box: SecretBox, inbox_id: int) -> dict[str, str]:
    """`inbox_secrets_of` an inbox by id ({} if there is no such inbox)."""
    sealed = await conn.scalar(
        sa.select(t.inboxes.c.secret_encrypted).where(t.inboxes.c.id == inbox_id)
    )
    return inbox_secrets_of(box, sealed)
