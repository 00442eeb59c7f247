"""The widget under strain in a real browser (F8): a connection lost while
both sides write, identity verification accepted and refused, and hostile
text that must stay text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Frame,
    Page,
    Route,
    expect,
)

from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_update_inbox
from server.domain.widget_identity import identity_hash
from server.queries.reading import read
from server.queries.visitors import VisitorSession, visitor_session_for_token
from server.realtime.visibility import Close, CloseCode
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.support import LAUNCHER, AppServer, widget_frame
from tests.realtime.live import LiveServer, Socket, eventually
from tests.support import Workspace, fetch_all, fetch_one, identity_rows

pytestmark = pytest.mark.browser

OFFLINE_NOTICE = "You are offline. Messages will be sent when you are back online."

# Each message of the log as (who, text): the bubble's text without the
# "You:"/"Agent:" prefix kept for screen readers. Messages still being sent
# live in #pending, not directly in #log.
LOG = """() => [...document.querySelectorAll('#log > .msg')].map(el => {
    const bubble = el.querySelector('.bubble');
    const text = bubble ? [...bubble.childNodes]
        .filter(n => !(n.classList && n.classList.contains('sr')))
        .map(n => n.textContent).join('') : '';
    return [el.classList.contains('mine') ? 'visitor' : 'agent', text];
})"""


def created(text: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the agent socket's message.created frame of `text`."""
    return lambda f: f["type"] == "message.created" and f["data"]["text"] == text


def count_created(agent: Socket, text: str) -> int:
    return sum(1 for f in agent.frames if created(text)(f))


async def agent_says(threadline: LiveServer, token: str, conversation_id: int, text: str) -> None:
    """An agent's reply through the REST API."""
    async with threadline.http(authorization=f"Bearer {token}") as api:
        res = await api.post(
            f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}
        )
        assert res.status_code == 201, res.text


async def open_chat(page: Page) -> Frame:
    await page.locator(LAUNCHER).click()
    frame = await widget_frame(page)
    await expect(frame.locator("#text")).to_be_visible()
    return frame


async def visitor_says(frame: Frame, text: str) -> None:
    box = frame.locator("#text")
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("")


async def session_of(runtime: Runtime, widget: NewInbox, frame: Frame) -> VisitorSession:
    """The visitor session the widget in `frame` holds (its token lives in
    the iframe's localStorage), as the database has it now."""
    token = await frame.evaluate(
        "key => JSON.parse(localStorage.getItem(key))", f"threadline:{widget.public_token}:session"
    )
    assert isinstance(token, str), token
    session = await read(runtime, visitor_session_for_token, token)
    assert session is not None
    return session


# -- a connection lost while both sides write ---------------------------------

FIRST = "Is the rain shell in stock in size M?"
REPLIES = [
    "Let me check the warehouse for you.",
    "Good news: we have two left in M.",
    "Shall I reserve one for an hour?",
]
WRITTEN_OFFLINE = "Yes please, reserve it (sent from the tunnel)"
LAST = "Done, it is reserved until 15:00."


