"""The ready touchpoints a team switches on and edits (TOUCHPOINTS.md,
"The seeds' touchpoints"): welcome after signup, birthday promo with a
unique code, abandoned cart, dormant-customer re-engagement, holiday
broadcast and no-reply chase.

Each seed is the body an author would send to `POST /touchpoints`
(server.domain.touchpoints.parse_touchpoint reads it), plus what it needs
around it that ids can't name in advance: the segment it enters from or
broadcasts to (created by name on install when the workspace has none)
and the promo pool its codes come from (likewise). Installing makes a
draft: nothing is sent until someone switches it live.

The templates are Liquid (server.touch_templates documents the data they
see). The shop's events carry what they list: `cart_updated` {cart_id,
items: [{name, price, quantity, image_url, url}], total, currency, url},
`order_placed` {order_id, cart_id, items, total, currency, promo_code},
`product_viewed` {name, price, url, image_url}.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from server.domain.json_types import JsonValue


@dataclasses.dataclass(frozen=True)
class SegmentSeed:
    name: str
    filter: Mapping[str, JsonValue]


@dataclasses.dataclass(frozen=True)
class PoolSeed:
    name: str
    valid_days: int
    low_stock: int = 20


@dataclasses.dataclass(frozen=True)
class Seed:
    id: str
    name: str
    description: str
    kind: str
    # The touchpoint body; "{segment_id}" and "{promo_pool_id}" in it are
    # filled in on install (see `with_ids`).
    spec: Mapping[str, JsonValue]
    segment: SegmentSeed | None = None
    pool: PoolSeed | None = None


_FOOTER = """

--
{{ workspace.name }}
You get this because you shop with us. One click and they stop: {{ links.unsubscribe }}"""

_GREETING = 'Hi {{ contact.name | split: " " | first | default: "there" }},'

WELCOME = Seed(
    id="welcome",
    name="Welcome after signup",
    description="A hello right after someone creates an account, and a nudge two days later.",
    kind="marketing",
    spec={
        "name": "Welcome after signup",
        "kind": "marketing",
        "trigger": {"kind": "contact_event", "name": "signed_up"},
        "reentry": "once",
        "max_lateness": "1d",
        "exit_rules": [],
        "steps": [
            {
                "delay": {"after": "2m"},
                "channel": "email",
                "variants": [
                    {
                        "id": "a",
                        "subject": "Welcome to {{ workspace.name }}",
                        "body": _GREETING
                        + """

Thanks for signing up. If you have a question about an order, a size or a
delivery, just answer this mail: a person reads it.
"""
                        + _FOOTER,
                    }
                ],
            }
        ],
    },
)

CART = Seed(
    id="abandoned_cart",
    name="Abandoned cart",
    description=(
        "Lists what was left in the cart four hours later, and once more the next day; "
        "stops as soon as that cart is ordered."
    ),
    kind="marketing",
    spec={
        "name": "Abandoned cart",
        "kind": "marketing",
        "trigger": {"kind": "contact_event", "name": "cart_updated"},
        "episode_key": "cart:{cart_id}",
        "exit_rules": [
            {"kind": "contact_event", "name": "order_placed", "match": {"cart_id": "{cart_id}"}}
        ],
        "goal": {"name": "order_placed", "within": "7d", "match": {"cart_id": "{cart_id}"}},
        "max_lateness": "6h",
        "steps": [
            {
                "delay": {"after": "4h"},
                "channel": "email",
                "variants": [
                    {
                        "id": "a",
                        "subject": "You left {{ events.cart.items | size }} things in your cart",
                        "body": _GREETING
                        + """

Your cart is still waiting:
{% for item in events.cart.items %}
- {{ item.name }}{% if item.quantity > 1 %} x {{ item.quantity }}{% endif %}: {{ item.price | money: events.cart.currency }}{% endfor %}

Total: {{ events.cart.total | money: events.cart.currency }}

Pick up where you left off: {{ events.cart.url | default: "our shop" }}
"""
                        + _FOOTER,
                    }
                ],
            },
            {
                "delay": {"after": "20h"},
                "channel": "email",
                "variants": [
                    {
                        "id": "a",
                        "subject": "Still thinking about {{ events.cart.items.first.name }}?",
                        "body": _GREETING
                        + """

We kept your cart ({{ events.cart.items | size }} items,
{{ events.cart.total | money: events.cart.currency }}). If something is
holding you back, a size, shipping, a question, answer this mail and we'll
help.

{{ events.cart.url | default: "" }}
"""
                        + _FOOTER,
                    }
                ],
            },
        ],
    },
)

BIRTHDAY = Seed(
    id="birthday",
    name="Birthday promo",
    description=(
        "A unique single-use code at 09:00 on the contact's birthday, in their own time zone "
        "(the `birthday` attribute, YYYY-MM-DD or MM-DD)."
    ),
    kind="marketing",
    pool=PoolSeed(name="Birthday codes", valid_days=14),
    spec={
        "name": "Birthday promo",
        "kind": "marketing",
        "trigger": {"kind": "date", "attribute": "birthday"},
        "episode_key": "birthday:{year}",
        "goal": {"name": "order_placed", "within": "14d"},
        "max_lateness": "12h",
        "steps": [
            {
                "delay": {"relative_to": "birthday", "offset_days": 0, "at_local": "09:00"},
                "channel": "email",
                "variants": [
                    {
                        "id": "a",
                        "subject": "Happy birthday, {{ contact.name | split: ' ' | first }}!",
                        "promo_pool_id": "{promo_pool_id}",
                        "body": _GREETING
                        + """

