"""BENCHMARKS.md B8: what the widget ships, gzipped at level 9 (as the
server sends it): the loader every page of a customer's site loads at most
3 KB, the whole widget (loader and the chat page with its script and
styles) at most 40 KB. The chat app ships as ES modules, each gzipped on
its own, so the budget counts every module."""

from __future__ import annotations

import gzip

from server.http.widget_assets import WIDGET_DIR

LOADER_BUDGET = 3 * 1024
WIDGET_BUDGET = 40 * 1024
WIDGET_FILES = (
    "loader.js",
    "frame.html",
    "frame.css",
    "app/main.js",
    "app/state.js",
    "app/strings.js",
    "app/dom.js",
    "app/api.js",
    "app/socket.js",
    "app/session.js",
    "app/outbox.js",
    "app/sync.js",
    "app/composer.js",
    "app/forms.js",
    "app/page.js",
    "app/views/attachments.js",
    "app/views/messages.js",
    "app/views/panel.js",
)


def gzipped_size(name: str) -> int:
    return len(gzip.compress((WIDGET_DIR / name).read_bytes(), 9))


def test_the_loader_fits_its_budget() -> None:
    size = gzipped_size("loader.js")
    assert size <= LOADER_BUDGET, f"loader.js is {size} bytes gzipped, budget {LOADER_BUDGET}"


def test_the_whole_widget_fits_its_budget() -> None:
    sizes = {name: gzipped_size(name) for name in WIDGET_FILES}
    assert sum(sizes.values()) <= WIDGET_BUDGET, f"{sizes}: budget {WIDGET_BUDGET}"


def test_the_budget_counts_every_file_the_widget_serves() -> None:
    # A new file in widget/ (or its app/ modules) must be added to
    # WIDGET_FILES (and so to the budget).
    shipped = [p.relative_to(WIDGET_DIR).as_posix() for p in WIDGET_DIR.rglob("*") if p.is_file()]
    assert sorted(shipped) == sorted(WIDGET_FILES)
