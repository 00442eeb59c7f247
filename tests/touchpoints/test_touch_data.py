"""Template data from the latest state: the cart as it is at send time,
the last order, what was viewed, recommendations not yet bought."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.queries.reading import read
from server.queries.touch_data import touch_data
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace
from tests.touchpoints.claim_support import clock, contact


def _item(name: str, price: float = 10.0, quantity: int = 1) -> dict[str, Any]:
    slug = name.lower().replace(" ", "-")
    return {
        "name": name,
        "price": price,
        "quantity": quantity,
        "image": f"https://shop.test/{slug}.png",
        "url": f"https://shop.test/p/{slug}",
        "sku": slug,
    }


async def _track(runtime: Runtime, ws: Workspace, cid: int, name: str, props: Any) -> None:
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contact_events.insert().values(
                workspace_id=ws.id,
                contact_id=cid,
                name=name,
                properties=props,
                created_at=runtime.clock.now(),
            )
        )
    clock(runtime).advance(seconds=1)


async def test_the_cart_is_the_latest_state_of_the_episodes_cart(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, "ann@shop.test", name="Ann", attributes={"tier": "gold"})
    await _track(runtime, ws, cid, "cart_updated", {"cart_id": "c1", "items": [_item("Mug")]})
    two = [_item("Mug"), _item("Tea", 4.5, 2)]
    await _track(
        runtime,
        ws,
        cid,
        "cart_updated",
        {
            "cart_id": "c1",
            "items": two,
            "total": 19,
            "currency": "EUR",
            "url": "https://shop.test/c",
        },
    )
    await _track(runtime, ws, cid, "cart_updated", {"cart_id": "c2", "items": [_item("Pot")]})
    await _track(runtime, ws, cid, "order_placed", {"order_id": 77, "items": [_item("Kettle")]})
    for name in ("Pot", "Cup", "Pot", "Lid"):
        await _track(runtime, ws, cid, "product_viewed", _item(name))
    other = await contact(runtime, ws, "bob@shop.test")
    for _ in range(3):
        await _track(
            runtime, ws, other, "order_placed", {"items": [_item("Kettle"), _item("Spoon")]}
        )

    data = await read(
        runtime,
        touch_data,
        workspace_id=ws.id,
        contact_id=cid,
        episode_context={"cart_id": "c1"},
        promo={"code": "X1", "expires_at": None},
        links={"unsubscribe": "https://t/u/1"},
        touchpoint_name="Cart reminder",
        now=runtime.clock.now(),
    )

    assert data["contact"] == {
        "id": cid,
        "name": "Ann",
        "email": "ann@shop.test",
        "attributes": {"tier": "gold"},
    }
    events = data["events"]
    assert isinstance(events, dict)
    cart = events["cart"]
    assert cart["cart_id"] == "c1" and (cart["total"], cart["currency"]) == (19, "EUR")
    assert cart["url"] == "https://shop.test/c"
    assert [(i["name"], i["quantity"]) for i in cart["items"]] == [("Mug", 1), ("Tea", 2)]
    assert cart["items"][1]["image_url"] == "https://shop.test/tea.png"
    assert events["last_order"]["order_id"] == "77"
    assert [v["name"] for v in events["viewed"]] == ["Lid", "Pot", "Cup"]
    # Viewed first, then the workspace's popular products; never the
    # Kettle the contact already bought.
    assert [r["name"] for r in events["recommendations"]] == ["Lid", "Pot", "Cup", "Spoon"]
    assert data["promo"] == {"code": "X1", "expires_at": None}
    assert data["links"] == {"unsubscribe": "https://t/u/1"}
    assert data["workspace"] == {"name": "Acme"} and data["touchpoint"] == {"name": "Cart reminder"}


async def test_without_a_cart_id_the_latest_cart_and_old_orders_are_not_popular(
    runtime: Runtime, ws: Workspace
) -> None:
    cid = await contact(runtime, ws, None)
    await _track(runtime, ws, cid, "cart_updated", {"cart_id": "c9", "items": [_item("Pot")]})
    other = await contact(runtime, ws, "bob@shop.test")
    await _track(runtime, ws, other, "order_placed", {"items": [_item("Old")]})
    clock(runtime).advance(seconds=timedelta(days=91).total_seconds())

    data = await read(
        runtime,
        touch_data,
        workspace_id=ws.id,
        contact_id=cid,
        episode_context={},
        promo=None,
        links={},
        touchpoint_name="T",
        now=runtime.clock.now(),
    )

    events = data["events"]
    assert isinstance(events, dict)
    assert events["cart"]["cart_id"] == "c9"
    assert events["last_order"] is None and events["recommendations"] == []
    person = data["contact"]
    assert isinstance(person, dict)
    assert person["email"] is None and data["promo"] is None