Happy birthday from all of us. Here is a present: {{ promo.code }} takes
15 % off your next order{% if promo.expires_at %}, until {{ promo.expires_at | date: "%B %-d" }}{% endif %}.
"""
                        + _FOOTER,
                    }
                ],
            }
        ],
    },
)

DORMANT = Seed(
    id="dormant",
    name="We haven't seen you",
    description=(
        "Re-engages customers who ordered before but haven't been back for 60 days, "
        "with picks from what they bought and looked at."
    ),
    kind="marketing",
    segment=SegmentSeed(
        name="Dormant customers (60 days)",
        filter={
            "match": "all",
            "conditions": [
                {"event": "order_placed", "count": {"min": 1}},
                {"last_seen": {"before": "60d"}},
            ],
        },
    ),
    spec={
        "name": "We haven't seen you",
        "kind": "marketing",
        "trigger": {"kind": "segment_entry", "segment_id": "{segment_id}"},
        "reentry": "cooldown",
        "cooldown": "90d",
        "goal": {"name": "order_placed", "within": "14d"},
        "steps": [
            {
                "delay": {"at_local": "10:00", "day_offset": 0},
                "channel": "email",
                "variants": [
                    {
                        "id": "a",
                        "subject": "It's been a while, {{ contact.name | split: ' ' | first }}",
                        "body": _GREETING
                        + """

It's been a while since your last order{% if events.last_order %} ({% for item in events.last_order.items limit: 2 %}{{ item.name }}{% unless forloop.last %}, {% endunless %}{% endfor %}){% endif %}.
{% if events.recommendations.size > 0 %}
A few things we think you'd like:
{% for item in events.recommendations %}
- {{ item.name }}{% if item.price %}: {{ item.price | money: events.last_order.currency }}{% endif %} {{ item.url }}{% endfor %}
{% endif %}
"""
                        + _FOOTER,
                    }
                ],
            }
        ],
    },
)

HOLIDAY = Seed(
    id="holiday_broadcast",
    name="Holiday broadcast",
    description=(
        "One mail to a segment at 10:00 on a chosen day in each customer's own time zone, "
        "with personal picks; set the day before switching it live."
    ),
    kind="marketing",
    segment=SegmentSeed(
        name="Customers",
        filter={"match": "all", "conditions": [{"event": "order_placed", "count": {"min": 1}}]},
    ),
    spec={
        "name": "Holiday broadcast",
        "kind": "marketing",
        "trigger": {
            "kind": "broadcast",
            "segment_id": "{segment_id}",
            "at_local": "2026-12-18T10:00",
        },
        "max_lateness": "4h",
        "goal": {"name": "order_placed", "within": "7d"},
        "steps": [
            {
                "delay": {"after": 0},
                "channel": "email",
                "variants": [
                    {
                        "id": "a",
                        "subject": "Gifts picked for you, {{ contact.name | split: ' ' | first }}",
                        "body": _GREETING
                        + """

The holidays are close. Orders placed by December 20 arrive in time.
{% if events.recommendations.size > 0 %}
Picked for you:
{% for item in events.recommendations %}
- {{ item.name }} {{ item.url }}{% endfor %}
{% endif %}
"""
                        + _FOOTER,
                    }
                ],
            }
        ],
    },
)

CHASE = Seed(
    id="no_reply_chase",
    name="No-reply chase",
    description=(
        "When an agent asked something and the customer hasn't answered for two days, "
        "a friendly follow-up in the same thread, in business hours; stops on any reply."
    ),
    kind="service",
    spec={
        "name": "No-reply chase",
        "kind": "service",
        "trigger": {"kind": "no_customer_reply", "wait": "48h"},
        "max_lateness": "1d",
        "steps": [
            {
                "delay": {"after": 0},
                "channel": "email",
                "business_hours": True,
                "variants": [
                    {
                        "id": "a",
                        "subject": "",
                        "body": _GREETING
                        + """

Just checking in on our last message: is there anything else you need
from us? Answer here and it reaches the same person.
""",
                    }
                ],
            }
        ],
    },
)

SEEDS: Mapping[str, Seed] = {
    seed.id: seed for seed in (WELCOME, BIRTHDAY, CART, DORMANT, HOLIDAY, CHASE)
}


def with_ids(
    seed: Seed, *, segment_id: int | None = None, promo_pool_id: int | None = None
) -> dict[str, JsonValue]:
    """The seed's body with the ids of its segment and pool put in."""
    values: dict[str, JsonValue] = {"{segment_id}": segment_id, "{promo_pool_id}": promo_pool_id}

    def fill(value: JsonValue) -> JsonValue:
        if isinstance(value, str) and value in values:
            return values[value]
        if isinstance(value, Mapping):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value

    filled = fill(dict(seed.spec))
    assert isinstance(filled, dict)
    return filled
