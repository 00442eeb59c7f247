"""The demo workspace's touchpoints (server.demo_touchpoints): the welcome,
the abandoned cart and the no-reply chase live with waits of seconds, the
other seeds as drafts, caps and quiet hours that don't hold the demo
back; a demo made before the touchpoints existed gets them on its next
start, and nothing is installed twice."""

from __future__ import annotations

from typing import Any

import pytest

import server.demo as demo_module
from server.demo import ensure_demo_workspace
from server.domain.touch_seeds import SEEDS
from server.domain.touch_settings import touch_settings_of
from server.queries.reading import read
from server.queries.touchpoints import list_touchpoints, touchpoint_detail
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import fetch_all


async def _touchpoints(runtime: Runtime, workspace_id: int) -> dict[str, dict[str, Any]]:
    rows = await read(runtime, list_touchpoints, workspace_id)
    assert len({row["seed"] for row in rows}) == len(rows), "a seed installed twice"
    return {str(row["seed"]): row for row in rows}


async def test_the_demo_has_its_touchpoints_live_with_short_waits(runtime: Runtime) -> None:
    made = await ensure_demo_workspace(runtime)
    assert made.created and made.workspace_id is not None and made.widget_secret
    ws = made.workspace_id
    found = await _touchpoints(runtime, ws)
    assert set(found) == set(SEEDS)
    live = {seed for seed, row in found.items() if row["status"] == "live"}
    assert live == {"welcome", "abandoned_cart", "no_reply_chase"}

    def delays(seed: str) -> list[Any]:
        return [step["delay"] for step in spec[seed]["steps"]]

    spec: dict[str, Any] = {}
    for seed in live:
        detail = await read(runtime, touchpoint_detail, ws, int(str(found[seed]["id"])))
        spec[seed] = detail["spec"]
    assert delays("welcome") == [{"after": "10s"}]
    assert delays("abandoned_cart") == [{"after": "30s"}, {"after": "2m"}]
    assert spec["no_reply_chase"]["trigger"]["wait"] == 120
    assert "30 seconds" in str(found["abandoned_cart"]["description"])
    assert "10 seconds" in str(found["welcome"]["description"])

    stored = await fetch_all(runtime, t.workspaces.select().where(t.workspaces.c.id == ws))
    settings = touch_settings_of(stored[0].settings)
    assert [(c.count, c.window_seconds) for c in settings.marketing_caps] == [
        (3, 16 * 3600),
        (5, 7 * 86400),
    ]
    quiet = settings.quiet_hours
    assert (quiet.start.hour, quiet.start.minute, quiet.end.minute) == (3, 0, 1)

    # Started again: found, nothing installed twice, the secret still known.
    again = await ensure_demo_workspace(runtime)
    assert not again.created and again.workspace_id == ws
    assert again.widget_secret == made.widget_secret
    assert set(await _touchpoints(runtime, ws)) == set(SEEDS)


async def test_a_demo_made_before_the_touchpoints_gets_them(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def none_yet(runtime: Runtime, workspace_id: int) -> bool:
        return False

    # The demo as an earlier version made it: no touchpoints at all.
    with monkeypatch.context() as patch:
        patch.setattr(demo_module, "ensure_demo_touchpoints", none_yet)
        made = await ensure_demo_workspace(runtime)
    assert made.workspace_id is not None
    assert await _touchpoints(runtime, made.workspace_id) == {}

    again = await ensure_demo_workspace(runtime)
    assert again.workspace_id == made.workspace_id
    found = await _touchpoints(runtime, made.workspace_id)
    assert set(found) == set(SEEDS)
    assert found["abandoned_cart"]["status"] == "live"
