"""Reading segments (F7): who matches a saved filter over contacts, now.

A parsed filter (server.domain.segments) compiles to one WHERE over
`contacts`: each condition on another table is a correlated EXISTS (or
count) subquery, so the database answers a count, a preview or a page of
ids in one statement. Every statement is sealed to the workspace and
leaves out contacts merged into another (they are kept only for undo).

Custom attributes and event properties are JSON, read on both databases:
SQLite through json_each (type and value of one key), PostgreSQL through
jsonb `->`/`->>` and jsonb_typeof; any key, quotes included. A value's JSON type is checked
before it is compared, inside a CASE, so "plan" = "pro" never matches the
number 3 and PostgreSQL never casts a string to a number (CASE is the one
place SQL promises the order of evaluation). Each predicate is true or
false, never NULL, so `ne`, `missing` and a `max` count negate cleanly.

Segments are every agent's to read; writing them is for admins
(server.actions.segments).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.domain.segments import (
    AttributeCondition,
    AttributeOp,
    Condition,
    ConsentCondition,
    ConsentState,
    EventCondition,
    Group,
    IdentityCondition,
    LabelCondition,
    Match,
    Scalar,
    TimeCondition,
    parse_filter,
)
from server.domain.values import IdentityKind
from server.queries.api_shapes import iso
from server.queries.records import Segment, load, load_or_none
from server.storage import tables as t

MAX_PREVIEW = 100
DEFAULT_PREVIEW = 20


# -- JSON values, on both databases ------------------------------------------


@dataclasses.dataclass(frozen=True)
class _JsonKey:
    """One key of a JSON object column, read the way `dialect` can."""

    column: sa.ColumnElement[Any]
    key: str
    sqlite: bool

    def _entry(self, what: str, type_: Any) -> sa.ColumnElement[Any]:
        """SQLite: the key's `type` or `value` through json_each, which
        decodes keys as stored (a `$."key"` path compares the raw, escaped
        text and has no escape for a double quote)."""
        entry = sa.func.json_each(self.column).table_valued("key", "type", "value")
        column = entry.c.type if what == "type" else entry.c.value
        picked: sa.ColumnElement[Any] = (
            sa.select(sa.type_coerce(column, type_))
            .where(entry.c.key == self.key)
            .scalar_subquery()
        )
        return picked

    def _kind(self) -> sa.ColumnElement[str]:
        """The value's JSON type, '' when the key is absent."""
        if self.sqlite:
            raw = self._entry("type", sa.String)
        else:
            raw = sa.func.jsonb_typeof(self.column[self.key], type_=sa.String)
        return sa.func.coalesce(raw, "")

    def _text(self) -> sa.ColumnElement[str]:
        if self.sqlite:
            return self._entry("value", sa.String)
        text: sa.ColumnElement[str] = self.column[self.key].as_string()
        return text

    def _number(self) -> sa.ColumnElement[float]:
        if self.sqlite:
            return self._entry("value", sa.Float)
        return sa.cast(self.column[self.key].as_string(), sa.Float)

    def is_string(self) -> sa.ColumnElement[bool]:
        return self._kind() == ("text" if self.sqlite else "string")

    def is_number(self) -> sa.ColumnElement[bool]:
        if self.sqlite:
            return self._kind().in_(("integer", "real"))
        return self._kind() == "number"

    def present(self) -> sa.ColumnElement[bool]:
        """Set and not JSON null (both databases call null 'null')."""
        return self._kind().not_in(("", "null"))

    def is_bool(self, value: bool) -> sa.ColumnElement[bool]:
        if self.sqlite:
            return self._kind() == ("true" if value else "false")
        return sa.and_(self._kind() == "boolean", self._text() == ("true" if value else "false"))

    def lower_text(self) -> sa.ColumnElement[str]:
        return sa.func.lower(self._text())

    def compare_number(self, op: AttributeOp, value: float) -> sa.ColumnElement[bool]:
        n = self._number()
        test = {
            AttributeOp.EQ: n == value,
            AttributeOp.GT: n > value,
            AttributeOp.GTE: n >= value,
            AttributeOp.LT: n < value,
            AttributeOp.LTE: n <= value,
        }[op]
        return sa.case((self.is_number(), test), else_=sa.false())

    def equals(self, value: Scalar) -> sa.ColumnElement[bool]:
        if isinstance(value, bool):
            return self.is_bool(value)
        if isinstance(value, int | float):
            return self.compare_number(AttributeOp.EQ, float(value))
        return sa.and_(self.is_string(), self.lower_text() == value.lower())

    def contains(self, value: str) -> sa.ColumnElement[bool]:
        return sa.and_(self.is_string(), self.lower_text().contains(value.lower(), autoescape=True))


