"""Canned responses' pure rules: shortcut slugs and audience keys."""

from __future__ import annotations

import pytest

from server.domain.canned_responses import normalize_shortcut, owner_key, search_term
from server.domain.errors import InvalidInput
from server.domain.values import CannedScope


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("refund", "refund"),
        ("Refund", "refund"),
        ("  /Refund-Policy ", "refund-policy"),
        ("order_status_2", "order_status_2"),
        ("a", "a"),
        ("x" * 50, "x" * 50),
    ],
)
def test_shortcuts_are_stored_as_lowercase_slugs(raw: str, stored: str) -> None:
    assert normalize_shortcut(raw) == stored


@pytest.mark.parametrize(
    "raw",
    ["", "  ", "/", "two words", "x" * 51, "-lead", "trail-", "a--b", "a/b", "ümlaut", "a%", "a_"],
)
def test_anything_but_a_slug_is_refused_on_the_shortcut_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_shortcut(raw)
    assert err.value.field == "shortcut"


def test_search_terms_match_how_shortcuts_are_stored() -> None:
    assert search_term(" /Ref ") == "ref"
    assert search_term("") == ""


def test_owner_keys_name_one_audience_each() -> None:
    def key(scope: CannedScope) -> str:
        return owner_key(scope, team_id=3, inbox_id=5, agent_id=7)

    assert [key(s) for s in CannedScope] == ["workspace", "team:3", "inbox:5", "agent:7"]
    with pytest.raises(ValueError, match="owner"):
        owner_key(CannedScope.TEAM, team_id=None, inbox_id=5, agent_id=7)
