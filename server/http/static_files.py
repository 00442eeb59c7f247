"""Static files served from a folder: read when they change, gzipped once,
answered with an ETag (304 when the client has it) and `nosniff`."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

_NETLOC = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


@dataclasses.dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str


class AssetFiles:
    """Files of one folder, read when they change (size or mtime), kept
    with their gzipped form and an ETag."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[tuple[int, int], Asset]] = {}

    def get(self, name: str) -> Asset:
        path = self.directory / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise HTTPException(404, f"file {name} is missing") from None
        key = (stat.st_mtime_ns, stat.st_size)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        body = path.read_bytes()
        asset = Asset(body, gzip.compress(body, 9, mtime=0), hashlib.sha256(body).hexdigest()[:20])
        self._cache[name] = (key, asset)
        return asset


def ws_origin(scheme: str, netloc: str) -> str | None:
    """The websocket origin of an http(s) origin, or None if the netloc is
    not a plain host[:port] (it goes into a header)."""
    if scheme not in ("http", "https") or not _NETLOC.match(netloc):
        return None
    return f"{'wss' if scheme == 'https' else 'ws'}://{netloc}"


def _not_modified(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match", "")
    return etag in [tag.strip().removeprefix("W/") for tag in sent.split(",")]


def answer(request: Request, asset: Asset, media_type: str, headers: dict[str, str]) -> Response:
    gz = "gzip" in request.headers.get("accept-encoding", "").lower()
    etag = f'"{asset.etag}{"-gz" if gz else ""}"'
    headers = {
        **headers,
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    return Response(asset.gzipped if gz else asset.body, media_type=media_type, headers=headers)
