"""Test support shared by every suite: a runtime on a real database, seed
data made through actions (never raw inserts), API clients, and a way to
read back what actions emitted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.agents import do_create_agent
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_status
from server.actions.inboxes import do_add_inbox_member, do_create_inbox
from server.actions.messages import do_receive_message
from server.actions.workspaces import do_create_workspace
from server.app import create_app
from server.clock import FrozenClock
from server.domain.actors import Actor, ActorKind, system_actor
from server.domain.values import ConversationStatus, IdentityKind, InboxKind, Role
from server.runtime import Runtime
from server.settings import Settings
from server.storage import tables as t

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
BASE_URL = "http://testserver"


def make_runtime(database_url: str, data_dir: Path, **env: str) -> Runtime:
    settings = Settings.from_env(
        {},
        THREADLINE_DATA_DIR=str(data_dir),
        THREADLINE_DATABASE_URL=database_url,
        THREADLINE_PUBLIC_URL=BASE_URL,
        **env,
    )
    return Runtime.create(settings, clock=FrozenClock(T0))


def agent_actor(workspace_id: int, agent_id: int, role: Role = Role.AGENT) -> Actor:
    return Actor(kind=ActorKind.AGENT, workspace_id=workspace_id, agent_id=agent_id, role=role)


@dataclasses.dataclass
class Workspace:
    """One seeded workspace: an admin, an agent who is a member of `inbox`
    only, an `other_inbox` the agent is not a member of, one contact with
    an open conversation in `inbox`."""

    id: int
    admin_id: int
    admin_email: str
    agent_id: int
    agent_email: str
    inbox_id: int
    other_inbox_id: int
    contact_id: int
    conversation_id: int

    @property
    def system(self) -> Actor:
        return system_actor(self.id)

    @property
    def admin(self) -> Actor:
        return agent_actor(self.id, self.admin_id, Role.ADMIN)

    @property
    def agent(self) -> Actor:
        return agent_actor(self.id, self.agent_id)


async def seed_workspace(runtime: Runtime, name: str = "Acme") -> Workspace:
    tag = name.lower().replace(" ", "")
    ws = await perform(runtime, system_actor(0), do_create_workspace, name=name)
    sys = system_actor(ws)
    admin_email, agent_email = f"admin@{tag}.test", f"agent@{tag}.test"
    admin_id = await perform(
        runtime,
        sys,
        do_create_agent,
        email=admin_email,
        name="Ada Admin",
        password=PASSWORD,
        role=Role.ADMIN,
    )
    agent_id = await perform(
        runtime, sys, do_create_agent, email=agent_email, name="Gus Agent", password=PASSWORD
    )
    inbox = await perform(
        runtime,
        sys,
        do_create_inbox,
        name="Website",
        kind=InboxKind.WIDGET,
        settings={},
        box=runtime.secrets,
    )
    other = await perform(
        runtime,
        sys,
        do_create_inbox,
        name="Billing",
        kind=InboxKind.EMAIL,
        settings={},
        box=runtime.secrets,
    )
    await perform(runtime, sys, do_add_inbox_member, inbox_id=inbox.inbox_id, agent_id=agent_id)
    received = await perform(
        runtime,
        sys,
        do_receive_message,
        inbox_id=inbox.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, f"customer@{tag}.test"),
        name="Cora Customer",
        text="Hello, my order is late",
    )
    return Workspace(
        id=ws,
        admin_id=admin_id,
        admin_email=admin_email,
        agent_id=agent_id,
        agent_email=agent_email,
        inbox_id=inbox.inbox_id,
        other_inbox_id=other.inbox_id,
        contact_id=received.contact_id,
        conversation_id=received.conversation_id,
    )


async def snooze(runtime: Runtime, ws: Workspace, cid: int, until: datetime) -> None:
    """The workspace's agent snoozes conversation `cid` until `until`."""
    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=cid,
        status=ConversationStatus.SNOOZED,
        snoozed_until=until,
    )


async def events_since(runtime: Runtime, after_id: int) -> list[tuple[str, dict[str, Any]]]:
    """(type, payload) of every event logged after `after_id`, in order."""
    async with runtime.db.read() as conn:
        rows = await conn.execute(
            sa.select(t.events.c.type, t.events.c.payload)
            .where(t.events.c.id > after_id)
            .order_by(t.events.c.id)
        )
        return [(r.type, r.payload) for r in rows]


async def fetch_all(runtime: Runtime, stmt: sa.Select[Any]) -> list[sa.Row[Any]]:
    """Rows of `stmt`, read in their own transaction (to check what actions wrote)."""
    async with runtime.db.read() as conn:
        return list((await conn.execute(stmt)).all())


async def fetch_one(runtime: Runtime, stmt: sa.Select[Any]) -> sa.Row[Any]:
    rows = await fetch_all(runtime, stmt)
    assert len(rows) == 1, rows
    return rows[0]


async def identity_rows(runtime: Runtime, contact_id: int) -> list[tuple[str, str, bool]]:
    """A contact's identities as (kind, value, verified), oldest first."""
    ci = t.contact_identities.c
    rows = await fetch_all(
        runtime,
        sa.select(ci.kind, ci.value, ci.verified)
        .where(ci.contact_id == contact_id)
        .order_by(ci.id),
    )
    return [(r.kind, r.value, r.verified) for r in rows]


async def last_event_id(runtime: Runtime) -> int:
    async with runtime.db.read() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(t.events.c.id), 0))) or 0
        )


def client(runtime: Runtime) -> httpx.AsyncClient:
    """An in-process client for the ASGI app (no socket)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime)), base_url=BASE_URL
    )


async def login(c: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Log `c` in with a session cookie; sets the CSRF header on the client
    so later writes pass. Returns the CSRF token."""
    res = await c.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert res.status_code == 200, res.text
    csrf: str = res.json()["csrf_token"]
    c.headers["x-csrf-token"] = csrf
    return csrf


async def token_client(runtime: Runtime, email: str) -> httpx.AsyncClient:
    """A client authenticated with a fresh personal API token of `email`."""
    c = client(runtime)
    await login(c, email)
    res = await c.post("/api/v1/tokens", json={"name": "test"})
    assert res.status_code == 201, res.text
    token = res.json()["token"]
    await c.aclose()
    bearer = client(runtime)
    bearer.headers["authorization"] = f"Bearer {token}"
    return bearer


# Integers as text that Python's int() takes, or str.isdigit() takes and
# int() then refuses ('²' answered 500): none of them is a number here.
# A value for each text path param (Endpoint.text_params) of any route: a
# promo code is found by its text, so the other workspace's checks are in
# tests/touchpoints/test_promo_codes.py.
TEXT_PARAMS = {"code": "NO-SUCH-CODE"}

BAD_INTEGERS = [
    "²",
    "١٢",  # Arabic-Indic digits
    "\uff11\uff12",  # full-width 12
    "1\n",
    " 1",
    "1 ",
    "+1",
    "1_0",
    "0x1",
    "1e3",
    "1.0",
    "--1",
    "9" * 30,
    "-" + "9" * 30,
]
