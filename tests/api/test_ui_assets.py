"""Serving the inbox web app (F4): the page's security headers, its files,
and guards on the code itself (no HTML parsing of strings, no inline
code) so the Content-Security-Policy never has to be loosened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.http.ui_assets import UI_DIR
from server.runtime import Runtime
from tests.support import client


async def test_the_page_carries_a_strict_policy(runtime: Runtime) -> None:
    async with client(runtime) as c:
        res = await c.get("/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    csp = res.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "ws://" in directives["connect-src"]
    assert res.headers["x-frame-options"] == "DENY"
    assert res.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/ui/main.js">' in res.text


async def test_files_are_served_with_their_type_and_revalidated(runtime: Runtime) -> None:
    async with client(runtime) as c:
        js = await c.get("/ui/main.js")
        css = await c.get("/ui/app.css")
        again = await c.get("/ui/main.js", headers={"if-none-match": js.headers["etag"]})
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../http/ui_assets.py",
        "/ui/%2e%2e/http/ui_assets.py",
        "/ui/index.html",
        "/ui/missing.js",
        "/ui/Main.js",
        "/ui/a/b/c.js",
    ],
)
async def test_only_the_app_files_are_reachable(runtime: Runtime, path: str) -> None:
    async with client(runtime) as c:
        res = await c.get(path)
    assert res.status_code == 404


UI_FILES = sorted(UI_DIR.glob("*.js"))
# Ways a string could become markup or code in the page.
UNSAFE = re.compile(
    r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(|"
    r"setTimeout\(\s*['\"`]|setInterval\(\s*['\"`]|createContextualFragment|DOMParser"
)


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_no_module_turns_strings_into_markup_or_code(path: Path) -> None:
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if UNSAFE.search(line)
    ]
    assert not found, found


def test_the_page_has_no_inline_code_or_style() -> None:
    page = (UI_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\son[a-z]+=", page, re.I)
    assert "<style" not in page and "style=" not in page


def test_the_page_preloads_every_module() -> None:
    """Without a preload, modules arrive one import level at a time."""
    page = (UI_DIR / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/ui/([a-z_]+\.js)">', page))
    assert preloaded | {"main.js"} == {p.name for p in UI_FILES}
