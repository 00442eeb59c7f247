"""Support for browser tests: a second uvicorn server for any small ASGI
app (the shop page, on its own origin), and ways to reach the widget on a
page the way a visitor does."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from playwright.async_api import Frame, Page

from tests.realtime.live import eventually

LAUNCHER = "[data-threadline=launcher]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class AppServer:
    """`app` served by uvicorn on 127.0.0.1:`port`, in the test's loop."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                lifespan="off",
                log_level="warning",
                log_config=None,
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> AppServer:
        task = self._task = asyncio.get_running_loop().create_task(self.server.serve())
        await eventually(
            lambda: self.server.started or task.done(), timeout=10, what="the shop to start"
        )
        if task.done():
            await task
            raise AssertionError("uvicorn stopped while starting")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self._task, 15)
            self._task = None


async def widget_frame(page: Page) -> Frame:
    """The widget's chat iframe on `page`. It sits in the loader's closed
    shadow root, out of reach of selectors (and of the page's own
    scripts); the browser still lists it among the page's frames."""

    def find() -> Frame | None:
        return next((f for f in page.frames if "/widget/frame?" in f.url), None)

    await eventually(lambda: find() is not None, timeout=10, what="the widget's iframe")
    frame = find()
    assert frame is not None
    await frame.wait_for_load_state()
    return frame


async def launcher_state(page: Page) -> dict[str, Any]:
    """What assistive technology is told about the launcher button: the
    closed shadow root hides it from the page, not from the accessibility
    tree, which Chromium exposes over CDP."""
    session = await page.context.new_cdp_session(page)
    try:
        nodes = (await session.send("Accessibility.getFullAXTree"))["nodes"]
    finally:
        await session.detach()
    for node in nodes:
        if node.get("role", {}).get("value") != "button":
            continue
        props = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
        if "expanded" in props and props.get("hasPopup") == "dialog":
            return {"name": node.get("name", {}).get("value"), "expanded": props["expanded"]}
    raise AssertionError("no launcher button in the accessibility tree")


async def launcher_becomes(page: Page, expected: dict[str, Any], timeout: float = 5.0) -> None:
    """Wait until the launcher tells assistive technology `expected`: its
    name and state follow the chat frame's messages, a moment after the
    click that changed them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await launcher_state(page)
        if state == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            assert state == expected
        await asyncio.sleep(0.05)
