"""Segments compiled to SQL (server.queries.segments), on SQLite and
PostgreSQL: each condition kind against contacts that would match
without it, groups, workspace sealing and merged contacts.

Setup writes go through actions where there is one; consent rows and
`last_seen_at` have no action yet, so they are written directly."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.contact_merges import do_merge_contacts
from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_labels, do_create_conversation
from server.domain.json_types import JsonValue
from server.domain.segments import parse_filter
from server.domain.values import IdentityKind
from server.queries.reading import read
from server.queries.segments import (
    contact_in_segment,
    segment_count,
    segment_matches,
    segment_preview,
)
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, seed_workspace


async def contact(
    runtime: Runtime, ws: Workspace, name: str, attributes: dict[str, JsonValue] | None = None
) -> int:
    contact_id: int = await perform(
        runtime, ws.admin, do_create_contact, name=name, attributes=attributes or {}
    )
    return contact_id


async def track(
    runtime: Runtime,
    ws: Workspace,
    contact_id: int,
    name: str,
    at: datetime,
    properties: dict[str, JsonValue] | None = None,
) -> None:
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contact_events.insert().values(
                workspace_id=ws.id,
                contact_id=contact_id,
                name=name,
                properties=properties or {},
                created_at=at,
            )
        )


async def matching(
    runtime: Runtime, ws: Workspace, spec: dict[str, Any], now: datetime = T0
) -> set[int]:
    parsed = parse_filter(spec)
    ids = await read(runtime, segment_matches, ws.id, parsed, now, after_id=0, limit=10_000)
    assert await read(runtime, segment_count, ws.id, parsed, now) == len(ids)
    return set(ids)


def where(*conditions: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"match": match, "conditions": list(conditions)}


async def test_cart_in_the_last_4h_and_no_order(runtime: Runtime, ws: Workspace) -> None:
    carted = await contact(runtime, ws, "Carted")
    ordered = await contact(runtime, ws, "Ordered")
    stale = await contact(runtime, ws, "Stale cart")
    now = T0 + timedelta(hours=10)
    await track(runtime, ws, carted, "cart_updated", now - timedelta(hours=1))
    await track(runtime, ws, ordered, "cart_updated", now - timedelta(hours=2))
    await track(runtime, ws, ordered, "order_placed", now - timedelta(hours=1))
    await track(runtime, ws, stale, "cart_updated", now - timedelta(hours=5))
    spec = where(
        {"event": "cart_updated", "within": "4h"},
        {"event": "order_placed", "within": "4h", "count": {"max": 0}},
    )
    assert await matching(runtime, ws, spec, now) == {carted}
    # Without the "no order" condition the buyer matches too; without the
    # window the stale cart does.
    assert await matching(runtime, ws, where(spec["conditions"][0]), now) == {carted, ordered}
    assert await matching(runtime, ws, where({"event": "cart_updated"}), now) == {
        carted,
        ordered,
        stale,
    }
    # Three hours earlier the stale cart was fresh, and the other two were
    # still to come: an event after `now` is not counted.
    assert await matching(runtime, ws, spec, now - timedelta(hours=3)) == {stale}


async def test_event_counts_and_properties(runtime: Runtime, ws: Workspace) -> None:
    once, thrice = await contact(runtime, ws, "Once"), await contact(runtime, ws, "Thrice")
    await track(runtime, ws, once, "page_viewed", T0, {"path": "/Pricing", "n": 2})
    for _ in range(3):
        await track(runtime, ws, thrice, "page_viewed", T0, {"path": "/docs", "n": 1})
    assert await matching(runtime, ws, where({"event": "page_viewed", "count": {"min": 2}})) == {
        thrice
    }
    assert await matching(
        runtime, ws, where({"event": "page_viewed", "count": {"min": 1, "max": 2}})
    ) == {once}
    assert await matching(
        runtime, ws, where({"event": "page_viewed", "where": {"path": "/pricing"}})
    ) == {once}
    assert await matching(runtime, ws, where({"event": "page_viewed", "where": {"n": 1}})) == {
        thrice
    }
    # "never viewed a page" includes every contact without the event.
    never = await matching(runtime, ws, where({"event": "page_viewed", "count": {"max": 0}}))
    assert once not in never and thrice not in never and ws.contact_id in never


async def test_attribute_operators(runtime: Runtime, ws: Workspace) -> None:
    pro = await contact(runtime, ws, "Pro", {"plan": "Pro", "seats": 12, "beta": True})
    free = await contact(runtime, ws, "Free", {"plan": "free", "seats": 1, "beta": False})
    texty = await contact(runtime, ws, "Texty", {"plan": "pro team", "seats": "12"})
    nulled = await contact(runtime, ws, "Nulled", {"plan": None})
    bare = ws.contact_id  # no attributes at all

    def a(op: str, value: Any = None, key: str = "plan") -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": key, "op": op}
        if op not in ("exists", "missing"):
            out["value"] = value
        return where(out)

    assert await matching(runtime, ws, a("eq", "pro")) == {pro}
    assert await matching(runtime, ws, a("ne", "pro")) == {free, texty, nulled, bare}
    assert await matching(runtime, ws, a("in", ["FREE", "pro"])) == {pro, free}
    assert await matching(runtime, ws, a("contains", "PRO")) == {pro, texty}
    assert await matching(runtime, ws, a("exists")) == {pro, free, texty}
    assert await matching(runtime, ws, a("missing")) == {nulled, bare}
    # Numbers compare as numbers; the string "12" is not a number.
    assert await matching(runtime, ws, a("gt", 1, "seats")) == {pro}
    assert await matching(runtime, ws, a("gte", 1, "seats")) == {pro, free}
    assert await matching(runtime, ws, a("lt", 12, "seats")) == {free}
    assert await matching(runtime, ws, a("lte", 12.0, "seats")) == {pro, free}
    assert await matching(runtime, ws, a("eq", 12, "seats")) == {pro}
    assert await matching(runtime, ws, a("eq", "12", "seats")) == {texty}
    assert await matching(runtime, ws, a("eq", True, "beta")) == {pro}
    assert await matching(runtime, ws, a("eq", False, "beta")) == {free}


async def test_last_seen_and_created(runtime: Runtime, ws: Workspace) -> None:
    recent = await contact(runtime, ws, "Recent")
    lapsed = await contact(runtime, ws, "Lapsed")
    never = await contact(runtime, ws, "Never seen")
    now = T0 + timedelta(days=60)
    async with runtime.db.write() as conn:
        for cid, seen in ((recent, now - timedelta(days=2)), (lapsed, now - timedelta(days=40))):
            await conn.execute(
                t.contacts.update().where(t.contacts.c.id == cid).values(last_seen_at=seen)
            )
        await conn.execute(
            t.contacts.update()
            .where(t.contacts.c.id == ws.contact_id)
            .values(last_seen_at=now - timedelta(days=3), created_at=now - timedelta(days=3))
        )
    assert await matching(runtime, ws, where({"last_seen": {"within": "30d"}}), now) == {
        recent,
        ws.contact_id,
    }
    assert await matching(runtime, ws, where({"last_seen": {"before": "30d"}}), now) == {
        lapsed,
        never,
    }
    # The three new contacts were created at T0, 60 days before `now`.
    assert await matching(runtime, ws, where({"created": {"within": "7d"}}), now) == {ws.contact_id}
    assert await matching(runtime, ws, where({"created": {"before": 86_400 * 59}}), now) == {
        recent,
        lapsed,
        never,
    }


async def test_identity_label_and_consent(runtime: Runtime, ws: Workspace) -> None:
    phoned = await perform(
        runtime,
        ws.admin,
        do_create_contact,
        name="Phoned",
        identities=[IdentityInput(IdentityKind.PHONE, "+1 555 0100")],
    )
    assert await matching(runtime, ws, where({"identity": "phone"})) == {phoned}
    assert await matching(runtime, ws, where({"identity": "email", "exists": False})) == {phoned}

    await perform(
        runtime,
        ws.admin,
        do_change_conversation_labels,
        conversation_id=ws.conversation_id,
        add=["VIP"],
    )
    other_conv = await perform(
        runtime, ws.admin, do_create_conversation, inbox_id=ws.inbox_id, contact_id=phoned
    )
    await perform(
        runtime, ws.admin, do_change_conversation_labels, conversation_id=other_conv, add=["x"]
    )
    assert await matching(runtime, ws, where({"label": "vip"})) == {ws.contact_id}

    withdrew = await contact(runtime, ws, "Withdrew")
    async with runtime.db.write() as conn:
        for cid, state, at in (
            (ws.contact_id, "withdrawn", T0),
            (ws.contact_id, "granted", T0 + timedelta(minutes=1)),
            (withdrew, "granted", T0),
            (withdrew, "withdrawn", T0 + timedelta(minutes=1)),
            # Another topic says nothing about marketing.
            (phoned, "granted", T0),
        ):
            topic = "news" if cid == phoned else "marketing"
            await conn.execute(
                t.consents.insert().values(
                    workspace_id=ws.id,
                    contact_id=cid,
                    channel="email",
                    topic=topic,
                    state=state,
                    source="test",
                    at=at,
                )
            )

    def consent(state: str) -> dict[str, Any]:
        return where({"consent": {"channel": "email", "topic": "marketing", "state": state}})

    assert await matching(runtime, ws, consent("granted")) == {ws.contact_id}
    assert await matching(runtime, ws, consent("withdrawn")) == {withdrew}
    assert await matching(runtime, ws, consent("none")) == {phoned}


async def test_nested_any_and_all(runtime: Runtime, ws: Workspace) -> None:
    a = await contact(runtime, ws, "A", {"plan": "pro", "country": "de"})
    b = await contact(runtime, ws, "B", {"plan": "free", "country": "de"})
    c = await contact(runtime, ws, "C", {"plan": "free", "country": "de"})
    d = await contact(runtime, ws, "D", {"plan": "pro", "country": "fr"})
    await track(runtime, ws, b, "cart_updated", T0)
    await track(runtime, ws, d, "cart_updated", T0)
    spec = where(
        {"attribute": "country", "op": "eq", "value": "de"},
        where(
            {"attribute": "plan", "op": "eq", "value": "pro"},
            where({"event": "cart_updated"}, {"attribute": "plan", "op": "eq", "value": "free"}),
            match="any",
        ),
    )
    # de AND (pro OR (cart AND free)): C (de, free, no cart) and D (fr) out.
    assert await matching(runtime, ws, spec) == {a, b}
    # de OR (...): every de contact, and D for being pro.
    spec["match"] = "any"
    assert await matching(runtime, ws, spec) == {a, b, c, d}
    # The innermost group alone: cart AND free.
    assert await matching(runtime, ws, spec["conditions"][1]["conditions"][1]) == {b}
    assert await matching(runtime, ws, where()) == {a, b, c, d, ws.contact_id}


async def test_sealed_to_the_workspace_and_merged_contacts_left_out(
    runtime: Runtime, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Other Co")
    ours = await contact(runtime, ws, "Ours", {"plan": "pro"})
    twin = await contact(runtime, ws, "Twin", {"plan": "pro"})
    theirs = await contact(runtime, other, "Theirs", {"plan": "pro"})
    spec = where({"attribute": "plan", "op": "eq", "value": "pro"})
    assert await matching(runtime, ws, spec) == {ours, twin}
    assert await matching(runtime, other, spec) == {theirs}
    await perform(runtime, ws.admin, do_merge_contacts, contact_id=ours, other_id=twin)
    assert await matching(runtime, ws, spec) == {ours}
    parsed = parse_filter(spec)
    assert await read(runtime, contact_in_segment, ws.id, parsed, ours, T0)
    assert not await read(runtime, contact_in_segment, ws.id, parsed, twin, T0)
    assert not await read(runtime, contact_in_segment, ws.id, parsed, theirs, T0)


async def test_preview_and_paging(runtime: Runtime, ws: Workspace) -> None:
    ids = [await contact(runtime, ws, f"P{i}", {"plan": "pro"}) for i in range(5)]
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contacts.update().where(t.contacts.c.id == ids[1]).values(last_seen_at=T0)
        )
    parsed = parse_filter(where({"attribute": "plan", "op": "eq", "value": "pro"}))
    preview = await read(runtime, segment_preview, ws.id, parsed, T0, 3)
    # Seen first, then newest.
    assert [p.id for p in preview] == [ids[1], ids[4], ids[3]]
    assert preview[0].last_seen_at == T0 and preview[1].last_seen_at is None
    first = await read(runtime, segment_matches, ws.id, parsed, T0, after_id=0, limit=2)
    rest = await read(runtime, segment_matches, ws.id, parsed, T0, after_id=first[-1], limit=10)
    assert first + rest == ids


async def test_preview_shows_the_email_identity(runtime: Runtime, ws: Workspace) -> None:
    [row] = await read(
        runtime, segment_preview, ws.id, parse_filter(where({"identity": "email"})), T0
    )
    assert (row.id, row.name, row.email) == (ws.contact_id, "Cora Customer", "customer@acme.test")


@pytest.mark.parametrize("key", ["plan's", "ünïcode key", "a.b", "$x", 'say "hi"', "back\\slash"])
async def test_attribute_keys_are_not_paths(runtime: Runtime, ws: Workspace, key: str) -> None:
    """A key is one key, whatever it holds: `a.b` is not `a` then `b`."""
    cid = await contact(runtime, ws, "Keyed", {key: "yes", "a": {"b": "yes"}})
    spec = where({"attribute": key, "op": "eq", "value": "yes"})
    assert await matching(runtime, ws, spec) == {cid}
    async with runtime.db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.contacts)) == 2
