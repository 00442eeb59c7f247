"""A widget inbox's own settings: checked on the way in, read on the way out.

The settings column is free-form JSON shared by every channel kind, so
nothing at the storage level stops `"require_verification": "no"` (truthy!)
or `"allowed_domains": "shop.example"` (no scheme: matches no Origin header,
so the widget silently stops loading). `validate_widget_settings` is run on
every write of a widget inbox's settings and refuses such values by field,
and any key it does not know (server.domain.inbox_settings: one model per
inbox kind).

Pure: `availability` takes `now` as a parameter.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from server.domain.business_hours import is_open, next_opening, parse_business_hours
from server.domain.email_settings import clean_from_name
from server.domain.errors import InvalidInput
from server.domain.widget_identity import allowed_origins, normalize_origin

MAX_GREETING = 500
MAX_AWAY_MESSAGE = 1000
MAX_ALLOWED_DOMAINS = 50
MAX_CONTINUITY_MINUTES = 7 * 24 * 60
PRECHAT_FIELD_MODES = ("off", "optional", "required")

# What a visitor's browser may be shown of these settings. Never
# allowed_domains (the embedding policy is the operator's business),
# continuity_email_after_minutes (internal timing) or business_hours (the
# visitor gets `availability` instead: open now, next opening).
PUBLIC_KEYS = ("greeting", "color", "locale", "require_verification", "prechat", "away_message")

_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,2}$")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def validate_widget_settings(
    settings: Mapping[str, Any], field: str = "settings"
) -> dict[str, Any]:
    """A copy of `settings` with every widget key checked and put in its
    canonical form, or InvalidInput naming the first bad or unknown one
    (`settings.prechat.email`, `settings.colour`)."""
    unknown = sorted(set(settings) - set(_CLEANERS))
    if unknown:
        raise _fail(f"{field}.{str(unknown[0])[:100]}", "is not a setting of a widget inbox")
    out = dict(settings)
    for key, clean in _CLEANERS.items():
        if key in out:
            out[key] = clean(out[key], f"{field}.{key}")
    return out


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(field, "must be true or false")
    return value


def _text(limit: int) -> Callable[[Any, str], str]:
    def clean(value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise _fail(field, "must be a string")
        if "\x00" in value:
            raise _fail(field, "must not contain NUL characters")
        if len(value) > limit:
            raise _fail(field, f"must be at most {limit} characters")
        return value

    return clean


def _color(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _COLOR.match(value):
        raise _fail(field, "must be a hex colour such as #1f6feb")
    return value.lower()


def _locale(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _LOCALE.match(value):
        raise _fail(field, "must be a language tag such as en or pt-BR")
    return value


def _minutes(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, "must be a whole number of minutes")
    if not 1 <= value <= MAX_CONTINUITY_MINUTES:
        raise _fail(field, f"must be between 1 and {MAX_CONTINUITY_MINUTES}")
    return value


def _allowed_domains(value: Any, field: str) -> list[str]:
    """Origins (scheme://host[:port]) as a browser sends them in `Origin`,
    so that widget_identity.origin_allowed can compare strings. The REST
    API's settings are scalar, so one string of origins separated by
    spaces or commas is accepted too and stored as the list."""
    if isinstance(value, str):
        items = [(field, item) for item in allowed_origins(value)]
    elif isinstance(value, list):
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _fail(f"{field}[{i}]", "must be a string")
            items.append((f"{field}[{i}]", item))
    else:
        raise _fail(field, "must be a list of origins such as https://shop.example")
    if len(items) > MAX_ALLOWED_DOMAINS:
        raise _fail(field, f"must have at most {MAX_ALLOWED_DOMAINS} origins")
    out: list[str] = []
    for where, item in items:
        origin = _origin(item, where)
        if origin not in out:
            out.append(origin)
    return out


def _origin(raw: str, field: str) -> str:
    text = normalize_origin(raw)
    problem = f"{raw[:100]!r} is not an origin such as https://shop.example"
    if not text.isascii():  # browsers send the punycode form in Origin
        raise _fail(field, problem + " (write an international name in its xn-- form)")
    # urlsplit would quietly drop a tab or newline; refuse them instead.
    if not text.isprintable() or any(c in text for c in "@?#\\ "):
        raise _fail(field, problem)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a bad port, or brackets that hold no IPv6 address
        raise _fail(field, problem) from None
    host = parts.hostname or ""
    if parts.scheme not in _DEFAULT_PORTS or parts.path or not _valid_host(host, parts.netloc):
        raise _fail(field, problem)
    if host.count(":"):  # IPv6 literals keep their brackets in an origin
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"  # browsers omit a default port
    return f"{parts.scheme}://{host}:{port}"


def _valid_host(host: str, netloc: str) -> bool:
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return bool(_HOSTNAME.match(host))


def _prechat(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, 'must be an object like {"enabled": true, "email": "required"}')
    for key in value:
        if key not in ("enabled", "name", "email"):
            raise _fail(f"{field}.{str(key)[:100]}", "unknown field")
    if "enabled" not in value:
        raise _fail(f"{field}.enabled", "is required")
    out: dict[str, Any] = {"enabled": _bool(value["enabled"], f"{field}.enabled")}
    for key in ("name", "email"):
        mode = value.get(key, "off")
        if mode not in PRECHAT_FIELD_MODES:
            raise _fail(f"{field}.{key}", "must be one of off, optional, required")
        out[key] = mode
    # An enabled form that asks for nothing would show the visitor an
    # empty step before the chat.
    if out["enabled"] and out["name"] == out["email"] == "off":
        raise _fail(field, "an enabled pre-chat form must ask for name or email")
    return out


def _business_hours(value: Any, field: str) -> dict[str, Any]:
    return parse_business_hours(value, field).to_settings()


_CLEANERS: dict[str, Callable[[Any, str], Any]] = {
    "allowed_domains": _allowed_domains,
    "require_verification": _bool,
    "greeting": _text(MAX_GREETING),
    "color": _color,
    "locale": _locale,
    "away_message": _text(MAX_AWAY_MESSAGE),
    "prechat": _prechat,
    "business_hours": _business_hours,
    "continuity_email_after_minutes": _minutes,
    # The name chat-continuity emails go out under (server.actions.chat_continuity).
    "from_name": clean_from_name,
}


def availability(settings: Mapping[str, Any], now: datetime, agents_online: bool) -> dict[str, Any]:
    """What the widget shows about getting an answer:
    `{"agents_online", "open_now", "next_open_at" (ISO, UTC), "away_message"}`.

    No business hours means always open. `next_open_at` is set only when
    closed and the next opening is within 14 days; `away_message` only when
    nobody will answer now (closed, or no agent online), so the widget can
    show it as is.
    """
    try:
        hours = (
            parse_business_hours(settings["business_hours"])
            if "business_hours" in settings
            else None
        )
    except InvalidInput:
        # Written before settings were validated: a visitor is better
        # served by "open" than by a widget that fails to load.
        hours = None
    open_now = hours is None or is_open(hours, now)
    opens = None if hours is None or open_now else next_opening(hours, now)
    away = settings.get("away_message")
    if (open_now and agents_online) or not isinstance(away, str) or not away.strip():
        away = None
    return {
        "agents_online": agents_online,
        "open_now": open_now,
        "next_open_at": opens.isoformat() if opens is not None else None,
        "away_message": away,
    }
