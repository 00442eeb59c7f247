"""Attachments over HTTP (PROTOCOLS.md P7): uploads sniffed from their
bytes and capped in size, downloads served so a browser never renders them
as a page, and an authorization check on every download (a file the caller
may not read is a 404, like one that does not exist)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.conversations import do_create_conversation
from server.actions.visitors import do_start_visitor_session
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, client, login, make_runtime, seed_workspace

API = "/api/v1"
W = "/api/v1/widget"
HEADER = "X-Widget-Session"

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 20
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'

# name, bytes, declared type -> served type, disposition
SNIFF_TABLE: list[tuple[str, bytes, str, str, str]] = [
    ("photo.png", HTML, "image/png", "application/octet-stream", "attachment"),
    ("logo.svg", SVG, "image/svg+xml", "application/octet-stream", "attachment"),
    ("logo.png", SVG, "image/png", "application/octet-stream", "attachment"),
    ("page.html", HTML, "text/html", "application/octet-stream", "attachment"),
    ("shot.png", PNG, "image/png", "image/png", "inline"),
    ("shot.txt", PNG, "text/plain", "image/png", "inline"),
    ("pic.jpg", JPEG, "image/jpeg", "image/jpeg", "inline"),
    ("anim.gif", GIF, "image/gif", "image/gif", "inline"),
    ("pic.webp", WEBP, "image/webp", "image/webp", "inline"),
    ("invoice.pdf", PDF, "application/pdf", "application/pdf", "attachment"),
    ("bundle.zip", ZIP, "application/zip", "application/zip", "attachment"),
    ("notes.txt", "grüße\n".encode(), "text/html", "text/plain; charset=utf-8", "attachment"),
    ("data.bin", b"\x00\x01\x02\xff", "image/png", "application/octet-stream", "attachment"),
]


async def upload(
    c: httpx.AsyncClient,
    inbox_id: int,
    data: bytes = PNG,
    name: str = "shot.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await c.post(
        f"{API}/inboxes/{inbox_id}/attachments",
        params={"filename": name},
        content=data,
        headers={"content-type": content_type},
    )


async def uploaded(c: httpx.AsyncClient, inbox_id: int, data: bytes = PNG) -> dict[str, Any]:
    res = await upload(c, inbox_id, data)
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()["attachment"]
    return body


async def visitor_token(runtime: Runtime, ws: Workspace) -> str:
    new = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    return new.token


async def widget_upload(
    c: httpx.AsyncClient, token: str, data: bytes = PNG, name: str = "shot.png"
) -> httpx.Response:
    return await c.post(
        f"{W}/attachments", params={"filename": name}, content=data, headers={HEADER: token}
    )


async def count_attachments(runtime: Runtime) -> int:
    async with runtime.db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(t.attachments)) or 0)


def stored_files(runtime: Runtime) -> list[Path]:
    root = runtime.settings.data_dir / "attachments"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_p7_headers(res: httpx.Response) -> None:
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["content-security-policy"] == "sandbox"
    assert res.headers["cross-origin-resource-policy"] == "same-origin"


async def test_upload_send_and_download(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    res = await upload(agent_client, ws.inbox_id, name="../../Screen shot.png")
    assert res.status_code == 201, res.text
    attachment = res.json()["attachment"]
    assert attachment == {
        "id": attachment["id"],
        "filename": "Screen shot.png",
        "content_type": "image/png",
        "size": len(PNG),
        "image": True,
    }
    [path] = stored_files(runtime)
    assert "Screen" not in path.name and path.read_bytes() == PNG

    res = await agent_client.get(f"{API}/attachments/{attachment['id']}")
    assert res.status_code == 200 and res.content == PNG
    assert res.headers["content-type"] == "image/png"
    assert res.headers["content-disposition"] == (
        "inline; filename=\"Screen shot.png\"; filename*=UTF-8''Screen%20shot.png"
    )
    assert_p7_headers(res)
    again = await agent_client.get(
        f"{API}/attachments/{attachment['id']}", headers={"if-none-match": res.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert_p7_headers(again)

    res = await agent_client.post(
        f"{API}/conversations/{ws.conversation_id}/messages",
        json={"attachment_ids": [attachment["id"]]},
    )
    assert res.status_code == 201, res.text
    assert (res.json()["text"], res.json()["attachments"]) == ("", [attachment])
    listed = await agent_client.get(f"{API}/conversations/{ws.conversation_id}/messages")
    assert listed.json()["items"][-1]["attachments"] == [attachment]
    res = await agent_client.post(
        f"{API}/conversations/{ws.conversation_id}/messages", json={"text": " "}
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "text"


async def test_type_comes_from_the_bytes_and_only_safe_images_are_inline(
    ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    for name, data, declared, served, disposition in SNIFF_TABLE:
        res = await upload(admin_client, ws.inbox_id, data, name, declared)
        assert res.status_code == 201, res.text
        attachment = res.json()["attachment"]
        assert attachment["image"] is (disposition == "inline"), name
        got = await admin_client.get(f"{API}/attachments/{attachment['id']}")
        assert got.status_code == 200 and got.content == data, name
        assert got.headers["content-type"] == served, name
        assert got.headers["content-disposition"].split(";")[0] == disposition, name
        assert_p7_headers(got)


async def test_non_ascii_names_are_kept_and_quoted(
    ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    res = await upload(admin_client, ws.inbox_id, b"hi", 'Ré"sumé\u202egpj.txt', "text/plain")
    attachment = res.json()["attachment"]
    assert attachment["filename"] == "Ré_sumégpj.txt"  # quote replaced, RTL override gone
    got = await admin_client.get(f"{API}/attachments/{attachment['id']}")
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"R__sum_gpj.txt\"; filename*=UTF-8''R%C3%A9_sum%C3%A9gpj.txt"
    )


@pytest.fixture
async def small(migrated_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = make_runtime(migrated_url, tmp_path / "small", THREADLINE_MAX_UPLOAD_BYTES="1000")
    yield rt
    await rt.close()


async def test_too_large_is_413_naming_the_body_and_stores_nothing(small: Runtime) -> None:
    ws = await seed_workspace(small)
    token = await visitor_token(small, ws)

    async def chunked(size: int) -> AsyncIterator[bytes]:
        # No Content-Length: the cap must hold while streaming.
        for _ in range(size // 100):
            yield b"x" * 100

    async with client(small) as c:
        await login(c, ws.agent_email)
        for res in (
            await upload(c, ws.inbox_id, b"x" * 1001),
            await c.post(
                f"{API}/inboxes/{ws.inbox_id}/attachments",
                params={"filename": "big.txt"},
                content=chunked(5000),
            ),
            await widget_upload(c, token, b"x" * 1001),
        ):
            assert res.status_code == 413, res.text
            assert res.json()["error"]["field"] == "body"
        assert await count_attachments(small) == 0
        assert stored_files(small) == []
        res = await upload(c, ws.inbox_id, b"x" * 1000, "exact.txt", "text/plain")
        assert res.status_code == 201, res.text


async def test_default_limit_is_ten_mebibytes(runtime: Runtime) -> None:
    assert runtime.settings.max_upload_bytes == 10 * 1024 * 1024


async def test_empty_body_and_bad_names_are_refused(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    token = await visitor_token(runtime, ws)
    res = await upload(agent_client, ws.inbox_id, b"")
    assert (res.status_code, res.json()["error"]["field"]) == (400, "body")
    res = await widget_upload(agent_client, token, b"")
    assert (res.status_code, res.json()["error"]["field"]) == (400, "body")
    res = await agent_client.post(f"{API}/inboxes/{ws.inbox_id}/attachments", content=PNG)
    assert (res.status_code, res.json()["error"]["field"]) == (422, "filename")
    assert await count_attachments(runtime) == 0


async def test_agent_downloads_are_authorized(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    # The admin answers in Billing, which the agent is no member of.
    billing = await perform(
        runtime,
        ws.admin,
        do_create_conversation,
        inbox_id=ws.other_inbox_id,
        contact_id=ws.contact_id,
        subject=None,
    )
    sent = await uploaded(admin_client, ws.other_inbox_id)
    res = await admin_client.post(
        f"{API}/conversations/{billing}/messages",
        json={"text": "invoice", "attachment_ids": [sent["id"]], "private": True},
    )
    assert res.status_code == 201, res.text
    unsent = await uploaded(admin_client, ws.inbox_id)
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        for c in (agent_client, outsider):
            for attachment in (sent, unsent):
                res = await c.get(f"{API}/attachments/{attachment['id']}")
                assert res.status_code == 404, res.text
                assert res.json()["error"]["code"] == "not_found"
        res = await agent_client.get(f"{API}/attachments/{10**9}")
        assert res.status_code == 404
        # An agent can't upload to an inbox it can't see, and no bytes are kept.
        files = len(stored_files(runtime))
        res = await upload(agent_client, ws.other_inbox_id)
        assert res.status_code == 404
        assert len(stored_files(runtime)) == files
    for attachment in (sent, unsent):
        assert (await admin_client.get(f"{API}/attachments/{attachment['id']}")).status_code == 200
    async with client(runtime) as anon:
        assert (await anon.get(f"{API}/attachments/{sent['id']}")).status_code == 401


async def test_attaching_someone_elses_upload_or_twice_is_refused(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    admins = await uploaded(admin_client, ws.inbox_id)
    url = f"{API}/conversations/{ws.conversation_id}/messages"
    res = await agent_client.post(url, json={"text": "hi", "attachment_ids": [admins["id"]]})
    assert (res.status_code, res.json()["error"]["field"]) == (404, "attachment_ids[0]")
    mine = await uploaded(agent_client, ws.inbox_id)
    res = await agent_client.post(url, json={"text": "1", "attachment_ids": [mine["id"]]})
    assert res.status_code == 201
    res = await agent_client.post(url, json={"text": "2", "attachment_ids": [mine["id"]]})
    assert (res.status_code, res.json()["error"]["field"]) == (409, "attachment_ids[0]")
    res = await agent_client.post(url, json={"text": "3", "attachment_ids": list(range(1, 12))})
    assert (res.status_code, res.json()["error"]["field"]) == (422, "attachment_ids")


async def test_widget_upload_send_and_who_may_download(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    ann, bob = await visitor_token(runtime, ws), await visitor_token(runtime, ws)
    other = await seed_workspace(runtime, "Other Co")
    stranger = await visitor_token(runtime, other)
    async with client(runtime) as browser:
        res = await widget_upload(browser, ann, HTML, "photo.png")
        assert res.status_code == 201, res.text
        upload_ = res.json()["attachment"]
        assert (upload_["content_type"], upload_["image"]) == ("application/octet-stream", False)

        def get(token: str, attachment_id: int) -> Any:
            return browser.get(f"{W}/attachments/{attachment_id}", headers={HEADER: token})

        res = await get(ann, upload_["id"])
        assert res.status_code == 200 and res.content == HTML
        assert res.headers["content-disposition"].startswith("attachment;")
        assert_p7_headers(res)
        for token in (bob, stranger):
            assert (await get(token, upload_["id"])).status_code == 404
        # Bob can't send Ann's file either.
        res = await browser.post(
            f"{W}/messages",
            json={"client_id": "b1", "attachment_ids": [upload_["id"]]},
            headers={HEADER: bob},
        )
        assert (res.status_code, res.json()["error"]["field"]) == (404, "attachment_ids[0]")
        res = await browser.post(
            f"{W}/messages",
            json={"client_id": "a1", "attachment_ids": [upload_["id"]]},
            headers={HEADER: ann},
        )
        assert res.status_code == 201, res.text
        message = res.json()["message"]
        assert (message["text"], message["attachments"]) == ("", [upload_])
        conversation_id = message["conversation_id"]
        listed = (await browser.get(f"{W}/conversation", headers={HEADER: ann})).json()
        assert listed["messages"][-1]["attachments"] == [upload_]
        assert (await get(ann, upload_["id"])).status_code == 200
        assert (await get(bob, upload_["id"])).status_code == 404
        # The agents see it now it is on a message of their inbox.
        res = await admin_client.get(f"{API}/attachments/{upload_['id']}")
        assert res.status_code == 200

        # Files on an agent's reply reach the visitor; on a private note, never.
        reply, note = (
            await uploaded(admin_client, ws.inbox_id),
            await uploaded(admin_client, ws.inbox_id),
        )
        for attachment, private in ((reply, False), (note, True)):
            res = await admin_client.post(
                f"{API}/conversations/{conversation_id}/messages",
                json={"text": "x", "attachment_ids": [attachment["id"]], "private": private},
            )
            assert res.status_code == 201, res.text
        assert (await get(ann, reply["id"])).status_code == 200
        assert (await get(ann, note["id"])).status_code == 404
        assert (await get(bob, reply["id"])).status_code == 404
        # No session, no download: and an agent cookie is not a session.
        res = await admin_client.get(f"{W}/attachments/{reply['id']}")
        assert (res.status_code, res.json()["error"]["field"]) == (401, HEADER)


async def test_widget_uploads_are_rate_limited_per_session(runtime: Runtime, ws: Workspace) -> None:
    ann, bob = await visitor_token(runtime, ws), await visitor_token(runtime, ws)
    async with client(runtime) as browser:
        for _ in range(20):
            assert (await widget_upload(browser, ann, b"hi")).status_code == 201
        res = await widget_upload(browser, ann, b"hi")
        assert res.status_code == 429 and int(res.headers["retry-after"]) >= 1
        assert (await widget_upload(browser, bob, b"hi")).status_code == 201


async def test_openapi_describes_raw_uploads_and_downloads(
    anon_client: httpx.AsyncClient,
) -> None:
    doc = (await anon_client.get(f"{API}/openapi.json")).json()
    post = doc["paths"][f"{API}/inboxes/{{inbox_id}}/attachments"]["post"]
    assert post["requestBody"]["content"]["*/*"]["schema"]["format"] == "binary"
    assert post["parameters"][1]["name"] == "filename"
    get = doc["paths"][f"{API}/attachments/{{attachment_id}}"]["get"]
    assert "application/octet-stream" in get["responses"]["200"]["content"]
