"""One-click unsubscribe tokens (PROTOCOLS.md P4, RFC 8058): the link in
our automatic mail names the workspace and the address it was sent to,
signed, so the page needs no login and can't be pointed at anyone else.
Pure: the key is a parameter."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from server.domain.errors import InvalidInput
from server.domain.integers import parse_int

_PURPOSE = b"threadline unsubscribe\x00"
_SIG_BYTES = 16
MAX_TOKEN = 600


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes | None:
    """The bytes of `text` if it is exactly how `_b64` spells them: the
    decoder would skip stray characters and ignore padding bits, and a
    link has one spelling."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    return raw if _b64(raw) == text else None


def _sig(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _PURPOSE + payload, hashlib.sha256).digest()[:_SIG_BYTES]


def make_unsubscribe_token(workspace_id: int, address: str, *, key: bytes) -> str:
    payload = f"{workspace_id}:{address.strip().lower()}".encode()
    return f"{_b64(payload)}.{_b64(_sig(key, payload))}"


def unsubscribe_url(public_url: str, workspace_id: int, address: str, *, key: bytes) -> str:
    """The one-click link: in the List-Unsubscribe header and in the
    template's `links.unsubscribe`, the same URL."""
    return f"{public_url}/u/{make_unsubscribe_token(workspace_id, address, key=key)}"


def parse_unsubscribe_token(token: str, keys: Sequence[bytes]) -> tuple[int, str] | None:
    """(workspace_id, address), or None for anything we did not sign."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        return None
    body, sig = token.split(".")
    payload, given = _unb64(body), _unb64(sig)
    if payload is None or given is None or len(given) != _SIG_BYTES:
        return None
    if not any(hmac.compare_digest(_sig(key, payload), given) for key in keys):
        return None
    workspace, _, address = payload.decode("utf-8", "replace").partition(":")
    if "@" not in address:
        return None
    try:
        return parse_int(workspace, "workspace", minimum=1), address
    except InvalidInput:
        return None
