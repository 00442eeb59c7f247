"""The domain's allow-list (ARCHITECTURE.md, layers): the standard library
and the domain itself, nothing else. import-linter can only forbid what it
is told about; this reads every import of server/domain and admits only
what is on the list, so a new package or layer is refused without anyone
remembering to name it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "server" / "domain"
# Standard-library modules that do I/O, run concurrently or read a clock:
# pure code gets those results as parameters instead.
NOT_PURE = {
    "asyncio", "concurrent", "ftplib", "http", "imaplib", "io", "multiprocessing", "os",
    "pathlib", "poplib", "selectors", "shutil", "smtplib", "socket", "sqlite3", "ssl",
    "subprocess", "tempfile", "threading", "time", "urllib.request",
}  # fmt: skip


def allowed(module: str) -> bool:
    top = module.partition(".")[0]
    if module == "server.domain" or module.startswith("server.domain."):
        return True
    if top == "__future__":
        return True
    impure = any(module == m or module.startswith(m + ".") for m in NOT_PURE)
    return top in sys.stdlib_module_names and not impure


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """Every module `source` imports, with its line; relative imports are
    resolved against `package`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            name = ".".join(p for p in (base, node.module or "") if p)
            found.append((node.lineno, name))
    return found


def impure_code(source: str) -> list[int]:
    """Lines with `async def` or `await`: the domain takes results, it
    does not wait for them."""
    kinds = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, kinds)]


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    offenders = {
        f"{path.name}:{line}": module
        for path in sorted(DOMAIN.rglob("*.py"))
        for line, module in imported_modules(path.read_text(), "server.domain")
        if not allowed(module)
    }
    assert offenders == {}


def test_the_domain_never_awaits() -> None:
    offenders = {
        path.name: lines
        for path in sorted(DOMAIN.rglob("*.py"))
        if (lines := impure_code(path.read_text()))
    }
    assert offenders == {}


def test_the_allow_list_refuses_what_it_must() -> None:
    # Without this, a reader that found no imports would pass the tests above.
    source = (
        "import sqlalchemy as sa\nfrom starlette.requests import Request\n"
        "from server.storage import tables\nfrom ..queries import reading\n"
        "import asyncio\nfrom os import environ\nimport urllib.request\n"
        "from connectors.email import render\nimport time\n"
        "import re\nfrom datetime import datetime\nfrom . import errors\n"
        "from server.domain.values import Direction\nimport urllib.parse\n"
    )
    verdicts = [allowed(m) for _, m in imported_modules(source, "server.domain")]
    assert verdicts == [False] * 9 + [True] * 5
    assert impure_code("async def f():\n    await g()\n") == [1, 2]
