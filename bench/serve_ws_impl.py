"""What-if launcher, for benchmarks only: `threadline serve` exactly as
server/cli.py runs it, except that uvicorn uses the websocket implementation
named by the environment variable BENCH_WS_IMPL (one of uvicorn's `ws`
choices: websockets-sansio, websockets, wsproto).

server/cli.py passes `ws="websockets-sansio"` to `uvicorn.Config`; this wraps
`Config.__init__` to override that one argument, nothing else. Usage:
BENCH_WS_IMPL=wsproto python bench/serve_ws_impl.py serve --port 8000
"""

from __future__ import annotations

import functools
import os
from typing import Any

import uvicorn
from uvicorn.config import WS_PROTOCOLS

from server.cli import main


def _patch(impl: str) -> None:
    if impl not in WS_PROTOCOLS or impl in ("auto", "none"):
        raise SystemExit(f"BENCH_WS_IMPL={impl!r}: not a uvicorn websocket implementation")
    original = uvicorn.Config.__init__

    @functools.wraps(original)
    def init(self: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        kwargs["ws"] = impl
        original(self, *args, **kwargs)

    uvicorn.Config.__init__ = init  # type: ignore[method-assign]


if __name__ == "__main__":
    _patch(os.environ.get("BENCH_WS_IMPL", "websockets-sansio"))
    main()
