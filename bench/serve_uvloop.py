"""What-if launcher, for benchmarks only: `threadline serve` exactly as
server/cli.py runs it, except that the event loop is uvloop.

`threadline serve` starts uvicorn with `asyncio.run(...)` and
`uvicorn.Server.serve()`, so it runs on the standard library's event loop:
uvicorn picks uvloop only in `uvicorn.run()` / `Server.run()`. This measures
what that costs. Usage: python bench/serve_uvloop.py serve --port 8000
"""

from __future__ import annotations

import asyncio

import uvloop

from server.cli import main

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    main()
