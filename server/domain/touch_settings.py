"""A workspace's touchpoint settings (TOUCHPOINTS.md rule 3), pure.

Stored in `workspaces.settings["touchpoints"]`; anything absent takes its
default, so a new workspace is capped and quiet from the start:

    {"timezone": "Europe/Berlin",
     "caps": {"marketing": [{"count": 1, "window": "16h"},
                            {"count": 3, "window": "7d"}],
              "service": [{"count": 2, "window": "24h"}]},
     "quiet_hours": {"start": "21:00", "end": "08:00"},
     "consent": "opt_out"}

`timezone` is the zone of last resort for quiet hours and local send times
(after the contact's own and the one its widget reports). Caps count the
touches a contact got of one kind across every touchpoint and channel;
transactional touches (a receipt) are never capped. `consent` says who
marketing may reach: `opt_out` (everyone who has not withdrawn) or
`opt_in` (only those who granted it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import time
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.touch_timing import (
    DEFAULT_MARKETING_CAPS,
    FrequencyCap,
    QuietHours,
    caps_json,
    parse_caps,
    parse_quiet_hours,
    quiet_hours_json,
)
from server.domain.touchpoints import TouchKind

SETTINGS_KEY = "touchpoints"
MAX_ZONE = 64

DEFAULT_SERVICE_CAPS: tuple[FrequencyCap, ...] = (FrequencyCap(2, 24 * 3600),)
DEFAULT_QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))


class ConsentMode(StrEnum):
    OPT_OUT = "opt_out"  # marketing reaches who has not withdrawn
    OPT_IN = "opt_in"  # marketing reaches only who granted consent


@dataclasses.dataclass(frozen=True)
class TouchSettings:
    timezone: str = "UTC"
    marketing_caps: tuple[FrequencyCap, ...] = DEFAULT_MARKETING_CAPS
    service_caps: tuple[FrequencyCap, ...] = DEFAULT_SERVICE_CAPS
    quiet_hours: QuietHours = DEFAULT_QUIET_HOURS
    consent: ConsentMode = ConsentMode.OPT_OUT

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def caps_for(self, kind: str) -> tuple[FrequencyCap, ...]:
        """The caps a touch of `kind` counts against (none: transactional)."""
        if kind == TouchKind.MARKETING.value:
            return self.marketing_caps
        if kind == TouchKind.SERVICE.value:
            return self.service_caps
        return ()


DEFAULTS = TouchSettings()

_FIELDS = ("timezone", "caps", "quiet_hours", "consent")
_CAP_KINDS = (TouchKind.MARKETING.value, TouchKind.SERVICE.value)


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def _zone(value: JsonValue, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ZONE:
        raise _fail(field, 'must be an IANA time zone such as "Europe/Berlin"')
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(field, f"{value!r} is not a known IANA time zone") from None
    return value


def parse_touch_settings(
    raw: JsonValue, field: str = "touchpoints", *, base: TouchSettings = DEFAULTS
) -> TouchSettings:
    """Settings from JSON, refusing by field anything the engine could not
    use. Keys left out keep `base`'s values (the stored settings, for a
    PATCH; the defaults when reading what is stored)."""
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise _fail(field, "must be an object")
    for key in raw:
        if key not in _FIELDS:
            raise _fail(f"{field}.{str(key)[:60]}", "is not a known field")
    out = base
    if "timezone" in raw:
        out = dataclasses.replace(out, timezone=_zone(raw["timezone"], f"{field}.timezone"))
    if "caps" in raw:
        out = _with_caps(out, raw["caps"], f"{field}.caps")
    if "quiet_hours" in raw:
        quiet = parse_quiet_hours(raw["quiet_hours"], f"{field}.quiet_hours")
        if quiet is None:
            raise _fail(f"{field}.quiet_hours", 'must be an object such as {"start": "21:00"}')
        out = dataclasses.replace(out, quiet_hours=quiet)
    if "consent" in raw:
        try:
            mode = ConsentMode(str(raw["consent"]))
        except ValueError:
            raise _fail(f"{field}.consent", "must be opt_out or opt_in") from None
        out = dataclasses.replace(out, consent=mode)
    return out


def _with_caps(out: TouchSettings, caps: JsonValue, field: str) -> TouchSettings:
    if not isinstance(caps, Mapping):
        raise _fail(field, "must be an object with marketing and service")
    for key in caps:
        if key not in _CAP_KINDS:
            raise _fail(f"{field}.{str(key)[:60]}", "caps are set for marketing and service")
    if "marketing" in caps:
        out = dataclasses.replace(
            out, marketing_caps=parse_caps(caps["marketing"], f"{field}.marketing")
        )
    if "service" in caps:
        out = dataclasses.replace(out, service_caps=parse_caps(caps["service"], f"{field}.service"))
    return out


def touch_settings_of(workspace_settings: object) -> TouchSettings:
    """The workspace's settings as stored (absent or unreadable parts take
    the defaults: a bad stored value must not stop every send)."""
    stored = workspace_settings.get(SETTINGS_KEY) if isinstance(workspace_settings, dict) else None
    try:
        return parse_touch_settings(stored)
    except InvalidInput:
        return DEFAULTS


def settings_json(settings: TouchSettings) -> dict[str, JsonValue]:
    """The settings as an author sends them (round-trips with the parser)."""
    return {
        "timezone": settings.timezone,
        "caps": {
            "marketing": caps_json(settings.marketing_caps),
            "service": caps_json(settings.service_caps),
        },
        "quiet_hours": quiet_hours_json(settings.quiet_hours),
        "consent": settings.consent.value,
    }
