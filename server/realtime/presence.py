"""Agent presence and "who is viewing this conversation", across processes.
Pure: time is a parameter.

Each process ("node") announces, for every agent with a socket on it, that
agent's status there (online / away) and which conversations it is viewing,
with a time-to-live; it repeats the announcement before the TTL runs out
(heartbeat) and announces `offline` / not-viewing when the last socket goes.
Every node folds all announcements into the same boards, so an agent with
sockets on two processes is online while either is, and a crashed process's
entries simply expire. None of this is written to the event log.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

TTL = timedelta(seconds=60)
HEARTBEAT = timedelta(seconds=20)

_RANK = {"offline": 0, "away": 1, "online": 2}


def best_status(statuses: list[str]) -> str:
    """online beats away beats offline."""
    return max(statuses, key=_RANK.__getitem__, default="offline")


@dataclasses.dataclass
class PresenceBoard:
    """Status of each agent, per node, with expiry."""

    entries: dict[tuple[int, str], tuple[str, datetime]] = dataclasses.field(default_factory=dict)

    def status(self, agent_id: int, now: datetime) -> str:
        return best_status(
            [s for (a, _), (s, exp) in self.entries.items() if a == agent_id and exp > now]
        )

    def announce(
        self, agent_id: int, node: str, status: str, now: datetime, ttl: timedelta = TTL
    ) -> bool:
        """Record a node's announcement; True if the agent's overall status
        changed (the caller tells the clients)."""
        before = self.status(agent_id, now)
        if status == "offline":
            self.entries.pop((agent_id, node), None)
        else:
            self.entries[(agent_id, node)] = (status, now + ttl)
        return self.status(agent_id, now) != before

    def expire(self, now: datetime) -> list[int]:
        """Drop expired entries; the agents whose overall status changed
        (compared with what clients last heard, expired entries included)."""
        stale = [key for key, (_, exp) in self.entries.items() if exp <= now]
        agents = {agent_id for agent_id, _ in stale}
        before = {
            a: best_status([s for (x, _), (s, _) in self.entries.items() if x == a]) for a in agents
        }
        for key in stale:
            del self.entries[key]
        return sorted(a for a in agents if self.status(a, now) != before[a])

    def snapshot(self, now: datetime) -> dict[int, str]:
        agents = {a for a, _ in self.entries}
        return {a: self.status(a, now) for a in sorted(agents) if self.status(a, now) != "offline"}


@dataclasses.dataclass
class ViewingBoard:
    """Which agents view which conversation, per node, with expiry. The
    inbox is kept so a receiver's access can be checked."""

    entries: dict[tuple[int, int, str], datetime] = dataclasses.field(default_factory=dict)
    inboxes: dict[int, int] = dataclasses.field(default_factory=dict)

    def viewers(self, conversation_id: int, now: datetime) -> list[int]:
        return sorted(
            {a for (c, a, _), exp in self.entries.items() if c == conversation_id and exp > now}
        )

    def announce(
        self,
        conversation_id: int,
        inbox_id: int,
        agent_id: int,
        *,
        node: str,
        viewing: bool,
        now: datetime,
        ttl: timedelta = TTL,
    ) -> bool:
        """True if the set of viewers of the conversation changed."""
        before = self.viewers(conversation_id, now)
        self.inboxes[conversation_id] = inbox_id
        if viewing:
            self.entries[(conversation_id, agent_id, node)] = now + ttl
        else:
            self.entries.pop((conversation_id, agent_id, node), None)
        return self.viewers(conversation_id, now) != before

    def expire(self, now: datetime) -> list[int]:
        """Drop expired entries; the conversations whose viewers changed."""
        stale = [key for key, exp in self.entries.items() if exp <= now]
        touched = {c for c, _, _ in stale}
        before = {c: sorted({a for (x, a, _) in self.entries if x == c}) for c in touched}
        for key in stale:
            del self.entries[key]
        return sorted(c for c in touched if self.viewers(c, now) != before[c])


@dataclasses.dataclass
class LocalAgent:
    """What this node knows first-hand of one agent: the status and the
    viewed conversation of each of its sockets here."""

    sockets: dict[str, tuple[str, int | None]] = dataclasses.field(default_factory=dict)

    def status(self) -> str:
        return best_status([s for s, _ in self.sockets.values()])

    def viewing(self) -> set[int]:
        return {c for _, c in self.sockets.values() if c is not None}
