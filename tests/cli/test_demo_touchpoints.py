"""The demo's touchpoints as a new user meets them (issue: "tried as a new
user"): `threadline demo`, sign up in the shop, put two things in the
cart and leave; the welcome and the cart reminder listing both reach the
demo's own mail sink with a working one-click unsubscribe; the order
placed before the next reminder cancels it, with its reason; the two
mails count against the caps. The real demo process, its real SMTP sink,
and the same HTTP calls the shop page and its widget make."""

from __future__ import annotations

import email
import email.policy
import re
import sqlite3
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx

from server.demo import DEMO_ADMIN_EMAIL, DEMO_PASSWORD
from tests.cli.test_commands import free_port, log_in
from tests.cli.test_demo_shop import demo

T = TypeVar("T")
MAIL_DEADLINE = 90.0  # the reminder is due 30 s after the cart; the rest is slack


def wait_for(probe: Callable[[], T | None], what: str, deadline: float = MAIL_DEADLINE) -> T:
    """`probe()`'s first result that is not None, polled until `deadline`."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        got = probe()
        if got is not None:
            return got
        time.sleep(0.1)  # polling interval of a condition wait
    raise AssertionError(f"timed out waiting for {what}")


def mails(directory: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(directory.glob("*.eml")) if directory.exists() else []:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def mail_with(directory: Path, subject: str) -> EmailMessage | None:
    return next((m for m in mails(directory) if subject in str(m["Subject"])), None)


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    content: str = body.get_content()
    return content


def ledger_rows(db: Path, contact_id: int) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT channel, kind FROM touch_ledger WHERE contact_id = ? ORDER BY id", (contact_id,)
        ).fetchall()


def test_signup_and_cart_in_the_demo_shop_bring_a_welcome_and_a_reminder(
    tmp_path: Path,
) -> None:
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    sent = data.resolve() / "sent-mail"
    with demo(data, port) as banner:
        found = re.search(r"Shop:\s+(\S+)", banner)
        assert found, banner
        shop = found.group(1).rstrip("/")
        page = httpx.get(f"{shop}/", timeout=10).text
        assert 'id="signup"' in page and 'Threadline.track("order_placed"' in page
        token = page.split('data-inbox="', 1)[1].split('"', 1)[0]

        # The shop's backend signs the new user's identity.
        signup = httpx.post(
            f"{shop}/signup", json={"name": "Robin Reyes", "email": "robin@example.com"}, timeout=10
        )
        assert signup.status_code == 200, signup.text
        account = signup.json()
        bad = httpx.post(f"{shop}/signup", json={"name": "X", "email": "nope"}, timeout=10)
        assert bad.status_code == 400 and bad.json()["field"] == "email"

        # What the widget's iframe sends for setUser and track().
        with httpx.Client(base_url=f"{base}/api/v1/widget", timeout=10) as w:
            session = w.post("/sessions", json={"inbox_token": token})
            assert session.status_code == 201, session.text
            w.headers["X-Widget-Session"] = session.json()["session_token"]
            who = w.post(
                "/identify",
                json={
                    "user_id": account["user_id"],
                    "name": "Robin Reyes",
                    "email": "robin@example.com",
                    "identity_token": account["identity_token"],
                },
            )
            assert who.status_code == 200, who.text
            assert who.json()["verified"] is True
            contact_id = who.json()["contact_id"]

            def track(name: str, **properties: Any) -> None:
                got = w.post("/events", json={"name": name, "properties": properties})
                assert got.status_code in (200, 201), got.text

            track("signed_up", method="email")
            shoes = {"product_id": "trail-runner", "name": "Trail Runner shoes", "price": 89.0}
            socks = {"product_id": "merino-socks", "name": "Merino socks, 3 pairs", "price": 19.0}
            cart = {"cart_id": "cart-robin", "currency": "EUR", "url": f"{shop}/"}
            track("cart_updated", **cart, items=[{**shoes, "quantity": 1}], total=89.0)
            items = [{**shoes, "quantity": 1}, {**socks, "quantity": 2}]
            track("cart_updated", **cart, items=items, total=127.0)

            welcome = wait_for(lambda: mail_with(sent, "Welcome to Demo Shop"), "the welcome")
            reminder = wait_for(lambda: mail_with(sent, "in your cart"), "the cart reminder")
            assert welcome["To"] == reminder["To"] == "robin@example.com"
            assert "Hi Robin," in text_of(welcome)
            body = text_of(reminder)
            assert "Trail Runner shoes" in body and "Merino socks, 3 pairs x 2" in body
            assert "127.00 EUR" in body
            assert f"Pick up where you left off: {shop}/" in body
            assert str(reminder["Subject"]) == "You left 2 things in your cart"

            with httpx.Client(base_url=base, timeout=10) as agent:
                log_in(agent, DEMO_ADMIN_EMAIL, DEMO_PASSWORD)
                column = agent.get(f"/api/v1/contacts/{contact_id}/touchpoints").json()
                [next_step] = [d for d in column["upcoming"] if d["position"] == 1]
                assert next_step["touchpoint_name"] == "Abandoned cart"

                # The order, placed from the shop before the second reminder.
                track(
                    "order_placed",
                    order_id="order-robin",
                    cart_id="cart-robin",
                    items=items,
                    total=127.0,
                    currency="EUR",
                )
                column = agent.get(f"/api/v1/contacts/{contact_id}/touchpoints").json()
                assert column["upcoming"] == []
                [cancelled] = [d for d in column["past"] if d["id"] == next_step["id"]]
                assert cancelled["state"] == "cancelled"
                assert cancelled["reason"]
                sent_states = sorted(
                    d["touchpoint_name"] for d in column["past"] if d["state"] == "sent"
                )
                assert sent_states == ["Abandoned cart", "Welcome after signup"]

                # Two touches against the marketing caps.
                assert ledger_rows(data / "threadline.db", contact_id) == [
                    ("email", "marketing"),
                    ("email", "marketing"),
                ]

                # The one-click unsubscribe of RFC 8058, as a mail client posts it.
                assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
                link = str(reminder["List-Unsubscribe"]).strip("<>")
                assert link.startswith(f"{base}/u/")
                assert link in body  # the footer shows the same link
                click = httpx.post(
                    link,
                    content="List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=10,
                )
                assert 200 <= click.status_code < 300, click.text
                consents = agent.get(f"/api/v1/contacts/{contact_id}/consents").json()
                assert consents["current"]["email:marketing"] == "withdrawn"