# -- compiling a filter ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Compiler:
    now: datetime
    sqlite: bool

    def group(self, g: Group) -> sa.ColumnElement[bool]:
        parts = [self.condition(c) for c in g.conditions]
        if g.match is Match.ALL:
            return sa.and_(sa.true(), *parts)
        return sa.or_(sa.false(), *parts)

    def condition(self, c: Condition) -> sa.ColumnElement[bool]:
        if isinstance(c, Group):
            return self.group(c)
        if isinstance(c, AttributeCondition):
            return self.attribute(c)
        if isinstance(c, EventCondition):
            return self.event(c)
        if isinstance(c, TimeCondition):
            return self.time(c)
        if isinstance(c, IdentityCondition):
            return self.identity(c)
        if isinstance(c, ConsentCondition):
            return self.consent(c)
        return self.label(c)

    def attribute(self, c: AttributeCondition) -> sa.ColumnElement[bool]:
        j = _JsonKey(t.contacts.c.attributes, c.key, self.sqlite)
        if c.op is AttributeOp.EXISTS:
            return j.present()
        if c.op is AttributeOp.MISSING:
            return sa.not_(j.present())
        if c.op is AttributeOp.IN:
            assert isinstance(c.value, tuple)
            return sa.or_(sa.false(), *(j.equals(v) for v in c.value))
        assert c.value is not None and not isinstance(c.value, tuple)
        if c.op is AttributeOp.CONTAINS:
            assert isinstance(c.value, str)
            return j.contains(c.value)
        if c.op is AttributeOp.EQ:
            return j.equals(c.value)
        if c.op is AttributeOp.NE:
            return sa.not_(j.equals(c.value))
        assert isinstance(c.value, int | float) and not isinstance(c.value, bool)
        return j.compare_number(c.op, float(c.value))

    def event(self, c: EventCondition) -> sa.ColumnElement[bool]:
        e = t.contact_events.c
        where: list[sa.ColumnElement[bool]] = [
            e.contact_id == t.contacts.c.id,
            e.name == c.name,
            e.created_at <= self.now,
        ]
        if c.within is not None:
            where.append(e.created_at >= c.within.before(self.now))
        for key, value in c.where:
            where.append(_JsonKey(e.properties, key, self.sqlite).equals(value))
        if c.min_count is None and c.max_count is None:
            return sa.true()
        # The common cases, "did it" and "never did", as EXISTS: the
        # database stops at the first row.
        if c.min_count == 1 and c.max_count is None:
            return sa.exists().where(*where)
        if c.min_count is None and c.max_count == 0:
            return ~sa.exists().where(*where)
        n = sa.select(sa.func.count()).select_from(t.contact_events).where(*where)
        tests: list[sa.ColumnElement[bool]] = []
        if c.min_count is not None:
            tests.append(n.scalar_subquery() >= c.min_count)
        if c.max_count is not None:
            tests.append(n.scalar_subquery() <= c.max_count)
        return sa.and_(*tests)

    def time(self, c: TimeCondition) -> sa.ColumnElement[bool]:
        column = t.contacts.c.last_seen_at if c.column == "last_seen" else t.contacts.c.created_at
        if c.within is not None:
            return sa.and_(column.is_not(None), column >= c.within.before(self.now))
        assert c.before is not None
        return sa.or_(column.is_(None), column < c.before.before(self.now))

    def identity(self, c: IdentityCondition) -> sa.ColumnElement[bool]:
        i = t.contact_identities.c
        has = sa.exists().where(i.contact_id == t.contacts.c.id, i.kind == c.kind.value)
        return has if c.exists else ~has

    def consent(self, c: ConsentCondition) -> sa.ColumnElement[bool]:
        k = t.consents.c
        latest = (
            sa.select(k.state)
            .where(k.contact_id == t.contacts.c.id, k.channel == c.channel, k.topic == c.topic)
            .order_by(k.at.desc(), k.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        return sa.func.coalesce(latest, ConsentState.NONE.value) == c.state.value

    def label(self, c: LabelCondition) -> sa.ColumnElement[bool]:
        cv, cl = t.conversations.c, t.conversation_labels.c
        return sa.exists().where(
            cv.contact_id == t.contacts.c.id, cl.conversation_id == cv.id, cl.label == c.label
        )


def segment_where(
    conn: AsyncConnection, workspace_id: int, segment_filter: Group, now: datetime
) -> sa.ColumnElement[bool]:
    """The WHERE over `contacts` that picks the segment's contacts at `now`:
    sealed to the workspace, merged contacts left out."""
    c = t.contacts.c
    matches = _Compiler(now, conn.dialect.name == "sqlite").group(segment_filter)
    return sa.and_(c.workspace_id == workspace_id, c.merged_into_id.is_(None), matches)


async def segment_count(
    conn: AsyncConnection, workspace_id: int, segment_filter: Group, now: datetime
) -> int:
    where = segment_where(conn, workspace_id, segment_filter, now)
    n = await conn.scalar(sa.select(sa.func.count()).select_from(t.contacts).where(where))
    return int(n or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class SegmentContact:
    """A contact as the segment editor lists it."""

    id: int
    name: str
    email: str | None
    last_seen_at: datetime | None


def segment_contact_view(row: SegmentContact) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "last_seen_at": iso(row.last_seen_at),
    }


async def segment_preview(
    conn: AsyncConnection,
    workspace_id: int,
    segment_filter: Group,
    now: datetime,
    limit: int = DEFAULT_PREVIEW,
) -> list[SegmentContact]:
    """Up to `limit` matching contacts, the most recently seen first (never
    seen last), then newest."""
    c, i = t.contacts.c, t.contact_identities.c
    email = (
        sa.select(i.value)
        .where(i.contact_id == c.id, i.kind == IdentityKind.EMAIL.value)
        .order_by(i.id)
        .limit(1)
        .scalar_subquery()
    )
    rows = await conn.execute(
        sa.select(c.id, c.name, email.label("email"), c.last_seen_at)
        .where(segment_where(conn, workspace_id, segment_filter, now))
        .order_by(c.last_seen_at.desc().nulls_last(), c.id.desc())
        .limit(max(1, min(limit, MAX_PREVIEW)))
    )
    return [SegmentContact(r.id, r.name, r.email, r.last_seen_at) for r in rows]


async def contact_in_segment(
    conn: AsyncConnection,
    workspace_id: int,
    segment_filter: Group,
    contact_id: int,
    now: datetime,
) -> bool:
    """Whether one contact matches (a trigger's entry check)."""
    where = segment_where(conn, workspace_id, segment_filter, now)
    found = await conn.scalar(
        sa.select(t.contacts.c.id).where(t.contacts.c.id == contact_id, where)
    )
    return found is not None


async def segment_matches(
    conn: AsyncConnection,
    workspace_id: int,
    segment_filter: Group,
    now: datetime,
    *,
    after_id: int,
    limit: int,
) -> list[int]:
    """The next `limit` matching contact ids above `after_id`, in id order:
    a broadcast (or a refresh) walks the segment page by page."""
    c = t.contacts.c
    rows = await conn.scalars(
        sa.select(c.id)
        .where(c.id > after_id, segment_where(conn, workspace_id, segment_filter, now))
        .order_by(c.id)
        .limit(limit)
    )
    return list(rows)


async def matching_among(
    conn: AsyncConnection,
    workspace_id: int,
    segment_filter: Group,
    now: datetime,
    contact_ids: list[int],
) -> set[int]:
    """Which of `contact_ids` match now."""
    if not contact_ids:
        return set()
    c = t.contacts.c
    rows = await conn.scalars(
        sa.select(c.id).where(
            c.id.in_(contact_ids), segment_where(conn, workspace_id, segment_filter, now)
        )
    )
    return set(rows)


# -- segments themselves -----------------------------------------------------


async def access_segment(
    conn: AsyncConnection, actor: Actor, segment_id: int, *, for_update: bool = False
) -> Segment:
    s = t.segments.c
    stmt = sa.select(t.segments).where(s.id == segment_id, s.workspace_id == actor.workspace_id)
    if for_update:
        stmt = stmt.with_for_update(of=t.segments)
    row = load_or_none(Segment, (await conn.execute(stmt)).first())
    if row is None:
        raise NotFound("segment not found")
    return row


def stored_filter(row: Segment) -> Group:
    """A segment's filter; stored in the form parse_filter reads back."""
    return parse_filter(row.filter)


async def _member_count(conn: AsyncConnection, segment_id: int) -> int:
    m = t.segment_members.c
    n = await conn.scalar(sa.select(sa.func.count()).where(m.segment_id == segment_id))
    return int(n or 0)


def segment_view(row: Segment, members: int) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "name": row.name,
        "filter": row.filter,
        # As of the last refresh (server.actions.segments); the live
        # number is GET /segments/{id}/count.
        "members": members,
        "created_by_id": row.created_by_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def list_segments(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    """The workspace's segments by name, with their member counts. Not
    paged: a workspace has at most server.domain.segments.MAX_PER_WORKSPACE."""
    s, m = t.segments.c, t.segment_members.c
    members = (
        sa.select(sa.func.count())
        .where(m.segment_id == s.id)
        .correlate(t.segments)
        .scalar_subquery()
        .label("members")
    )
    rows = await conn.execute(
        sa.select(t.segments, members)
        .where(s.workspace_id == actor.workspace_id)
        .order_by(s.name, s.id)
    )
    return {"items": [segment_view(load(Segment, r), int(r.members)) for r in rows]}


async def segment_detail(
    conn: AsyncConnection, actor: Actor, segment_id: int
) -> dict[str, JsonValue]:
    row = await access_segment(conn, actor, segment_id)
    return segment_view(row, await _member_count(conn, row.id))


async def saved_segment_count(
    conn: AsyncConnection, actor: Actor, segment_id: int, now: datetime
) -> dict[str, JsonValue]:
    row = await access_segment(conn, actor, segment_id)
    return {"count": await segment_count(conn, actor.workspace_id, stored_filter(row), now)}


async def saved_segment_preview(
    conn: AsyncConnection, actor: Actor, segment_id: int, now: datetime, limit: int
) -> dict[str, JsonValue]:
    row = await access_segment(conn, actor, segment_id)
    found = await segment_preview(conn, actor.workspace_id, stored_filter(row), now, limit)
    return {"items": [segment_contact_view(r) for r in found]}


async def draft_segment_preview(
    conn: AsyncConnection, actor: Actor, segment_filter: Group, now: datetime, limit: int
) -> dict[str, JsonValue]:
    """The editor's live view of a filter not saved yet."""
    count = await segment_count(conn, actor.workspace_id, segment_filter, now)
    found = await segment_preview(conn, actor.workspace_id, segment_filter, now, limit)
    return {"count": count, "contacts": [segment_contact_view(r) for r in found]}


async def touchpoints_using(conn: AsyncConnection, workspace_id: int, segment_id: int) -> list[str]:
    """The names of the touchpoints (not archived) that enter from, or
    broadcast to, the segment: deleting it would leave them without their
    audience."""
    tp = t.touchpoints.c
    rows = await conn.execute(
        sa.select(tp.name, tp.entry_segment_id, tp.trigger)
        .where(tp.workspace_id == workspace_id, tp.status != "archived")
        .order_by(tp.name, tp.id)
    )
    return [
        row.name
        for row in rows
        if row.entry_segment_id == segment_id
        or (isinstance(row.trigger, dict) and row.trigger.get("segment_id") == segment_id)
    ]
