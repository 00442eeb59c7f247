"""The demo workspace: enough data that a first look shows what Threadline
does — two channels, one customer talking on both, one timeline."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from server.actions.agents import do_create_agent
from server.actions.canned_responses import do_create_canned_response
from server.actions.contacts import IdentityInput, do_add_contact_identity
from server.actions.context import perform
from server.actions.conversations import (
    do_assign_conversation,
    do_change_conversation_labels,
    do_change_conversation_status,
    do_set_conversation_priority,
)
from server.actions.inboxes import do_add_inbox_member, do_create_inbox, do_update_inbox
from server.actions.macros import do_create_macro
from server.actions.messages import do_receive_message, do_send_message
from server.actions.teams import do_add_team_member, do_create_team
from server.actions.workspaces import do_create_workspace
from server.clock import Clock
from server.demo_touchpoints import ensure_demo_touchpoints
from server.domain.actors import Actor, ActorKind, system_actor
from server.domain.macros import MacroScope
from server.domain.values import (
    CannedScope,
    ConversationStatus,
    IdentityKind,
    InboxKind,
    Priority,
    Role,
)
from server.domain.widget_identity import allowed_origins
from server.queries.access import access_inbox
from server.queries.agents import find_agent_id_by_email, workspace_agents
from server.queries.directory import visible_inboxes
from server.queries.events import workspace_ids
from server.queries.reading import read
from server.runtime import Runtime

DEMO_ADMIN_EMAIL = "admin@demo.threadline.test"
DEMO_SUPPORT_ADDRESS = "support@demo-shop.test"  # the demo email inbox's address
DEMO_PASSWORD = "threadline-demo"  # noqa: S105 -- printed on purpose; the demo is local
DEMO_AGENTS = [
    ("maya@demo.threadline.test", "Maya Lopez"),
    ("sam@demo.threadline.test", "Sam Chen"),
]


@dataclasses.dataclass(frozen=True)
class DemoWorkspace:
    workspace_id: int | None
    created: bool
    widget_public_token: str | None = None
    widget_inbox_id: int | None = None
    # The widget inbox's identity secret: the demo shop's backend signs its
    # signed-up users' identity tokens with it, as a real shop's would.
    widget_secret: str | None = None


class _PastClock:
    """Starts two days back and moves a few minutes per reading, so the demo
    conversations look like they happened over time rather than at once."""

    def __init__(self, real: Clock) -> None:
        self._real = real
        self._at = real.now() - timedelta(days=2)

    def now(self) -> datetime:
        self._at += timedelta(minutes=7)
        return min(self._at, self._real.now())


# Replies the demo's agents can insert with `/` in the composer.
DEMO_CANNED_RESPONSES = (
    (
        "shipping",
        "Shipping times",
        'Hi {{contact.first_name|default("there")}}! We ship within 1-2 business days;'
        " delivery takes 2-5 days in Europe and 5-10 days overseas.\n\n{{agent.first_name}}",
    ),
    (
        "thanks",
        "Thanks, closing",
        'Thanks {{contact.first_name|default("")}}, glad I could help!'
        " Just reply here if anything else comes up.",
    ),
    (
        "refund",
        "Refund started",
        "I've started your refund (conversation #{{conversation.id}}). It reaches your"
        " account within 5 business days.",
    ),
)


async def ensure_demo_workspace(runtime: Runtime) -> DemoWorkspace:
    """Create the demo workspace unless its admin already exists (then find
    its website chat inbox)."""
    if await read(runtime, find_agent_id_by_email, DEMO_ADMIN_EMAIL) is not None:
        found = await find_demo_workspace(runtime)
        if found is None or found.workspace_id is None:
            return DemoWorkspace(None, created=False)
        # A demo made before the touchpoints were part of it gets them now.
        await ensure_demo_touchpoints(runtime, found.workspace_id)
        return found
    real_clock = runtime.clock
    runtime = dataclasses.replace(runtime, clock=_PastClock(real_clock))
    ws = await perform(runtime, system_actor(0), do_create_workspace, name="Demo Shop")
    sys = system_actor(ws)
    admin_id = await perform(
        runtime,
        sys,
        do_create_agent,
        email=DEMO_ADMIN_EMAIL,
        name="Alex Admin",
        password=DEMO_PASSWORD,
        role=Role.ADMIN,
    )
    agent_ids = [
        await perform(runtime, sys, do_create_agent, email=e, name=n, password=DEMO_PASSWORD)
        for e, n in DEMO_AGENTS
    ]
    team_id = await perform(runtime, sys, do_create_team, name="Support", description="Front line")
    for agent_id in agent_ids:
        await perform(runtime, sys, do_add_team_member, team_id=team_id, agent_id=agent_id)
    widget = await perform(
        runtime,
        sys,
        do_create_inbox,
        name="Website chat",
        kind=InboxKind.WIDGET,
        settings={"greeting": "Hi! How can we help?"},
        box=runtime.secrets,
    )
    email = await perform(
        runtime,
        sys,
        do_create_inbox,
        name="Support email",
        kind=InboxKind.EMAIL,
        settings={"address": DEMO_SUPPORT_ADDRESS, "from_name": "Demo Shop Support"},
        box=runtime.secrets,
    )
    for inbox_id in (widget.inbox_id, email.inbox_id):
        for agent_id in agent_ids:
            await perform(runtime, sys, do_add_inbox_member, inbox_id=inbox_id, agent_id=agent_id)

    maya = Actor(kind=ActorKind.AGENT, workspace_id=ws, agent_id=agent_ids[0], role=Role.AGENT)
    admin = Actor(kind=ActorKind.AGENT, workspace_id=ws, agent_id=admin_id, role=Role.ADMIN)

    # Jamie chats on the website, then follows up by email: one customer,
    # two channels, one timeline.
    chat = await perform(
        runtime,
        sys,
        do_receive_message,
        inbox_id=widget.inbox_id,
        identity=IdentityInput(IdentityKind.VISITOR, "demo-visitor-jamie"),
        name="Jamie Rivera",
        text="Hi! I ordered the blue running shoes last week. Any idea when they ship?",
    )
    await perform(
        runtime,
        sys,
        do_add_contact_identity,
        contact_id=chat.contact_id,
        identity=IdentityInput(IdentityKind.EMAIL, "jamie.rivera@example.com", verified=True),
    )
    await perform(
        runtime,
        admin,
        do_assign_conversation,
        conversation_id=chat.conversation_id,
        assignee_id=agent_ids[0],
        team_id=team_id,
    )
    await perform(
        runtime,
        maya,
        do_send_message,
        conversation_id=chat.conversation_id,
        text="Hi Jamie! Let me check with the warehouse and get back to you by email today.",
    )
    await perform(
        runtime,
        maya,
        do_send_message,
        conversation_id=chat.conversation_id,
        text="Warehouse says the size 42 restock arrives Thursday.",
        private=True,
    )
    await perform(
        runtime,
        maya,
        do_change_conversation_status,
        conversation_id=chat.conversation_id,
        status=ConversationStatus.RESOLVED,
    )
    mail = await perform(
        runtime,
        sys,
        do_receive_message,
        inbox_id=email.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "jamie.rivera@example.com"),
        name="Jamie Rivera",
        subject="Re: your order #1042",
        text="Thanks Maya — could you swap them for size 43 instead before they ship?",
    )
    await perform(
        runtime,
        admin,
        do_change_conversation_labels,
        conversation_id=mail.conversation_id,
        add=["order-change"],
    )
    await perform(
        runtime,
        admin,
        do_set_conversation_priority,
        conversation_id=mail.conversation_id,
        priority=Priority.HIGH,
    )

    others = [
        (
            "noah@example.com",
            "Noah Patel",
            email.inbox_id,
            "Invoice copy",
            "Could you send me a copy of invoice INV-2207?",
        ),
        ("demo-visitor-lee", "Lee Martin", widget.inbox_id, None, "Do you ship to Canada?"),
        (
            "demo-visitor-ana",
            "Ana Souza",
            widget.inbox_id,
            None,
            "The discount code SPRING10 doesn't work at checkout.",
        ),
    ]
    for ident, name, inbox_id, subject, text in others:
        kind = IdentityKind.EMAIL if "@" in ident else IdentityKind.VISITOR
        got = await perform(
            runtime,
            sys,
            do_receive_message,
            inbox_id=inbox_id,
            identity=IdentityInput(kind, ident),
            name=name,
            subject=subject,
            text=text,
        )
        if "Canada" in text:
            await perform(
                runtime,
                admin,
                do_assign_conversation,
                conversation_id=got.conversation_id,
                assignee_id=agent_ids[1],
            )
        if "SPRING10" in text:
            await perform(
                runtime,
                admin,
                do_change_conversation_labels,
                conversation_id=got.conversation_id,
                add=["billing", "discount"],
            )
            await perform(
                runtime,
                admin,
                do_change_conversation_status,
                conversation_id=got.conversation_id,
                status=ConversationStatus.SNOOZED,
                snoozed_until=real_clock.now() + timedelta(days=1),
            )
    canned_ids: dict[str, int] = {}
    for shortcut, title, body in DEMO_CANNED_RESPONSES:
        canned_ids[shortcut] = await perform(
            runtime,
            admin,
            do_create_canned_response,
            scope=CannedScope.WORKSPACE,
            shortcut=shortcut,
            title=title,
            body=body,
        )
    thanks_id = canned_ids["thanks"]
    await perform(
        runtime,
        admin,
        do_create_macro,
        scope=MacroScope.WORKSPACE,
        name="Thank and resolve",
        actions=[
            {"type": "send_canned_response", "canned_response_id": thanks_id},
            {"type": "add_label", "label": "solved"},
            {"type": "resolve"},
        ],
    )
    await ensure_demo_touchpoints(dataclasses.replace(runtime, clock=real_clock), ws)
    return DemoWorkspace(
        ws,
        created=True,
        widget_public_token=widget.public_token,
        widget_inbox_id=widget.inbox_id,
        widget_secret=widget.secret,
    )


async def find_demo_workspace(runtime: Runtime) -> DemoWorkspace | None:
    """The demo workspace made on an earlier run (the one whose admin is
    DEMO_ADMIN_EMAIL) with its website chat inbox."""
    for ws in await read(runtime, workspace_ids):
        sys = system_actor(ws)
        agents = await read(runtime, workspace_agents, sys)
        if not any(agent.email == DEMO_ADMIN_EMAIL for agent in agents):
            continue
        for inbox in await read(runtime, visible_inboxes, sys):
            if inbox.kind == InboxKind.WIDGET.value:
                row = await read(runtime, access_inbox, sys, inbox.id)
                secret = (
                    runtime.secrets.decrypt(row.secret_encrypted) if row.secret_encrypted else None
                )
                return DemoWorkspace(
                    ws,
                    created=False,
                    widget_public_token=inbox.public_token,
                    widget_inbox_id=inbox.id,
                    widget_secret=secret,
                )
        return DemoWorkspace(ws, created=False)
    return None


async def allow_demo_site(runtime: Runtime, demo: DemoWorkspace, origin: str) -> None:
    """Let the site at `origin` (the demo shop) embed the demo widget: add
    it to the inbox's allowed_domains, keeping the ones already there."""
    if demo.workspace_id is None or demo.widget_inbox_id is None:
        return
    sys = system_actor(demo.workspace_id)
    inbox = await read(runtime, access_inbox, sys, demo.widget_inbox_id)
    current = allowed_origins(inbox.settings.get("allowed_domains"))
    if origin.lower() in current:
        return
    await perform(
        runtime,
        sys,
        do_update_inbox,
        inbox_id=demo.widget_inbox_id,
        settings={"allowed_domains": [*current, origin.lower()]},
    )
