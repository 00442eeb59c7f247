"""Consent, the pure part (TOUCHPOINTS.md, rule 3): a contact's yes or no
to a channel and topic, kept as a history (who recorded it, when) rather
than a flag, because GDPR asks for both and because the latest row is
the one that counts.

A topic is what the mail is about: `marketing` (promotions, needs
consent where the workspace is opt-in, stops at a withdrawal) and
`service` (a chase in the customer's own conversation). Transactional
mail asks no consent and has no topic here.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from server.domain.json_types import JsonValue

CHANNELS = ("email", "widget")
TOPICS = ("marketing", "service")
MAX_SOURCE = 200


class ConsentState(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


# Who recorded a consent: the one-click link in a mail, an agent, the
# shop's backend through the API.
UNSUBSCRIBE_SOURCE = "unsubscribe link"


def agent_source(agent_id: int | None) -> str:
    return "system" if agent_id is None else f"agent:{agent_id}"


def consent_key(channel: str, topic: str) -> str:
    return f"{channel}:{topic}"


def current_states(
    history: Iterable[tuple[str, str, str]],
) -> dict[str, JsonValue]:
    """The state per `channel:topic` from (channel, topic, state) rows
    oldest first: the last one wins; never recorded is None, for every
    channel and topic there is."""
    out: dict[str, JsonValue] = {
        consent_key(channel, topic): None for channel in CHANNELS for topic in TOPICS
    }
    for channel, topic, state in history:
        out[consent_key(channel, topic)] = state
    return out
