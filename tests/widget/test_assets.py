"""How the widget's files are served (F8, PROTOCOLS.md P7): content types,
caching, and the chat page's Content-Security-Policy, whose
frame-ancestors follow the inbox's allowed_domains."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_create_inbox, do_update_inbox
from server.demo_shop import STUB
from server.domain.values import InboxKind
from server.http.widget_assets import WIDGET_DIR, app_modules, frame_ancestors
from server.runtime import Runtime
from tests.support import Workspace, client

SHOP = "https://shop.example"
WWW = "https://www.shop.example"


@pytest.fixture
async def widget(runtime: Runtime, ws: Workspace) -> NewInbox:
    return await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Shop chat",
        kind=InboxKind.WIDGET,
        settings={"allowed_domains": [SHOP, WWW]},
        box=runtime.secrets,
    )


@pytest.fixture
async def anywhere(runtime: Runtime, ws: Workspace) -> NewInbox:
    """A widget inbox with no allowed_domains: any site may embed it."""
    return await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Open chat",
        kind=InboxKind.WIDGET,
        settings={},
        box=runtime.secrets,
    )


@pytest.fixture
async def browser(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime) as c:
        yield c


def csp_of(res: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as directive -> sources."""
    out: dict[str, list[str]] = {}
    for part in res.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        assert name not in out, f"{name} twice"
        out[name] = sources
    return out


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/widget/loader.js", "text/javascript; charset=utf-8"),
        ("/widget/app/main.js", "text/javascript; charset=utf-8"),
        ("/widget/app/views/messages.js", "text/javascript; charset=utf-8"),
        ("/widget/frame.css", "text/css; charset=utf-8"),
    ],
)
async def test_files_are_served_with_their_type_and_a_short_cache(
    browser: httpx.AsyncClient, path: str, content_type: str
) -> None:
    res = await browser.get(path)
    assert res.status_code == 200
    assert res.headers["content-type"] == content_type
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["cache-control"] == "public, max-age=300"
    assert res.content == (WIDGET_DIR / path.removeprefix("/widget/")).read_bytes()
    again = await browser.get(path, headers={"if-none-match": res.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_gzip_is_sent_to_clients_that_accept_it(browser: httpx.AsyncClient) -> None:
    plain = await browser.get("/widget/app/main.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    res = await browser.get("/widget/app/main.js", headers={"accept-encoding": "gzip"})
    assert res.headers["content-encoding"] == "gzip"
    assert res.headers["vary"] == "Accept-Encoding"
    assert res.headers["etag"] != plain.headers["etag"]
    assert int(res.headers["content-length"]) == len(gzip.compress(plain.content, 9))
    assert res.content == plain.content  # httpx decoded it


async def test_any_site_may_load_the_loader(browser: httpx.AsyncClient) -> None:
    res = await browser.get("/widget/loader.js")
    assert res.headers["cross-origin-resource-policy"] == "cross-origin"


async def test_the_chat_page_may_be_framed_only_by_the_allowed_domains(
    browser: httpx.AsyncClient, widget: NewInbox
) -> None:
    res = await browser.get("/widget/frame", params={"inbox": widget.public_token, "origin": SHOP})
    assert res.status_code == 200
    assert res.headers["content-type"] == "text/html; charset=utf-8"
    assert res.headers["cache-control"] == "no-cache"
    assert res.text == (WIDGET_DIR / "frame.html").read_text()
    assert csp_of(res) == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "connect-src": ["'self'", "ws://testserver"],
        "media-src": ["'self'", "blob:"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'self'", SHOP, WWW],
    }


async def test_an_inbox_without_allowed_domains_may_be_framed_anywhere(
    browser: httpx.AsyncClient, anywhere: NewInbox
) -> None:
    res = await browser.get("/widget/frame", params={"inbox": anywhere.public_token})
    assert res.status_code == 200
    assert csp_of(res)["frame-ancestors"] == ["*"]


async def test_a_new_allowed_domains_applies_at_once(
    runtime: Runtime, ws: Workspace, browser: httpx.AsyncClient, widget: NewInbox
) -> None:
    first = await browser.get("/widget/frame", params={"inbox": widget.public_token})
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=widget.inbox_id,
        settings={"allowed_domains": ["https://other.example"]},
    )
    # The browser revalidates with the ETag it has; the page changed.
    res = await browser.get(
        "/widget/frame",
        params={"inbox": widget.public_token},
        headers={"if-none-match": first.headers["etag"]},
    )
    assert res.status_code == 200
    assert csp_of(res)["frame-ancestors"] == ["'self'", "https://other.example"]
    same = await browser.get(
        "/widget/frame",
        params={"inbox": widget.public_token},
        headers={"if-none-match": res.headers["etag"]},
    )
    assert same.status_code == 304


@pytest.mark.parametrize("params", [{}, {"inbox": ""}, {"inbox": "nope"}, {"inbox": "x" * 65}])
async def test_the_chat_page_of_an_unknown_inbox_is_404(
    browser: httpx.AsyncClient, params: dict[str, str]
) -> None:
    res = await browser.get("/widget/frame", params=params)
    assert res.status_code == 404
    assert "content-security-policy" not in res.headers


async def test_only_widget_inboxes_have_a_chat_page(
    runtime: Runtime, ws: Workspace, browser: httpx.AsyncClient
) -> None:
    email = await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Mail",
        kind=InboxKind.EMAIL,
        settings={},
        box=runtime.secrets,
    )
    res = await browser.get("/widget/frame", params={"inbox": email.public_token})
    assert res.status_code == 404


def test_frame_ancestors_keep_only_plain_origins() -> None:
    # Each source must be scheme://host[:port]: nothing that could end the
    # directive or add another one gets into the header.
    assert frame_ancestors(None) == "*"
    assert frame_ancestors([]) == "*"
    assert frame_ancestors("https://a.example, http://b.example:8080") == (
        "'self' https://a.example http://b.example:8080"
    )
    assert frame_ancestors(["https://a.example;script-src", "javascript:alert(1)"]) == "'self'"


class _Page(HTMLParser):
    """What a strict CSP cares about in a page: scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[str | None, str | None]] = []  # (type, src)
        self.styles: list[str | None] = []
        # A preload without href is kept as "", which names no module.
        self.preloads: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts.append((named.get("type"), named.get("src")))
            self._in_script = True
        if tag == "link" and named.get("rel") == "stylesheet":
            self.styles.append(named.get("href"))
        if tag == "link" and named.get("rel") == "modulepreload":
            self.preloads.append(named.get("href") or "")
        if tag == "style":
            self.inline.append("<style>")
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag} {name}=")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"script body {data.strip()[:40]!r}")


async def test_the_chat_page_has_no_inline_script_or_style(browser: httpx.AsyncClient) -> None:
    page = _Page()
    page.feed((WIDGET_DIR / "frame.html").read_text())
    assert page.inline == []
    assert page.scripts == [("module", "app/main.js")]
    assert page.styles == ["frame.css"]
    # Relative to /widget/frame, so they are the routes above.
    for path in ("/widget/app/main.js", "/widget/frame.css"):
        assert (await browser.get(path)).status_code == 200


async def test_every_module_of_the_chat_app_is_served_and_preloaded(
    browser: httpx.AsyncClient,
) -> None:
    # The page names main.js and preloads the modules it imports, so the
    # browser fetches them at once instead of one import level at a time.
    modules = app_modules()
    assert "app/main.js" in modules
    assert "app/views/messages.js" in modules
    page = _Page()
    page.feed((WIDGET_DIR / "frame.html").read_text())
    assert sorted(page.preloads) == [m for m in modules if m != "app/main.js"]
    for name in modules:
        res = await browser.get(f"/widget/{name}")
        assert res.status_code == 200, name
        assert res.headers["content-type"] == "text/javascript; charset=utf-8"
        assert res.content == (WIDGET_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path", ["/widget/app/../frame.html", "/widget/app/nope.js", "/widget/frame.js", "/widget/app/"]
)
async def test_only_the_widget_files_are_served(browser: httpx.AsyncClient, path: str) -> None:
    assert (await browser.get(path)).status_code == 404


def test_the_readme_snippet_matches_the_loader() -> None:
    # The queue stub a site pastes (README, demo shop) names every method
    # the loader defines, and the README shows that exact stub.
    loader = (WIDGET_DIR / "loader.js").read_text()
    defined = set(re.findall(r"^  api\.(\w+) = ", loader, re.MULTILINE)) - {"loaded"}
    queued = json.loads(STUB.split("return;var t=w[n]={q:[]};", 1)[1].split(".forEach", 1)[0])
    assert sorted(queued) == sorted(defined)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert STUB in readme
    assert (
        '<script async src="https://threadline.example.com/widget/loader.js" data-inbox="PUBLIC_TOKEN"></script>'
        in readme
    )
