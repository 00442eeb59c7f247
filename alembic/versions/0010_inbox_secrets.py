"""Slack and social inboxes' secrets move out of their settings (which
every agent of the inbox may read, and which responses and events
carried) into the inbox's encrypted secrets, joining what is already
there.

The encryption is spelled out here rather than imported, so the migration
keeps working whatever becomes of the application's code; it matches
server.storage.secrets.SecretBox. The key is the server's
(THREADLINE_SECRET_KEY, or the key file in the data directory), handed over
by `threadline migrate`/`serve` or read like the server reads it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRETS = {"slack": ("bot_token", "signing_secret"), "social": ("app_secret", "access_token")}

inboxes = sa.table(
    "inboxes",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("settings", sa.JSON),
    sa.column("secret_encrypted", sa.Text),
)


def _aead() -> AESGCM:
    key = context.config.attributes.get("secret_key")
    if not key:
        from server.settings import Settings  # only when there is something to move

        key = Settings.from_env().secret_key
    return AESGCM(hashlib.sha256(b"threadline-secretbox\x00" + str(key).encode()).digest())


def _decrypt(aead: AESGCM, token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    raw = base64.urlsafe_b64decode(token.encode())
    try:
        found = json.loads(aead.decrypt(raw[:12], raw[12:], None))
    except (InvalidTag, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _encrypt(aead: AESGCM, value: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, json.dumps(value, sort_keys=True).encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def upgrade() -> None:
    if context.is_offline_mode():
        return  # rows can't be read when only emitting SQL
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(inboxes).where(inboxes.c.kind.in_(list(SECRETS)))
    ).all()
    moving = [r for r in rows if any(k in (r.settings or {}) for k in SECRETS[r.kind])]
    if not moving:
        return
    aead = _aead()
    for row in moving:
        settings = dict(row.settings)
        found = {k: settings.pop(k) for k in SECRETS[row.kind] if k in settings}
        stored = _decrypt(aead, row.secret_encrypted)
        stored.update({k: v for k, v in found.items() if isinstance(v, str) and v})
        conn.execute(
            inboxes.update()
            .where(inboxes.c.id == row.id)
            .values(settings=settings, secret_encrypted=_encrypt(aead, stored) if stored else None)
        )


def downgrade() -> None:
    # The secrets stay encrypted: writing them back in clear is not undone
    # by a schema downgrade.
    pass
