"""`threadline demo` serves a demo shop on the next port (another origin)
that embeds the demo widget, the first time and every time after."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.cli.test_commands import THREADLINE, env_for, free_port, wait_until_serving


@contextmanager
def demo(data_dir: Path, port: int) -> Iterator[str]:
    """Run `threadline demo`; yield its banner once it serves."""
    proc = subprocess.Popen(
        [*THREADLINE, "demo"],
        env=env_for(data_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = ""
        while "Data in:" not in banner:
            line = proc.stdout.readline()
            assert line, f"demo exited early: {banner}"
            banner += line
        wait_until_serving(proc, f"http://127.0.0.1:{port}")
        yield banner
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def shop_widget(banner: str, port: int) -> tuple[str, str]:
    """(shop URL, the widget token its page embeds), checked against the
    Threadline server: the token names a widget inbox that lets the shop
    frame its chat page."""
    found = re.search(r"Shop:\s+(\S+)", banner)
    assert found, banner
    shop = found.group(1)
    assert shop == f"http://127.0.0.1:{port + 1}/"
    page = httpx.get(shop, timeout=10).text
    loader = f'src="http://127.0.0.1:{port}/widget/loader.js" data-inbox="'
    assert loader in page
    assert 'Threadline.track("cart_updated"' in page
    token = page.split(loader, 1)[1].split('"', 1)[0]
    frame = httpx.get(f"http://127.0.0.1:{port}/widget/frame", params={"inbox": token}, timeout=10)
    assert frame.status_code == 200
    ancestors = frame.headers["content-security-policy"].split("frame-ancestors", 1)[1]
    assert shop.rstrip("/") in ancestors.split()
    return shop, token


def test_demo_serves_a_shop_that_embeds_the_demo_widget(tmp_path: Path) -> None:
    port = free_port()
    with demo(tmp_path / "data", port) as banner:
        assert "demo created" in banner
        _, first = shop_widget(banner, port)
    # Started again on the same data: the existing demo's widget is found.
    with demo(tmp_path / "data", port) as banner:
        assert "already set up" in banner
        _, again = shop_widget(banner, port)
    assert again == first
