"""The inbox web app's modules (server/ui, plain ES modules served as they
are): each is type-checked (`// @ts-check` opts a file into `tsc --noEmit`,
which .ci/run runs), and their imports form no loop, so a leaf never reaches
up into the app or a page that imports it."""

from __future__ import annotations

import re

from server.http.ui_assets import UI_DIR

MODULES = sorted(UI_DIR.rglob("*.js"))
# `import ... from "./x.js"` and `export ... from "./x.js"`, over several lines too.
IMPORT = re.compile(r'^\s*(?:import|export)\s[^;]*?\sfrom\s+"\./([a-z0-9_/-]+\.js)"', re.MULTILINE)


def imports_of(source: str) -> list[str]:
    return sorted(set(IMPORT.findall(source)))


def import_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Every elementary cycle once, starting from its smallest module."""
    cycles: list[list[str]] = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph.get(node, []):
            if nxt == start:
                cycles.append([*path, start])
            elif nxt > start and nxt not in path:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return cycles


def test_every_module_is_type_checked() -> None:
    assert MODULES
    unchecked = [p.name for p in MODULES if not p.read_text().startswith("// @ts-check\n")]
    assert not unchecked, f"start these with `// @ts-check`: {unchecked}"


def test_the_modules_import_no_loop() -> None:
    graph = {p.relative_to(UI_DIR).as_posix(): imports_of(p.read_text()) for p in MODULES}
    cycles = [" -> ".join(c) for c in import_cycles(graph)]
    assert not cycles, cycles


def test_the_loop_finder_sees_loops_and_multi_line_imports() -> None:
    source = 'import {\n  a,\n  b,\n} from "./b.js";\nexport { c } from "./c.js";\n'
    assert imports_of(source) == ["b.js", "c.js"]
    graph = {"a.js": ["b.js"], "b.js": ["c.js"], "c.js": ["a.js", "d.js"], "d.js": ["d.js"]}
    assert import_cycles(graph) == [["a.js", "b.js", "c.js", "a.js"], ["d.js", "d.js"]]
