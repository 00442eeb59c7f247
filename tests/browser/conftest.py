"""Fixtures for browser tests: a real Threadline server (uvicorn, real clock,
SQLite), the demo shop page on a second server (another origin, as a
customer's site is), a widget inbox that allows that shop, an agent with an
API token, and Debian's Chromium driven by Playwright.

Every server is stopped at teardown, and any ERROR the Threadline server
logged fails the test (as in tests/realtime)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_add_inbox_member, do_create_inbox
from server.clock import SystemClock
from server.demo_shop import shop_app
from server.domain.values import InboxKind
from server.runtime import Runtime
from server.settings import Settings
from server.storage import secrets
from tests.browser.support import AppServer, free_port
from tests.realtime.live import ErrorRecords, LiveServer, new_token
from tests.support import Workspace, seed_workspace

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # runs as root in CI
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing strength is not under test, and argon2's default cost would
    block the loop the server runs in."""
    monkeypatch.setattr(secrets, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))


@pytest.fixture
def errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    unexpected = handler.unexpected()
    assert not unexpected, f"the server logged errors: {unexpected}"


@pytest.fixture
def threadline_port() -> int:
    return free_port()


@pytest.fixture
def shop_port() -> int:
    return free_port()


@pytest.fixture
def shop_origin(shop_port: int) -> str:
    return f"http://127.0.0.1:{shop_port}"


@pytest.fixture
async def runtime(
    migrated_sqlite_template: Path, tmp_path: Path, threadline_port: int, errors: ErrorRecords
) -> AsyncIterator[Runtime]:
    """SQLite (the embedded default) and the system clock: the browser
    lives in real time, and so must presence and rate limits."""
    path = tmp_path / "threadline.db"
    shutil.copyfile(migrated_sqlite_template, path)
    settings = Settings.from_env(
        {},
        THREADLINE_DATA_DIR=str(tmp_path / "data"),
        THREADLINE_DATABASE_URL=f"sqlite+aiosqlite:///{path}",
        THREADLINE_PUBLIC_URL=f"http://127.0.0.1:{threadline_port}",
    )
    rt = Runtime.create(settings, clock=SystemClock())
    yield rt
    await rt.close()


@pytest.fixture
async def ws(runtime: Runtime) -> Workspace:
    return await seed_workspace(runtime)


@pytest.fixture
async def widget(runtime: Runtime, ws: Workspace, shop_origin: str) -> NewInbox:
    """A widget inbox the shop may embed, answered by the seeded agent."""
    made = await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Demo Shop",
        kind=InboxKind.WIDGET,
        settings={
            "greeting": "Hi! How can we help?",
            "color": "#0f766e",
            "allowed_domains": [shop_origin],
        },
        box=runtime.secrets,
    )
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=made.inbox_id, agent_id=ws.agent_id
    )
    return made


@pytest.fixture
async def threadline(runtime: Runtime, threadline_port: int) -> AsyncIterator[LiveServer]:
    server = LiveServer(runtime, port=threadline_port)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def shop(
    threadline: LiveServer, widget: NewInbox, shop_port: int
) -> AsyncIterator[AppServer]:
    """The demo shop page, embedding `widget`, on its own origin."""
    server = AppServer(shop_app(threadline.base_url, widget.public_token, widget.secret), shop_port)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def agent_token(runtime: Runtime, ws: Workspace) -> str:
    return (await new_token(runtime, ws.agent))[1]


@pytest.fixture
async def browser(threadline: LiveServer) -> AsyncIterator[Browser]:
    """Chromium; it closes before the Threadline server stops, so the
    server has no open connections left to wait for."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    yield made
    await made.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
