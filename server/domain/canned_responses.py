"""Canned responses' pure rules: what a shortcut looks like and how a
response's audience (its scope and owner) is spelled for uniqueness."""

from __future__ import annotations

import re

from server.domain.errors import InvalidInput
from server.domain.values import CannedScope

SHORTCUT_MAX = 50
# A lowercase slug: what an agent types after "/" in the composer, so no
# spaces and nothing a URL or a search needs to escape.
_SHORTCUT = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


def normalize_shortcut(raw: str) -> str:
    """The stored form of a shortcut: trimmed, lower case, without the "/"
    an agent types before it. Anything else than a slug is refused."""
    text = raw.strip().removeprefix("/").lower()
    if not text:
        raise InvalidInput("shortcut: must not be empty", field="shortcut")
    if len(text) > SHORTCUT_MAX:
        raise InvalidInput(f"shortcut: must be at most {SHORTCUT_MAX} characters", field="shortcut")
    if not _SHORTCUT.fullmatch(text):
        raise InvalidInput(
            "shortcut: letters a-z and digits, words joined by - or _ (like refund-policy)",
            field="shortcut",
        )
    return text


def search_term(q: str) -> str:
    """A search as typed in the composer ("/Ref") in the form shortcuts are
    stored in, so it matches their prefixes."""
    return q.strip().removeprefix("/").lower()


def owner_key(
    scope: CannedScope, *, team_id: int | None, inbox_id: int | None, agent_id: int | None
) -> str:
    """The audience as one string ("workspace", "team:3", "inbox:5",
    "agent:7"). Shortcuts are unique per workspace and owner key: a plain
    UNIQUE constraint can do that, where one over the nullable id columns
    could not (NULLs never collide)."""
    owner = {
        CannedScope.WORKSPACE: None,
        CannedScope.TEAM: team_id,
        CannedScope.INBOX: inbox_id,
        CannedScope.PERSONAL: agent_id,
    }[scope]
    if scope is CannedScope.WORKSPACE:
        return scope.value
    if owner is None:
        raise ValueError(f"a {scope.value} canned response needs its owner's id")
    prefix = "agent" if scope is CannedScope.PERSONAL else scope.value
    return f"{prefix}:{owner}"
