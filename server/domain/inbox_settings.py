"""One settings model per inbox kind, applied once at the edge of every
write (create and update), and the secrets each kind has.

A model names every key its kind accepts; any other key is refused by
name (`settings.bot_tokn: is not a setting of a slack inbox`), so a typo
never sits in the settings doing nothing. The widget's and email's own
rules live in widget_settings and email_settings; the chat kinds' here.

Secrets (a Slack bot token and signing secret, a social app's secret and
access token, mail server passwords) are write-only (PROTOCOLS.md P7):
`split_secrets` takes them out of the settings, which every agent of the
inbox may read and which events and responses carry, so the caller can
store them encrypted. A write sets or replaces a secret with text, or
clears it with null. Views show `<name>_set: true|false` in its place
(`with_secret_flags`); those flags are accepted back on a write and ignored,
so settings read from GET can be sent back as they are.

Pure: no storage, no clock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from server.domain.email_settings import validate_email_settings
from server.domain.errors import InvalidInput
from server.domain.values import InboxKind
from server.domain.widget_settings import validate_widget_settings

MAX_SECRET = 1000
MAX_CHANNELS = 100
SOCIAL_PLATFORMS = ("x", "facebook", "instagram")
_SLACK_TEAM = re.compile(r"^[TE][A-Z0-9]{2,30}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
_HANDLE = re.compile(r"^@?[A-Za-z0-9_.]{1,100}$")


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


@dataclasses.dataclass(frozen=True)
class Secret:
    """A secret setting: where it is written in the settings (`path`) and
    the name it is stored under in the inbox's encrypted secrets."""

    path: tuple[str, ...]
    name: str

    @property
    def flag(self) -> tuple[str, ...]:
        return (*self.path[:-1], f"{self.path[-1]}_set")


@dataclasses.dataclass(frozen=True)
class SettingsModel:
    """What an inbox of one kind may have in its settings: `validate`
    checks and canonicalises the non-secret keys (refusing unknown ones);
    `secrets` are split off before it runs."""

    kind: InboxKind
    validate: Callable[[Mapping[str, Any], str], dict[str, Any]]
    secrets: tuple[Secret, ...] = ()


def _keys(
    kind: InboxKind, allowed: frozenset[str], settings: Mapping[str, Any], field: str
) -> None:
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise _fail(f"{field}.{unknown[0][:100]}", f"is not a setting of a {kind.value} inbox")


def _strict(
    kind: InboxKind,
    allowed: frozenset[str],
    validate: Callable[[Mapping[str, Any], str], dict[str, Any]],
) -> Callable[[Mapping[str, Any], str], dict[str, Any]]:
    def check(settings: Mapping[str, Any], field: str) -> dict[str, Any]:
        _keys(kind, allowed, settings, field)
        return validate(settings, field)

    return check


def _slack(settings: Mapping[str, Any], field: str) -> dict[str, Any]:
    out = dict(settings)
    if "team_id" in out:
        team = out["team_id"]
        if not isinstance(team, str) or not _SLACK_TEAM.match(team):
            raise _fail(f"{field}.team_id", "must be a Slack team id such as T0123ABCD")
    if "channel_ids" in out:
        out["channel_ids"] = _channels(out["channel_ids"], f"{field}.channel_ids")
    return out


def _channels(value: Any, field: str) -> list[str]:
    """Slack channel ids; one string of ids separated by spaces or commas
    is accepted too (the REST API's settings are mostly scalar)."""
    items = re.split(r"[\s,]+", value.strip()) if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_CHANNELS:
        raise _fail(field, f"must be a list of at most {MAX_CHANNELS} Slack channel ids")
    out: list[str] = []
    for i, item in enumerate(x for x in items if x != ""):
        if not isinstance(item, str) or not _SLACK_CHANNEL.match(item):
            raise _fail(f"{field}[{i}]", "must be a Slack channel id such as C0123ABCD")
        if item not in out:
            out.append(item)
    return out


