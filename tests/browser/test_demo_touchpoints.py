"""The demo's touchpoints as a new user tries them, in Chromium against
the real `threadline demo` process: open the shop, sign up, add two
things to the cart and leave; within a minute the cart reminder listing
both reaches the demo's mail sink; placing the order from the shop
before the next reminder cancels it, with its reason."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from server.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.cli.test_commands import free_port
from tests.cli.test_demo_shop import demo
from tests.cli.test_demo_touchpoints import mail_with, text_of

pytestmark = pytest.mark.browser

T = TypeVar("T")
DEADLINE = 90.0


async def eventually(probe: Callable[[], T | None], what: str) -> T:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        got = probe()
        if got is not None:
            return got
        await asyncio.sleep(0.1)  # polling interval of a condition wait
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_new_user_sees_the_welcome_and_the_cart_reminder(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    sent = data.resolve() / "sent-mail"
    with demo(data, port) as banner:
        found = re.search(r"Shop:\s+(\S+)", banner)
        assert found, banner
        async with async_playwright() as playwright:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
            try:
                page = await chromium.new_page()
                await page.goto(found.group(1))
                await page.get_by_label("Name").fill("Kim Osei")
                await page.get_by_label("Email").fill("kim@example.com")
                await page.get_by_role("button", name="Sign up").click()
                await expect(page.locator("#account")).to_have_text("Signed up as kim@example.com")
                buttons = page.get_by_role("button", name="Add to cart")
                await buttons.nth(0).click()
                await buttons.nth(1).click()
                await expect(page.locator("#cart-items li")).to_have_count(2)

                welcome = await eventually(
                    lambda: mail_with(sent, "Welcome to Demo Shop"), "the welcome"
                )
                reminder = await eventually(
                    lambda: mail_with(sent, "You left 2 things"), "the reminder"
                )
                assert welcome["To"] == reminder["To"] == "kim@example.com"
                body = text_of(reminder)
                assert "Trail Runner shoes" in body and "Merino socks, 3 pairs" in body
                assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

                async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=10) as agent:
                    login = await agent.post(
                        "/auth/login", json={"email": DEMO_ADMIN_EMAIL, "password": DEMO_PASSWORD}
                    )
                    assert login.status_code == 200, login.text
                    listed = await agent.get(
                        "/contacts",
                        params={"identity_kind": "email", "identity_value": "kim@example.com"},
                    )
                    [contact] = listed.json()["items"]
                    path = f"/contacts/{contact['id']}/touchpoints"
                    column = (await agent.get(path)).json()
                    [waiting] = column["upcoming"]
                    assert (waiting["touchpoint_name"], waiting["position"]) == (
                        "Abandoned cart",
                        1,
                    )

                    await page.get_by_role("button", name="Place order").click()
                    await expect(page.locator("#ordered")).to_contain_text("placed")

                    async def cancelled() -> dict[str, object] | None:
                        past = (await agent.get(path)).json()["past"]
                        return next(
                            (
                                d
                                for d in past
                                if d["id"] == waiting["id"] and d["state"] != "pending"
                            ),
                            None,
                        )

                    end = time.monotonic() + DEADLINE
                    settled = None
                    while settled is None and time.monotonic() < end:
                        settled = await cancelled()
                        if settled is None:
                            await asyncio.sleep(0.1)  # polling interval of a condition wait
                    assert settled is not None, "the next reminder was never settled"
                    assert settled["state"] == "cancelled" and settled["reason"]
            finally:
                await chromium.close()
