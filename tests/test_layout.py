"""The code's layout: no import cycle between modules, and errors on import surface as what they are."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# Import name prefix -> folder (stages/ and filters/ import as curate.stages and curate.filters).
PACKAGES = {"curate": ROOT / "curate", "curate.stages": ROOT / "stages", "curate.filters": ROOT / "filters"}


def modules() -> dict[str, Path]:
    out = {}
    for prefix, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            out[".".join([prefix, *parts])] = path
    return out


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module loads: not inside functions, not under TYPE_CHECKING."""
    found = []

    def visit(body):
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(tree.body)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in module_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in mods}
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from pkg import sub` names a module when one exists
                target = f"{base}.{alias.name}"
                deps.add(target if target in mods else base)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := walk(dep)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_no_import_cycle():
    graph = import_graph()
    assert {"curate.stage", "curate.worker", "curate.executor", "curate.stages.dedup.steps"} <= set(graph)
    assert "curate.stage" in graph["curate.worker"]  # the graph sees real edges
    assert cycle(graph) is None, " -> ".join(cycle(graph))
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# A module finder that makes one module fail to import, the way a missing dependency does.
BREAK = """
import sys
class Broken:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise ImportError("No module named 'some_missing_dependency'")
sys.meta_path.insert(0, Broken())
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_an_import_error_in_a_command_module_surfaces_as_itself():
    proc = _python(BREAK.format(module="curate.cli.report") + "import curate.cli.main")
    assert proc.returncode != 0
    assert "No module named 'some_missing_dependency'" in proc.stderr and "not found" not in proc.stderr


def test_a_stage_that_fails_to_import_is_an_error_not_a_missing_stage():
    from curate import registry

    assert registry.names() == ["extract", "langid", "quality", "dedup", "bucket", "tokenize"]
    proc = _python(BREAK.format(module="curate.stages.bucket") + "from curate import config\nconfig.load(None)")
    assert proc.returncode != 0 and "No module named 'some_missing_dependency'" in proc.stderr
