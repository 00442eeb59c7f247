"""Sanitising user-supplied HTML before it is stored (PROTOCOLS.md P7)."""

from __future__ import annotations

import nh3

_URL_SCHEMES = {"http", "https", "mailto", "cid"}


def sanitize_html(html: str) -> str:
    """An allow-list clean: no script, no event handlers, no javascript: URLs."""
    return nh3.clean(html, url_schemes=_URL_SCHEMES, link_rel="noopener noreferrer nofollow")