async def test_messages_from_both_sides_while_offline_arrive_once_and_in_order(
    context: BrowserContext,
    page: Page,
    runtime: Runtime,
    ws: Workspace,
    widget: NewInbox,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    await page.goto(shop.url)
    frame = await open_chat(page)
    await visitor_says(frame, FIRST)
    conversation_id = (await agent.until(created(FIRST)))[-1]["conversation_id"]
    await expect(frame.locator(".msg.mine", has_text=FIRST)).to_have_count(1)

    # The answer to the first POST of the message written offline is lost
    # on its way back (the server did store it): the widget must retry
    # with the same client_id. Interception sees requests even while the
    # context is offline, so the handler fails those as the network would.
    offline = True
    attempts: list[str] = []

    async def lose_first_answer(route: Route) -> None:
        if offline:
            await route.abort("internetdisconnected")
            return
        body: dict[str, Any] = route.request.post_data_json or {}
        if body.get("text") == WRITTEN_OFFLINE:
            attempts.append(body["client_id"])
            if len(attempts) == 1:
                await route.fetch()
                await route.abort("connectionreset")
                return
        await route.continue_()

    await context.route("**/api/v1/widget/messages", lose_first_answer)
    await context.set_offline(True)
    await expect(frame.locator("#conn")).to_have_text(OFFLINE_NOTICE)
    # Chromium's offline mode holds an open socket's frames rather than
    # dropping it; a real outage costs the connection too. So the server
    # drops it (1001, "reconnect and resume"): what the agent writes now
    # can only reach the widget by resuming, or by reloading over REST.
    [visitor_socket] = [
        c
        for c in threadline.connections(ws.id)
        if c.delivery.viewer is not None and c.delivery.viewer.agent_id is None
    ]
    visitor_socket.request_close(Close(CloseCode.GOING_AWAY, "the network went away"))
    await eventually(visitor_socket.closed.is_set, what="the widget's socket to close")

    for text in REPLIES:
        await agent_says(threadline, agent_token, conversation_id, text)
    await agent.until(created(REPLIES[-1]))
    box = frame.locator("#text")
    await box.press_sequentially(WRITTEN_OFFLINE)
    await box.press("Enter")
    pending = frame.locator(".msg.pending", has_text=WRITTEN_OFFLINE)
    await expect(pending.locator(".state")).to_have_text("Sending…")
    # Offline for real: the socket is cut, nothing of the agent's got in.
    assert await frame.locator(".msg.theirs").count() == 0

    offline = False
    await context.set_offline(False)
    await agent.until(created(WRITTEN_OFFLINE))
    await expect(pending).to_have_count(0)
    await expect(frame.locator("#conn")).to_be_hidden()
    # The widget retries until it gets an answer, then empties its queue.
    await eventually(lambda: len(attempts) >= 2, what="the lost answer to be retried")
    await frame.wait_for_function(
        "key => localStorage.getItem(key) === null", arg=f"threadline:{widget.public_token}:pending"
    )
    assert len(set(attempts)) == 1, f"a retry changed the client_id: {attempts}"

    # One more reply: the widget's socket and the agent's deliver in log
    # order, so once it shows, anything repeated would have shown before.
    await agent_says(threadline, agent_token, conversation_id, LAST)
    await agent.until(created(LAST))
    await expect(frame.locator(".msg.theirs", has_text=LAST)).to_have_count(1)
    assert await frame.evaluate(LOG) == [
        ["visitor", FIRST],
        *[["agent", text] for text in REPLIES],
        ["visitor", WRITTEN_OFFLINE],
        ["agent", LAST],
    ]
    assert await frame.locator("#pending > .msg").count() == 0
    assert count_created(agent, WRITTEN_OFFLINE) == 1
    stored = await fetch_all(
        runtime,
        sa.select(t.messages.c.conversation_id).where(t.messages.c.text == WRITTEN_OFFLINE),
    )
    assert [row.conversation_id for row in stored] == [conversation_id]


# -- identity verification ------------------------------------------------------

CUSTOMER = "customer-1001"
ORDER_QUESTION = "Where is my order 1001?"
ORDER_ANSWER = "It left our warehouse this morning."


async def set_user(page: Page, user_id: str, traits: dict[str, str]) -> tuple[int, Any]:
    """What the shop's page does for its logged-in user; the status and
    body of the widget's identify request."""
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/widget/identify")) as got:
        await page.evaluate("([id, traits]) => Threadline.setUser(id, traits)", [user_id, traits])
    response = await got.value
    return response.status, await response.json()


async def test_a_verified_identity_brings_the_customers_history_a_wrong_hash_does_not(
    browser: Browser,
    page: Page,
    runtime: Runtime,
    widget: NewInbox,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
) -> None:
    assert widget.secret is not None
    good = identity_hash(widget.secret, CUSTOMER)
    agent = await threadline.open(token=agent_token)
    await agent.ready()

    # Earlier, in another browser: the customer, logged in to the shop,
    # asks about an order and gets an answer.
    earlier = await browser.new_context(locale="en-US")
    try:
        first = await earlier.new_page()
        await first.goto(shop.url)
        status, body = await set_user(first, CUSTOMER, {"name": "Ann", "identityHash": good})
        assert (status, body["verified"]) == (200, True)
        frame = await open_chat(first)
        await visitor_says(frame, ORDER_QUESTION)
        conversation_id = (await agent.until(created(ORDER_QUESTION)))[-1]["conversation_id"]
        await agent_says(threadline, agent_token, conversation_id, ORDER_ANSWER)
        await expect(frame.locator(".msg.theirs", has_text=ORDER_ANSWER)).to_be_visible()
        customer = (await session_of(runtime, widget, frame)).contact_id
    finally:
        await earlier.close()
    customer_identities = await identity_rows(runtime, customer)
    assert ("external", CUSTOMER, True) in customer_identities

    # Here, a new anonymous visitor; the shop vouches for its user with the
    # right HMAC: the visitor becomes that customer and sees the history.
    await page.goto(shop.url)
    status, body = await set_user(page, CUSTOMER, {"identityHash": good})
    assert (status, body) == (200, {"contact_id": customer, "verified": True})
    frame = await open_chat(page)
    await expect(frame.locator(".msg.theirs", has_text=ORDER_ANSWER)).to_have_count(1)
    assert await frame.evaluate(LOG) == [["visitor", ORDER_QUESTION], ["agent", ORDER_ANSWER]]
    session = await session_of(runtime, widget, frame)
    assert (session.contact_id, session.verified) == (customer, True)
    await visitor_says(frame, "Any news on it?")
    heard = await agent.until(created("Any news on it?"))
    assert heard[-1]["conversation_id"] == conversation_id

    # A stranger who knows the user id but not the secret: refused, and
    # left as the anonymous visitor it was.
    stranger = await browser.new_context(locale="en-US")
    try:
        other = await stranger.new_page()
        await other.goto(shop.url)
        wrong = identity_hash("not-the-inbox-secret", CUSTOMER)
        async with other.expect_response(
            lambda r: r.url.endswith("/api/v1/widget/sessions")
        ) as started:
            status, body = await set_user(other, CUSTOMER, {"name": "Ann", "identityHash": wrong})
        assert status == 403
        assert body["error"]["field"] == "identity_hash"
        anonymous = (await (await started.value).json())["contact_id"]
        assert anonymous != customer

        frame = await open_chat(other)
        await visitor_says(frame, "Hello?")
        heard = await agent.until(created("Hello?"))
        assert heard[-1]["conversation_id"] != conversation_id
        await expect(frame.locator(".msg.mine", has_text="Hello?")).to_have_count(1)
        assert await frame.evaluate(LOG) == [["visitor", "Hello?"]]
        await expect(frame.get_by_text(ORDER_ANSWER)).to_have_count(0)
        session = await session_of(runtime, widget, frame)
        assert (session.contact_id, session.verified) == (anonymous, False)
    finally:
        await stranger.close()
    row = await fetch_one(
        runtime,
        sa.select(t.contacts.c.name, t.contacts.c.attributes).where(t.contacts.c.id == anonymous),
    )
    assert row.name != "Ann"
    assert not {"user_id", "email", "name"} & set(row.attributes)
    # Only the anonymous visitor identity every new session's contact has.
    assert [kind for kind, _, _ in await identity_rows(runtime, anonymous)] == ["visitor"]
    assert await identity_rows(runtime, customer) == customer_identities
    verified = await fetch_all(
        runtime,
        sa.select(t.visitor_sessions.c.contact_id)
        .where(t.visitor_sessions.c.verified)
        .order_by(t.visitor_sessions.c.id),
    )
    assert [r.contact_id for r in verified] == [customer, customer]


# -- hostile text -------------------------------------------------------------------

PAYLOADS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=1</script>",
    '<a href="javascript:window.__pwned=1">x</a>',
    '"><svg onload=window.__pwned=1>',
]
HOSTILE = " ".join(PAYLOADS)
AGENT_TEXT = f"{HOSTILE} Details: https://shop.example/x or javascript:window.__pwned=1"
VISITOR_TEXT = f"Me too: {HOSTILE} javascript:alert(1)"
HOSTILE_FILE = '<img src=x onerror="window.__pwned=1">.txt'