def _social(settings: Mapping[str, Any], field: str) -> dict[str, Any]:
    out = dict(settings)
    if "platform" in out and out["platform"] not in SOCIAL_PLATFORMS:
        raise _fail(f"{field}.platform", f"must be one of: {', '.join(SOCIAL_PLATFORMS)}")
    if "account" in out:
        account = out["account"]
        if not isinstance(account, str) or not _HANDLE.match(account):
            raise _fail(f"{field}.account", "must be an account handle such as @acme")
    return out


def _nothing(settings: Mapping[str, Any], field: str) -> dict[str, Any]:
    return dict(settings)


def _mail_password(server: str) -> Secret:
    return Secret((server, "password"), f"{server}_password")


MODELS: dict[InboxKind, SettingsModel] = {
    model.kind: model
    for model in (
        # The widget and email validators refuse unknown keys themselves
        # (their nested objects need it too).
        SettingsModel(InboxKind.WIDGET, validate_widget_settings),
        SettingsModel(
            InboxKind.EMAIL,
            validate_email_settings,
            (_mail_password("smtp"), _mail_password("imap")),
        ),
        SettingsModel(InboxKind.API, _strict(InboxKind.API, frozenset(), _nothing)),
        SettingsModel(
            InboxKind.SLACK,
            _strict(InboxKind.SLACK, frozenset({"team_id", "channel_ids"}), _slack),
            (Secret(("bot_token",), "bot_token"), Secret(("signing_secret",), "signing_secret")),
        ),
        SettingsModel(
            InboxKind.SOCIAL,
            _strict(InboxKind.SOCIAL, frozenset({"platform", "account"}), _social),
            (Secret(("app_secret",), "app_secret"), Secret(("access_token",), "access_token")),
        ),
    )
}


def secret_names(kind: InboxKind) -> tuple[str, ...]:
    return tuple(s.name for s in MODELS[kind].secrets)


def split_secrets(
    kind: InboxKind, settings: Mapping[str, Any], field: str = "settings"
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(settings without this kind's secrets or their `_set` flags,
    {stored name: new text, or None to clear}). A secret key of another
    kind stays in the settings, for `validate_settings` to refuse."""
    out = dict(settings)
    changes: dict[str, str | None] = {}
    for secret in MODELS[kind].secrets:
        parent = _parent(out, secret.path)
        if parent is None:
            continue
        parent.pop(secret.flag[-1], None)
        leaf = secret.path[-1]
        if leaf not in parent:
            continue
        value = parent.pop(leaf)
        where = ".".join((field, *secret.path))
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_SECRET):
            raise _fail(where, f"must be text of 1 to {MAX_SECRET} characters, or null to clear")
        if value is not None and "\x00" in value:
            raise _fail(where, "must not contain NUL characters")
        changes[secret.name] = value
    return out, changes


def _parent(settings: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """The (copied, so the caller's input is left alone) object holding
    `path`'s last key, or None if the settings have no such object."""
    here = settings
    for key in path[:-1]:
        block = here.get(key)
        if not isinstance(block, dict):
            return None
        here[key] = block = dict(block)
        here = block
    return here


def validate_settings(
    kind: InboxKind, settings: Mapping[str, Any], field: str = "settings"
) -> dict[str, Any]:
    """The settings to store (secrets already split off), checked as a
    whole by the kind's model, or InvalidInput naming the first bad or
    unknown key."""
    return MODELS[kind].validate(settings, field)


def with_secret_flags(
    kind: InboxKind, settings: Mapping[str, Any], stored: Mapping[str, str]
) -> dict[str, Any]:
    """`settings` as shown to an agent: each secret's `<name>_set` flag in
    its place (inside its object, for mail servers that are configured)."""
    out = dict(settings)
    for secret in MODELS[kind].secrets:
        parent = _parent(out, secret.path)
        if parent is not None:
            parent[secret.flag[-1]] = secret.name in stored
    return out
