"""The chat app's ES modules (widget/app/): each is type-checked on its own
(`// @ts-check` first, for `tsc --noEmit`), every import names a module that
is there, and the imports run one way, from main.js down to state.js, with
no loop (a loop makes the order modules run in depend on who imports first)."""

from __future__ import annotations

import posixpath
import re

from server.http.widget_assets import WIDGET_DIR, app_modules

_IMPORT = re.compile(r"^import\s[^;]*?\sfrom\s+'([^']+)';", re.MULTILINE | re.DOTALL)


def imports() -> dict[str, list[str]]:
    """Module -> the modules it imports (paths relative to widget/)."""
    graph: dict[str, list[str]] = {}
    for name in app_modules():
        text = (WIDGET_DIR / name).read_text()
        here = posixpath.dirname(name)
        graph[name] = [posixpath.normpath(posixpath.join(here, m)) for m in _IMPORT.findall(text)]
    return graph


def loops(graph: dict[str, list[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            found.append([*path[path.index(name) :], name])
            return
        if name in done:
            return
        for dep in graph.get(name, []):
            visit(dep, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])
    return found


def test_every_module_is_type_checked() -> None:
    for name in app_modules():
        assert (WIDGET_DIR / name).read_text().startswith("// @ts-check\n"), name


def test_every_import_names_a_module_of_the_app() -> None:
    graph = imports()
    assert graph["app/main.js"], "main.js imports the app"
    for name, deps in graph.items():
        for dep in deps:
            assert dep in graph, f"{name} imports {dep}, which is not in widget/app/"


def test_every_module_is_reached_from_main() -> None:
    graph = imports()
    reached, todo = set(), ["app/main.js"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert sorted(reached) == sorted(graph)


def test_the_imports_have_no_loop() -> None:
    assert loops(imports()) == []


def test_a_loop_is_found() -> None:
    # The check itself: state.js importing the views would be a loop.
    graph = {**imports(), "app/state.js": ["app/views/messages.js"]}
    assert any(loop[0] == loop[-1] and "app/state.js" in loop for loop in loops(graph))
