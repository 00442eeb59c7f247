"""Saved-filter queries (server.domain.saved_filters): the stored form,
and refusals naming `query.<key>`."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.errors import InvalidInput
from server.domain.saved_filters import (
    MAX_POSITION,
    clean_name,
    clean_position,
    clean_query,
)


@pytest.mark.parametrize(
    ("query", "stored"),
    [
        ({}, {}),
        ({"status": ["pending", "open", "open"]}, {"status": ["open", "pending"]}),
        ({"status": []}, {}),
        ({"inbox_id": 3, "team_id": 4, "assignee_id": 5, "contact_id": 6}, None),
        ({"label": " VIP "}, {"label": "vip"}),
        ({"mine": True, "unassigned": False}, {"mine": True}),
        ({"unassigned": True}, None),
    ],
)
def test_clean_form(query: dict[str, Any], stored: dict[str, Any] | None) -> None:
    assert clean_query(query) == (query if stored is None else stored)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ([], "query"),
        ("status=open", "query"),
        ({"priority": "high"}, "query.priority"),
        ({"cursor": "x"}, "query.cursor"),
        ({"limit": 5}, "query.limit"),
        ({"status": "open"}, "query.status"),
        ({"status": ["open"] * 5}, "query.status"),
        ({"status": ["open", "closed"]}, "query.status[1]"),
        ({"inbox_id": 0}, "query.inbox_id"),
        ({"team_id": "3"}, "query.team_id"),
        ({"assignee_id": True}, "query.assignee_id"),
        ({"contact_id": 2**63}, "query.contact_id"),
        ({"label": ""}, "query.label"),
        ({"label": "a,b"}, "query.label"),
        ({"label": 7}, "query.label"),
        ({"label": "x\x00"}, "query.label"),
        ({"mine": "yes"}, "query.mine"),
        ({"unassigned": 1}, "query.unassigned"),
    ],
)
def test_bad_queries_name_the_key(query: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_query(query)
    assert caught.value.field == field


@pytest.mark.parametrize("name", ["", " ", "x" * 101, "\x00"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_name(name)
    assert caught.value.field == "name"


@pytest.mark.parametrize("position", [-1, MAX_POSITION + 1, True])
def test_bad_positions(position: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_position(position)
    assert caught.value.field == "position"
