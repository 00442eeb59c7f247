"""The shipped touchpoints are valid touchpoints: each parses as an
author's body would, once its segment and pool ids are put in."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.touch_seeds import SEEDS, with_ids
from server.domain.touchpoints import TriggerKind, parse_touchpoint


@pytest.mark.parametrize("seed_id", sorted(SEEDS))
def test_each_seed_parses(seed_id: str) -> None:
    seed = SEEDS[seed_id]
    spec = parse_touchpoint(with_ids(seed, segment_id=7, promo_pool_id=3))
    assert spec.name == seed.name
    assert spec.kind.value == seed.kind
    if spec.trigger.kind in (TriggerKind.SEGMENT_ENTRY, TriggerKind.BROADCAST):
        assert seed.segment is not None and spec.trigger.segment_id == 7
    pools = {v.promo_pool_id for step in spec.steps for v in step.variants} - {None}
    assert pools == ({3} if seed.pool else set())


def test_the_seeds_cover_the_promised_follow_ups() -> None:
    kinds = {
        parse_touchpoint(with_ids(s, segment_id=1, promo_pool_id=1)).trigger.kind
        for s in SEEDS.values()
    }
    assert kinds == {
        TriggerKind.CONTACT_EVENT,
        TriggerKind.DATE,
        TriggerKind.SEGMENT_ENTRY,
        TriggerKind.BROADCAST,
        TriggerKind.NO_CUSTOMER_REPLY,
    }


def test_an_email_outside_a_thread_needs_a_subject() -> None:
    body: Any = with_ids(SEEDS["welcome"])
    body["steps"][0]["variants"][0]["subject"] = " "
    with pytest.raises(Exception, match="subject"):
        parse_touchpoint(body)
