"""The chat widget in a real browser (F8): a visitor on the demo shop page
(its own origin) chats with an agent connected over /ws/agent; the page
that embeds the widget can't read the chat."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.async_api import Browser, BrowserContext, Page, expect

from server.actions.inboxes import NewInbox
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.support import LAUNCHER, AppServer, launcher_becomes, widget_frame
from tests.realtime.live import LiveServer
from tests.support import fetch_all

pytestmark = pytest.mark.browser

QUESTION = "Do you ship to Canada?"
ANSWER = "Yes! It takes 5-7 days, see https://shop.example/shipping."


async def reply(threadline: LiveServer, token: str, conversation_id: int, text: str) -> int:
    """An agent's reply through the REST API; its seq."""
    async with threadline.http(authorization=f"Bearer {token}") as api:
        res = await api.post(
            f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}
        )
        assert res.status_code == 201, res.text
        seq: int = res.json()["seq"]
        return seq


async def test_a_visitor_chats_with_an_agent_from_the_shop_page(
    page: Page,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
    screenshots: Path,
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    await page.goto(shop.url)
    # The page hears about messages through the API (the stub queues this).
    await page.evaluate("window.heard = []; Threadline.on('message', m => heard.push(m))")
    await launcher_becomes(page, {"name": "Open chat", "expanded": False})

    await page.locator(LAUNCHER).click()
    frame = await widget_frame(page)
    text = frame.locator("#text")
    await expect(text).to_be_focused()
    await launcher_becomes(page, {"name": "Close chat", "expanded": True})
    await expect(frame.locator("#title")).to_have_text("Demo Shop")
    await expect(frame.get_by_role("dialog", name="Demo Shop")).to_be_visible()
    await text.press_sequentially(QUESTION)
    await text.press("Enter")
    await expect(text).to_have_value("")

    # The agent's socket hears the visitor's message, live.
    heard = await agent.until(
        lambda f: f["type"] == "message.created" and f["data"]["text"] == QUESTION
    )
    conversation_id = heard[-1]["conversation_id"]
    mine = frame.locator(".msg.mine", has_text=QUESTION)
    await expect(mine).to_be_visible()

    # The agent types, then answers over REST; the visitor sees both.
    await agent.send({"type": "typing", "conversation_id": conversation_id, "typing": True})
    await expect(frame.locator("#typing")).to_have_text("Agent is typing…")
    seq = await reply(threadline, agent_token, conversation_id, ANSWER)
    answer = frame.locator(".msg.theirs .bubble", has_text="It takes 5-7 days")
    await expect(answer).to_be_visible()
    await expect(answer.get_by_role("link")).to_have_attribute(
        "href", "https://shop.example/shipping"
    )
    await expect(frame.locator("#typing")).to_have_text("")

    # The agent reads the conversation: "Seen" under the visitor's message.
    async with threadline.http(authorization=f"Bearer {agent_token}") as api:
        res = await api.post(f"/api/v1/conversations/{conversation_id}/read", json={"seq": seq})
        assert res.status_code == 200, res.text
    await expect(mine.locator(".state")).to_have_text("Seen")

    # The page was told that messages arrived, never what they said.
    await page.wait_for_function("heard.length >= 2")
    assert await page.evaluate("heard") == [
        {"conversationId": conversation_id, "seq": seq - 1, "fromAgent": False},
        {"conversationId": conversation_id, "seq": seq, "fromAgent": True},
    ]
    await page.screenshot(path=screenshots / "widget-1280x800.png", animations="disabled")

    # Esc closes the chat and gives the focus back to the launcher.
    await text.press("Escape")
    await page.wait_for_function(
        "document.activeElement && document.activeElement.matches('[data-threadline]')"
    )
    await launcher_becomes(page, {"name": "Open chat", "expanded": False})

    # While it is closed, an answer counts as unread, in the page title too.
    await reply(threadline, agent_token, conversation_id, "Anything else?")
    await expect(page).to_have_title("(1) Demo Shop")
    await launcher_becomes(page, {"name": "Open chat, 1 unread", "expanded": False})
    await page.locator(LAUNCHER).click()
    await expect(frame.get_by_text("Anything else?")).to_be_visible()
    await expect(page).to_have_title("Demo Shop")


async def test_the_page_cannot_read_the_chat(
    page: Page, shop: AppServer, threadline: LiveServer, agent_token: str
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    await page.goto(shop.url)
    await page.locator(LAUNCHER).click()
    frame = await widget_frame(page)
    await frame.locator("#text").fill("my card number is 4242")
    await frame.locator("#text").press("Enter")
    await expect(frame.locator(".msg.mine", has_text="4242")).to_be_visible()
    assert "4242" in await frame.locator("#log").inner_text()

    # The page's own scripts don't even find the iframe (closed shadow root)...
    assert await page.evaluate("document.querySelectorAll('iframe').length") == 0
    assert "4242" not in await page.evaluate("document.documentElement.outerHTML")
    # ... and given the element, the browser refuses: another origin.
    iframe = await frame.frame_element()
    found = await page.evaluate(
        """el => {
            const tryRead = read => { try { return String(read()); } catch (e) { return e.name; } };
            return {
                contentDocument: el.contentDocument,
                document: tryRead(() => el.contentWindow.document.body.innerText),
                storage: tryRead(() => el.contentWindow.localStorage.length),
                frames: tryRead(() => window.frames[0].document.body.innerText),
            };
        }""",
        iframe,
    )
    assert found["contentDocument"] is None
    assert found["document"] == "SecurityError"
    assert found["storage"] == "SecurityError"
    assert found["frames"] in ("SecurityError", "TypeError")  # not listed, or refused


async def test_the_open_widget_fills_a_narrow_screen(
    browser: Browser,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
    screenshots: Path,
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    context = await browser.new_context(
        viewport={"width": 360, "height": 740}, locale="en-US", has_touch=True
    )
    try:
        page = await context.new_page()
        await page.goto(shop.url)
        await page.locator(LAUNCHER).click()
        frame = await widget_frame(page)
        iframe = await frame.frame_element()
        assert await iframe.bounding_box() == {"x": 0, "y": 0, "width": 360, "height": 740}
        text = frame.locator("#text")
        await text.fill("Hi, is the rain shell waterproof?")
        await frame.get_by_role("button", name="Send").click()
        heard = await agent.until(lambda f: f["type"] == "message.created")
        await reply(
            threadline,
            agent_token,
            heard[-1]["conversation_id"],
            "Yes, fully taped seams and a 20,000 mm rating.",
        )
        await expect(frame.get_by_text("fully taped seams")).to_be_visible()
        await page.mouse.move(0, 0)  # no hover state in the picture
        await page.screenshot(path=screenshots / "widget-360x740.png", animations="disabled")
        await page.emulate_media(color_scheme="dark")
        await page.screenshot(path=screenshots / "widget-360x740-dark.png", animations="disabled")
        # The close button is in reach on a phone (the launcher is covered).
        await frame.get_by_role("button", name="Close chat").click()
        await expect(page.locator(LAUNCHER)).to_be_visible()
        await launcher_becomes(page, {"name": "Open chat", "expanded": False})
    finally:
        await context.close()


async def test_a_message_written_offline_is_sent_once_back_online(
    context: BrowserContext,
    page: Page,
    runtime: Runtime,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    await page.goto(shop.url)
    await page.locator(LAUNCHER).click()
    frame = await widget_frame(page)
    text = frame.locator("#text")
    await text.fill("first")
    await text.press("Enter")
    await agent.until(lambda f: f["type"] == "message.created" and f["data"]["text"] == "first")

    await context.set_offline(True)
    await text.fill("written on the train")
    await text.press("Enter")
    pending = frame.locator(".msg.pending", has_text="written on the train")
    await expect(pending.locator(".state")).to_have_text("Sending…")
    await expect(frame.locator("#conn")).to_have_text(
        "You are offline. Messages will be sent when you are back online."
    )

    await context.set_offline(False)
    await agent.until(
        lambda f: f["type"] == "message.created" and f["data"]["text"] == "written on the train"
    )
    await expect(pending).to_have_count(0)
    await expect(frame.locator(".msg.mine", has_text="written on the train")).to_have_count(1)
    await expect(frame.locator("#conn")).to_be_hidden()
    stored = await fetch_all(
        runtime, sa.select(t.messages.c.id).where(t.messages.c.text == "written on the train")
    )
    assert len(stored) == 1


async def test_a_reload_or_a_new_tab_continues_the_conversation_until_reset(
    context: BrowserContext,
    page: Page,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
    widget: NewInbox,
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    await page.goto(shop.url)
    await page.locator(LAUNCHER).click()
    frame = await widget_frame(page)
    await frame.locator("#text").fill("remember me")
    await frame.locator("#text").press("Enter")
    await agent.until(lambda f: f["type"] == "message.created")

    await page.reload()
    await page.locator(LAUNCHER).click()
    frame = await widget_frame(page)
    await expect(frame.locator(".msg.mine", has_text="remember me")).to_be_visible()

    tab = await context.new_page()
    await tab.goto(shop.url)
    await tab.evaluate("Threadline.open()")
    other = await widget_frame(tab)
    await expect(other.locator(".msg.mine", has_text="remember me")).to_be_visible()

    # reset() (a logout on the site) forgets the visitor in this browser.
    await tab.evaluate("Threadline.reset()")
    await expect(other.locator(".msg")).to_have_count(0)
    await page.reload()
    await page.locator(LAUNCHER).click()
    frame = await widget_frame(page)
    await expect(frame.locator("#text")).to_be_visible()
    await expect(frame.locator(".msg")).to_have_count(0)
