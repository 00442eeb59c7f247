"""The demo's touchpoints: the seeds switched live with their waits cut to
seconds, so someone trying `threadline demo` sees a welcome and a cart
reminder arrive in the mail sink within a minute instead of hours.

The welcome, the abandoned cart and the no-reply chase are live; the
other seeds are installed as drafts to look at. The workspace's caps are
loosened a little (the real defaults allow one marketing mail per 16 h,
which would hold the cart reminder back behind the welcome) and its quiet
hours narrowed to one minute at night: the settings can't switch them
off, and the demo must not fall silent in someone's evening.

Idempotent: a demo workspace made by an earlier version gets what it
lacks, one made by this one is left as it is (an admin's edits stay).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from server.actions.context import perform
from server.actions.touch_seeds import do_install_seed
from server.actions.touch_settings import do_update_touch_settings
from server.actions.touchpoints import do_set_touchpoint_status, do_update_touchpoint
from server.domain.actors import system_actor
from server.domain.touch_seeds import SEEDS
from server.domain.touchpoints import TouchStatus, parse_touchpoint
from server.queries.reading import read
from server.queries.touchpoints import list_touchpoints, touchpoint_detail
from server.runtime import Runtime

# seed id -> the waits of its steps, in order (None: the trigger's wait).
DEMO_DELAYS: Mapping[str, tuple[str, ...]] = {
    "welcome": ("10s",),
    "abandoned_cart": ("30s", "2m"),
}
DEMO_CHASE_WAIT = "2m"
DEMO_DESCRIPTIONS: Mapping[str, str] = {
    "welcome": "A hello 10 seconds after someone signs up in the demo shop (2 minutes in the seed).",
    "abandoned_cart": (
        "Lists what was left in the cart 30 seconds later, and once more 2 minutes after that"
        " (4 hours and a day in the seed); stops as soon as that cart is ordered."
    ),
    "no_reply_chase": (
        "When an agent asked something and the customer hasn't answered for 2 minutes"
        " (two days in the seed), a follow-up in business hours; stops on any reply."
    ),
}
LIVE_SEEDS = ("welcome", "abandoned_cart", "no_reply_chase")
DRAFT_SEEDS = tuple(seed for seed in SEEDS if seed not in LIVE_SEEDS)

DEMO_TOUCH_SETTINGS: Mapping[str, Any] = {
    "caps": {
        "marketing": [{"count": 3, "window": "16h"}, {"count": 5, "window": "7d"}],
    },
    # One minute, at a time nobody tries a demo.
    "quiet_hours": {"start": "03:00", "end": "03:01"},
}


def demo_body(seed_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The installed seed's body with the demo's short waits and a
    description that says so."""
    out = copy.deepcopy(dict(body))
    out["description"] = DEMO_DESCRIPTIONS.get(seed_id, out.get("description", ""))
    for step, wait in zip(out.get("steps", []), DEMO_DELAYS.get(seed_id, ()), strict=False):
        step["delay"] = {"after": wait}
    if seed_id == "no_reply_chase":
        out["trigger"] = {**out["trigger"], "wait": DEMO_CHASE_WAIT}
    return out


async def ensure_demo_touchpoints(runtime: Runtime, workspace_id: int) -> bool:
    """Install what the demo workspace lacks of its touchpoints (the live
    ones shortened and switched on); True when anything was installed."""
    sys = system_actor(workspace_id)
    have = {row["seed"] for row in await read(runtime, list_touchpoints, workspace_id)}
    missing_live = [seed for seed in LIVE_SEEDS if seed not in have]
    for seed_id in missing_live:
        touchpoint_id = await perform(runtime, sys, do_install_seed, seed_id=seed_id)
        detail = await read(runtime, touchpoint_detail, workspace_id, touchpoint_id)
        spec = detail["spec"]
        assert isinstance(spec, dict)
        await perform(
            runtime,
            sys,
            do_update_touchpoint,
            touchpoint_id=touchpoint_id,
            spec=parse_touchpoint(demo_body(seed_id, spec)),
        )
        await perform(
            runtime,
            sys,
            do_set_touchpoint_status,
            touchpoint_id=touchpoint_id,
            status=TouchStatus.LIVE,
        )
    for seed_id in DRAFT_SEEDS:
        if seed_id not in have:
            await perform(runtime, sys, do_install_seed, seed_id=seed_id)
    if missing_live:
        await perform(runtime, sys, do_update_touch_settings, changes=DEMO_TOUCH_SETTINGS)
    return bool(missing_live)
