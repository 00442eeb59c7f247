"""An email's HTML as a page for the inbox's sandboxed frame (PROTOCOLS.md
P4, P7): only for those who may read the message, sanitised again, inline
`cid:` images put in as `data:` URLs (raster images only, under the size
caps), remote images never fetched, and headers that keep the page from
running anything or being framed by anyone else."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.policy import SMTP

import httpx
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.inboxes import do_add_inbox_member
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.queries.message_html import MAX_INLINE_IMAGE_BYTES
from server.runtime import Runtime
from server.storage import tables as t
from tests.email.mails import PNG, mail
from tests.support import Workspace, client, fetch_one, login, seed_workspace

HOSTILE_HTML = (
    "<p>Hello, my order <b>#1042</b> has not arrived.</p>"
    '<p><img src="cid:logo@customer.test" alt="logo"></p>'
    '<p><img src="https://tracker.example/pixel.gif" alt="pixel"></p>'
    '<p><a href="https://shop.example/orders/1042">my order</a>'
    ' <a href="javascript:alert(1)">bad link</a></p>'
    "<script>alert(1)</script>"
    '<img src="x" onerror="alert(2)">'
    "<style>body { background: url(https://tracker.example/bg.gif) }</style>"
    '<iframe src="https://evil.example/"></iframe>'
)


def url(message_id: int) -> str:
    return f"/api/v1/messages/{message_id}/html"


async def hostile_mail(runtime: Runtime, ws: Workspace) -> int:
    out = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=mail(html=HOSTILE_HTML, inline_image=("logo@customer.test", PNG)),
        source="http",
    )
    assert out.message_id is not None
    return out.message_id


async def test_the_page_is_sanitised_with_inline_images_and_strict_headers(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    message_id = await hostile_mail(runtime, ws)
    res = await admin_client.get(url(message_id))
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "text/html; charset=utf-8"
    assert res.headers["content-security-policy"] == (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
    )
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["cache-control"] == "private, no-cache"
    page = res.text
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "Hello, my order <b>#1042</b> has not arrived." in page
    # The cid: image is the attachment's bytes; the remote one is not fetched.
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert "cid:" not in page
    assert "tracker.example" not in page
    assert 'alt="pixel"' in page
    # Links open in a new tab, without opener or referrer.
    assert (
        '<a href="https://shop.example/orders/1042" target="_blank"'
        ' rel="noopener noreferrer nofollow">my order</a>'
    ) in page
    lowered = page.lower()
    for never in ("<script", "onerror", "javascript:", "alert(", "<iframe", "evil.example"):
        assert never not in lowered, never


async def test_only_those_who_may_read_the_message_get_it(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    message_id = await hostile_mail(runtime, ws)
    async with client(runtime) as anon:
        assert (await anon.get(url(message_id))).status_code == 401
    # The plain agent is not a member of the email inbox: as if it didn't exist.
    async with client(runtime) as agent:
        await login(agent, ws.agent_email)
        res = await agent.get(url(message_id))
        assert res.status_code == 404, res.text
        assert res.json()["error"]["code"] == "not_found"
        assert "Hello" not in res.text
        await perform(
            runtime,
            ws.system,
            do_add_inbox_member,
            inbox_id=ws.other_inbox_id,
            agent_id=ws.agent_id,
        )
        assert (await agent.get(url(message_id))).status_code == 200
    # An admin of another workspace sees nothing.
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        res = await outsider.get(url(message_id))
        assert res.status_code == 404, res.text
    # A message without HTML, and no message at all.
    for missing in (9_999_999, await plain_message(runtime, ws)):
        res = await admin_client.get(url(missing))
        assert res.status_code == 404, res.text


async def plain_message(runtime: Runtime, ws: Workspace) -> int:
    out = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=mail(subject="Plain text only", text="Just text, no HTML."),
        source="http",
    )
    assert out.message_id is not None
    return out.message_id


async def test_only_raster_images_under_the_caps_are_put_in(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    big = PNG[:8] + b"\x00" * MAX_INLINE_IMAGE_BYTES  # a PNG by its bytes, over the cap
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Pat Doe <pat@customer.test>"
    msg["To"] = "support@acme.test"
    msg["Subject"] = "Pictures"
    msg["Message-ID"] = "<pictures@customer.test>"
    msg.set_content("Pictures attached.")
    msg.add_alternative(
        '<p><img src="cid:small@x" alt="small"><img src="cid:big@x" alt="big">'
        '<img src="cid:vector@x" alt="vector"><img src="cid:nowhere@x" alt="nowhere"></p>',
        subtype="html",
    )
    html_part = msg.get_body(preferencelist=("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(PNG, maintype="image", subtype="png", cid="<small@x>")
    html_part.add_related(big, maintype="image", subtype="png", cid="<big@x>")
    html_part.add_related(svg, maintype="image", subtype="svg+xml", cid="<vector@x>")
    out = await ingest_mail(
        MailIntake.of(runtime), inbox_id=ws.other_inbox_id, raw=msg.as_bytes(), source="http"
    )
    assert out.message_id is not None
    res = await admin_client.get(url(out.message_id))
    assert res.status_code == 200, res.text
    page = res.text
    assert page.count('src="data:') == 1
    assert f'<img src="data:image/png;base64,{base64.b64encode(PNG).decode()}" alt="small">' in page
    # Over the cap, not an image, cited but not there: left broken (no src).
    for alt in ("big", "vector", "nowhere"):
        assert f'<img alt="{alt}">' in page
    assert "<svg" not in page and "cid:" not in page


# A javascript: scheme spelled with characters a reader skips: raw, and as
# character references (zero-width space, soft hyphen, BOM, word joiner,
# a bidi override, a tab), next to a link with such characters in its path.
INVISIBLE_SCHEMES = (
    '<p><a href="java\u200bscript:alert(1)">zwsp</a>'
    ' <a href="java&shy;script:alert(2)">shy</a>'
    ' <a href="&#xFEFF;javascript:alert(3)">bom</a>'
    ' <a href="java&#x2060;script:alert(4)">wj</a>'
    ' <a href="java\u202escript:alert(5)">bidi</a>'
    ' <a href="java&#9;script:alert(6)">tab</a>'
    ' <img src="da\u200cta:image/svg+xml,x" alt="zwnj">'
    ' <a href="https://shop.example/orders/10\u200b42">order</a></p>'
)


async def test_links_with_invisible_characters_in_the_scheme_never_reach_the_page(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    out = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=mail(html=INVISIBLE_SCHEMES),
        source="http",
    )
    assert out.message_id is not None
    stored = await fetch_one(
        runtime, sa.select(t.messages).where(t.messages.c.id == out.message_id)
    )
    assert stored.html is not None
    assert stored.html.count("href=") == 1 and "alert" not in stored.html
    # HTML stored before the rule existed is held to it when it is shown.
    async with runtime.db.write() as conn:
        await conn.execute(
            t.messages.update()
            .where(t.messages.c.id == out.message_id)
            .values(html=INVISIBLE_SCHEMES)
        )
    res = await admin_client.get(url(out.message_id))
    assert res.status_code == 200, res.text
    page = res.text
    assert "alert" not in page and "script:" not in page.replace("\u200b", "")
    for name in ("zwsp", "shy", "bom", "wj", "bidi", "tab"):
        assert f'<a target="_blank" rel="noopener noreferrer nofollow">{name}</a>' in page, name
    assert '<img alt="zwnj">' in page
    assert (
        '<a href="https://shop.example/orders/10\u200b42" target="_blank"'
        ' rel="noopener noreferrer nofollow">order</a>'
    ) in page
