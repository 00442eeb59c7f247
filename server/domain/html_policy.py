"""The HTML allow-list every sanitiser shares (PROTOCOLS.md P4, P7).

Only the policy lives here, as plain constants: the domain stays standard
library only, and each sanitiser (`server.sanitize` for messages written
through the API, `connectors.email.sanitize` for inbound mail) applies it
with nh3. Connectors may import the domain but not the rest of the server,
so this is the one place both can read the same list from.
"""

from __future__ import annotations

# URL schemes a link or image may use; anything else (javascript:, data:,
# vbscript:, ...) is dropped with the attribute.
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto", "cid"})

# The rel every kept link gets: no opener access, no referrer, no SEO credit.
LINK_REL = "noopener noreferrer nofollow"
