"""Sanitising user-supplied HTML before it is stored (PROTOCOLS.md P7)."""

from __future__ import annotations

import nh3

from server.domain.html_policy import LINK_REL, URL_SCHEMES, url_filter


def sanitize_html(html: str) -> str:
    """An allow-list clean: no script, no event handlers, no javascript:
    (or any non-allowed) URLs, even with invisible characters in the scheme."""
    return nh3.clean(html, url_schemes=URL_SCHEMES, link_rel=LINK_REL, attribute_filter=url_filter)