# What must never appear in the chat's document: elements made from text,
# event handler attributes, javascript: links, a flag set by a payload.
DOM_CHECK = """() => {
    const all = [...document.querySelectorAll('*')];
    return {
        scripts: document.querySelectorAll('script').length,
        images: document.querySelectorAll('img').length,
        svgs: document.querySelectorAll('svg').length,
        inLog: document.querySelectorAll(
            '#log :is(script, img, svg, iframe, object, embed, style, link, form, input)').length,
        handlers: all.flatMap(el => [...el.attributes]
            .filter(a => /^on/i.test(a.name)).map(a => el.tagName + '[' + a.name + ']')),
        jsLinks: [...document.querySelectorAll('[href], [src], [action], [formaction]')]
            .map(el => el.getAttribute('href') || el.getAttribute('src') ||
                el.getAttribute('action') || el.getAttribute('formaction') || '')
            .filter(v => /^\\s*javascript:/i.test(v)),
        pwned: typeof window.__pwned,
    };
}"""


async def test_html_and_script_in_messages_render_as_inert_text(
    page: Page,
    runtime: Runtime,
    ws: Workspace,
    widget: NewInbox,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
) -> None:
    # What the inbox's admin wrote shows in the chat's header.
    name, greeting = f"Shop {PAYLOADS[1]}", f"Hi {PAYLOADS[0]} {PAYLOADS[3]}"
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=widget.inbox_id,
        name=name,
        settings={"greeting": greeting},
    )
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    await page.goto(shop.url)
    frame = await open_chat(page)
    await expect(frame.locator("#title")).to_have_text(name)
    before = await frame.evaluate(DOM_CHECK)
    assert before["handlers"] == [] and before["jsLinks"] == [] and before["inLog"] == 0
    assert await frame.locator("#greeting").evaluate("el => el.textContent") == greeting
    assert await (await frame.frame_element()).get_attribute("title") == name

    # The visitor's message, with a file whose name is a payload too.
    await frame.locator("#file").set_input_files(
        FilePayload(name=HOSTILE_FILE, mimeType="text/plain", buffer=b"receipt")
    )
    chip = frame.locator("#chips li")
    await expect(chip.locator(".name")).to_have_text(HOSTILE_FILE)
    await expect(chip.filter(has_text="Uploading")).to_have_count(0)
    await visitor_says(frame, VISITOR_TEXT)
    heard = (await agent.until(created(VISITOR_TEXT)))[-1]
    conversation_id = heard["conversation_id"]
    [attachment] = heard["data"]["attachments"]
    await agent_says(threadline, agent_token, conversation_id, AGENT_TEXT)
    await agent.until(created(AGENT_TEXT))
    theirs = frame.locator(".msg.theirs")
    await expect(theirs).to_have_count(1)
    await expect(frame.locator(".msg.pending")).to_have_count(0)

    # Both arrive as the very text that was sent, character for character.
    assert await frame.evaluate(LOG) == [["visitor", VISITOR_TEXT], ["agent", AGENT_TEXT]]
    file_link = frame.locator(".msg.mine a.file")
    await expect(file_link).to_have_text(f"{attachment['filename']} (7 B)")

    after = await frame.evaluate(DOM_CHECK)
    assert after == {**before, "pwned": "undefined"}, after
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    # The one real link became a link that opens apart from the chat;
    # nothing after "javascript:" did.
    links = theirs.locator(".bubble a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://shop.example/x")
    await expect(links).to_have_text("https://shop.example/x")
    await expect(links).to_have_attribute("target", "_blank")
    assert "noopener" in ((await links.get_attribute("rel")) or "").split()
    await expect(frame.locator(".msg.mine .bubble a")).to_have_count(0)
