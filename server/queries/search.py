"""The command palette's search (FEATURES.md F4 `Ctrl+K`, a first step of
F10): contacts by name or identity, conversations by subject, message
text or their contact's name and identities, case-insensitive substring
matches.

Who sees what follows server.queries.access: contacts are visible
workspace-wide (as `GET /contacts` lists them), so a contact is found by
its own name and identities whatever inbox it wrote to, but its
`conversation_count` only counts conversations the caller can see, and
message text is only ever searched inside the caller's inboxes. Private
notes are searched too: every caller is an agent, and agents read notes.

These are plain `LIKE '%q%'` scans (bench/b9_search_probe.py measures
them); an FTS5 / Meilisearch index replaces them when search becomes a
consumer of the event stream (F10). Merged contacts and merged
conversations (`merged_into_id` set) are left out: what they held lives
on in the survivor, which is found instead.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.previews import snippet
from server.domain.values import IdentityKind
from server.queries.access import inbox_filter, visible_inbox_ids
from server.queries.contacts import identities_of
from server.queries.conversations import ListedConversation, conversation_views_with_extras
from server.queries.records import load
from server.storage import tables as t

MIN_QUERY = 2
MAX_QUERY = 200
DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 50

# What a phone number may be typed as: "+1 (555) 010-0", "555.0100".
_PHONE_LIKE = re.compile(r"[\d\s()+.\-]+")


def like_escape(text: str) -> str:
    """`text` as a literal inside a LIKE pattern with ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Matcher:
    """Case-insensitive LIKE for the connection's database.

    SQLite's LIKE already ignores ASCII case, which is all the case folding
    its `lower()` knows, so a bare LIKE gives the same answers as
    `lower(x) LIKE lower(p)` without a function call per row; PostgreSQL's
    ILIKE folds every script.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._sqlite = conn.dialect.name == "sqlite"

    def __call__(self, column: sa.ColumnElement[Any], pattern: str) -> sa.ColumnElement[bool]:
        if self._sqlite:
            return column.like(pattern, escape="\\")
        return column.ilike(pattern, escape="\\")


async def search(
    conn: AsyncConnection, actor: Actor, q: str, *, limit: int = DEFAULT_SEARCH_LIMIT
) -> dict[str, JsonValue]:
    """Up to `limit` contacts and `limit` conversations matching `q`.

    Contacts: name or identity value contains `q` (phone identities also
    match the digits of a typed number); names starting with `q` first,
    then newest. Conversations: subject or any message text contains `q`,
    or their contact matches as above; newest activity first, each with
    where it matched (the subject, else its newest matching message, else
    `contact`) and a snippet around the hit."""
    q = q.strip()
    if not MIN_QUERY <= len(q) <= MAX_QUERY:
        raise InvalidInput(f"q: must be {MIN_QUERY} to {MAX_QUERY} characters", field="q")
    s = _Search(conn, actor, await visible_inbox_ids(conn, actor), _Matcher(conn), q, limit)
    return {"contacts": await s.contacts(), "conversations": await s.conversations()}


def _phone_digits(q: str) -> str | None:
    """The digits of `q` when it reads as (part of) a phone number: phone
    identities are stored as digits only (server.domain.values)."""
    if not _PHONE_LIKE.fullmatch(q):
        return None
    digits = "".join(ch for ch in q if ch.isdigit())
    return digits if len(digits) >= MIN_QUERY else None


@dataclasses.dataclass(frozen=True, slots=True)
class _ContactHit:
    id: int
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class _ConversationHit:
    """A conversation found, and whether its subject or its contact matched."""

    listed: ListedConversation
    subject_hit: bool
    contact_hit: bool

    @property
    def id(self) -> int:
        return self.listed.conversation.id


@dataclasses.dataclass(frozen=True)
class _Search:
    """One search: the caller, what it may see and the query."""

    conn: AsyncConnection
    actor: Actor
    visible: list[int] | None  # inbox ids; None: all (admins)
    like: _Matcher
    q: str
    limit: int

    @property
    def pattern(self) -> str:
        return f"%{like_escape(self.q)}%"

    def contact_hit(self) -> sa.ColumnElement[bool]:
        """A contact (not merged away) whose name or one of whose
        identities matches."""
        ct, ci = t.contacts.c, t.contact_identities.c
        identity_hit = self.like(ci.value, self.pattern)
        digits = _phone_digits(self.q)
        if digits is not None:
            identity_hit = sa.or_(
                identity_hit,
                sa.and_(ci.kind == IdentityKind.PHONE.value, ci.value.contains(digits)),
            )
        ws = self.actor.workspace_id
        return sa.and_(
            ct.workspace_id == ws,
            ct.merged_into_id.is_(None),
            sa.or_(
                self.like(ct.name, self.pattern),
                # One pass over the identities rather than a probe per
                # contact (5x faster at 10k contacts on SQLite).
                ct.id.in_(sa.select(ci.contact_id).where(ci.workspace_id == ws, identity_hit)),
            ),
        )

    async def contacts(self) -> list[dict[str, JsonValue]]:
        ct = t.contacts.c
        stmt: sa.Select[Any] = (
            sa.select(ct.id, ct.name)
            .where(self.contact_hit())
            .order_by(
                sa.case((self.like(ct.name, f"{like_escape(self.q)}%"), 0), else_=1),
                ct.created_at.desc(),
                ct.id.desc(),
            )
            .limit(self.limit)
        )
        rows = [load(_ContactHit, r) for r in await self.conn.execute(stmt)]
        ids = [r.id for r in rows]
        identities = await identities_of(self.conn, ids)
        counts = await self._conversation_counts(ids)
        return [
            {
                "id": r.id,
                "name": r.name,
                "identities": [{"kind": i.kind, "value": i.value} for i in identities[r.id]],
                "conversation_count": counts.get(r.id, 0),
            }
            for r in rows
        ]

    async def _conversation_counts(self, contact_ids: list[int]) -> dict[int, int]:
        """Per contact, the conversations the caller can see (merged ones,
        emptied into another, not counted)."""
        if not contact_ids:
            return {}
        c = t.conversations.c
        rows = await self.conn.execute(
            sa.select(c.contact_id, sa.func.count().label("n"))
            .where(
                c.contact_id.in_(contact_ids),
                c.workspace_id == self.actor.workspace_id,
                c.merged_into_id.is_(None),
                inbox_filter(c.inbox_id, self.visible),
            )
            .group_by(c.contact_id)
        )
        return {int(r.contact_id): int(r.n) for r in rows}

    async def conversations(self) -> list[dict[str, JsonValue]]:
        c, m, r = t.conversations.c, t.messages.c, t.conversation_reads.c
        subject_hit = self.like(c.subject, self.pattern)
        # Probes each conversation's messages through the (conversation_id,
        # seq) index. Walking one inbox newest first (ix_conversations_inbox_
        # activity) a common word stops after `limit` hits; a rare word, or
        # an admin's walk (sorted, no index covers it), reads every visible
        # message once. Measured in bench/b9_search_probe.py.
        message_hit = sa.exists().where(m.conversation_id == c.id, self.like(m.text, self.pattern))
        # Searching a customer's name lists their conversations too.
        contact_hit = c.contact_id.in_(sa.select(t.contacts.c.id).where(self.contact_hit()))
        stmt = (
            sa.select(
                t.conversations,
                r.last_read_seq.label("my_read_seq"),
                sa.case((subject_hit, 1), else_=0).label("subject_hit"),
                sa.case((contact_hit, 1), else_=0).label("contact_hit"),
            )
            .outerjoin(
                t.conversation_reads,
                sa.and_(r.conversation_id == c.id, r.agent_id == self.actor.agent_id),
            )
            .where(
                c.workspace_id == self.actor.workspace_id,
                c.merged_into_id.is_(None),
                inbox_filter(c.inbox_id, self.visible),
                sa.or_(subject_hit, message_hit, contact_hit),
            )
            .order_by(c.last_activity_at.desc(), c.id.desc())
            .limit(self.limit)
        )
        rows = [
            _ConversationHit(ListedConversation.load(r), bool(r.subject_hit), bool(r.contact_hit))
            for r in await self.conn.execute(stmt)
        ]
        hits = await self._newest_matching_messages([r.id for r in rows if not r.subject_hit])
        shown = await conversation_views_with_extras(
            self.conn, self.actor, [r.listed for r in rows]
        )
        out: list[dict[str, JsonValue]] = []
        for row in rows:
            if row.id not in shown:  # deleted meanwhile
                continue
            seq: int | None = None
            if row.subject_hit:
                # Matched, so not NULL.
                field, text = "subject", row.listed.conversation.subject or ""
            elif row.id in hits:
                field, (seq, text) = "message", hits[row.id]
            elif row.contact_hit:
                # The customer matched, not the conversation's own text.
                field, text = "contact", shown[row.id][1].contact_name
            else:
                field, text = "message", ""
            match: dict[str, JsonValue] = {
                "field": field,
                "message_seq": seq,
                "snippet": snippet(text, self.q),
            }
            out.append({"conversation": shown[row.id][0], "match": match})
        return out

    async def _newest_matching_messages(
        self, conversation_ids: list[int]
    ) -> dict[int, tuple[int, str]]:
        """Per conversation, the seq and text of its newest matching
        message: one query for the whole page."""
        if not conversation_ids:
            return {}
        m = t.messages.c
        newest = (
            sa.select(m.conversation_id, sa.func.max(m.seq).label("seq"))
            .where(m.conversation_id.in_(conversation_ids), self.like(m.text, self.pattern))
            .group_by(m.conversation_id)
            .subquery()
        )
        rows = await self.conn.execute(
            sa.select(m.conversation_id, m.seq, m.text).join(
                newest,
                sa.and_(newest.c.conversation_id == m.conversation_id, newest.c.seq == m.seq),
            )
        )
        return {int(r.conversation_id): (int(r.seq), str(r.text)) for r in rows}
