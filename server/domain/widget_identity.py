"""Widget identity rules (PROTOCOLS.md P3), pure and stdlib only.

A site proves who its logged-in user is in one of two ways, both keyed by
the inbox's secret:

- `identityHash = hex(HMAC-SHA256(inbox_secret, user_id))`: proves the user
  id only (an email sent alongside it stays a claim);
- a JWT signed with HS256 carrying `sub` (the user id), `email` and `exp`:
  proves both.

The verified flag is whatever these functions decide; nothing the client
says about verification is ever read. Time is a parameter (`now`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from server.domain.errors import Forbidden

MAX_TOKEN_LENGTH = 4096
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def identity_hash(secret: str, user_id: str) -> str:
    """What the site's backend computes for `user_id`."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def identity_token(secret: str, user_id: str, email: str, expires_at: datetime) -> str:
    """What the site's backend signs for its logged-in user: an HS256 JWT
    with `sub`, `email` and `exp` (whole seconds), the form
    `verify_identity_token` accepts."""
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": user_id, "email": email, "exp": math.floor(expires_at.timestamp())}
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signed = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def verify_identity_hash(secret: str, user_id: str, given: str) -> bool:
    """True when `given` is the HMAC of `user_id` (hex, any case), compared
    in constant time."""
    expected = identity_hash(secret, user_id).encode()
    return hmac.compare_digest(expected, given.strip().lower().encode())


@dataclasses.dataclass(frozen=True)
class IdentityClaims:
    """What a verified identity token says about the user."""

    user_id: str
    email: str
    expires_at: datetime


def _reject(reason: str, field: str) -> Forbidden:
    return Forbidden(f"{field}: {reason}", field=field)


def _b64decode(part: str, field: str) -> bytes:
    if not _B64URL.match(part):
        raise _reject("is not base64url", field)
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise _reject("is not base64url", field) from None


def _json_object(raw: bytes, field: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _reject("is not a JSON web token", field) from None
    if not isinstance(value, dict):
        raise _reject("is not a JSON web token", field)
    return value


def _numeric_date(claims: dict[str, Any], name: str, field: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _reject(f"claim '{name}' must be a number of seconds", field)
    return float(value)


def verify_identity_token(
    token: str, secret: str, now: datetime, *, field: str = "identity_token"
) -> IdentityClaims:
    """The claims of an HS256 JWT signed with `secret`, or Forbidden naming
    `field`. Only HS256 is accepted (never `none`, never another algorithm
    the header might ask for); the signature is checked before any claim is
    trusted; `sub`, `email` and `exp` are required and `exp` must be after
    `now` (an `nbf`, if present, must not be after `now`)."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise _reject("is too long", field)
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise _reject("is not a JSON web token", field)
    header_part, payload_part, signature_part = parts
    header = _json_object(_b64decode(header_part, field), field)
    if header.get("alg") != "HS256":
        raise _reject("must be signed with HS256", field)
    if "crit" in header:
        raise _reject("uses unsupported critical extensions", field)
    signature = _b64decode(signature_part, field)
    signed = f"{header_part}.{payload_part}".encode("ascii")
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise _reject("has a bad signature", field)
    claims = _json_object(_b64decode(payload_part, field), field)
    sub, email = claims.get("sub"), claims.get("email")
    if not isinstance(sub, str) or not sub.strip():
        raise _reject("claim 'sub' is required", field)
    if not isinstance(email, str) or not email.strip():
        raise _reject("claim 'email' is required", field)
    exp = _numeric_date(claims, "exp", field)
    if now.timestamp() >= exp:
        raise _reject("has expired", field)
    if "nbf" in claims and _numeric_date(claims, "nbf", field) > now.timestamp():
        raise _reject("is not valid yet", field)
    try:
        expires_at = datetime.fromtimestamp(exp, UTC)
    except (OverflowError, ValueError, OSError):
        expires_at = datetime.max.replace(tzinfo=UTC)
    return IdentityClaims(user_id=sub.strip(), email=email.strip(), expires_at=expires_at)


# -- where a widget may run -------------------------------------------------


def normalize_origin(origin: str) -> str:
    """`HTTPS://Shop.Example/` -> `https://shop.example`."""
    return origin.strip().rstrip("/").lower()


def allowed_origins(setting: Any) -> list[str]:
    """An inbox's `allowed_domains` setting as origins: a list of strings,
    or one string of origins separated by commas or spaces (settings set
    through the REST API are scalar). Anything else counts as no list."""
    items: Iterable[Any]
    if isinstance(setting, str):
        items = re.split(r"[\s,]+", setting)
    elif isinstance(setting, list):
        items = setting
    else:
        return []
    return [normalize_origin(item) for item in items if isinstance(item, str) and item.strip()]


def origin_allowed(origin: str | None, setting: Any) -> bool:
    """Whether a page at `origin` may use the widget of an inbox whose
    `allowed_domains` setting is `setting`. No list (or an empty one)
    allows every site; `origin` None means the request came from no
    foreign page (Threadline's own iframe, or not a browser)."""
    allowed = allowed_origins(setting)
    if not allowed or origin is None:
        return True
    return normalize_origin(origin) in allowed
