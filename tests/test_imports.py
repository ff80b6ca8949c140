"""The library imports without Streamlit (rule 1 of the architecture) and has no import circle.

Every module under newsclf/ outside newsclf.ui is found automatically (nothing to keep up to date by
hand). The import graph counts every `import`/`from ... import` at any depth (lazy imports inside
functions too) and every `importlib.import_module("newsclf....")` with a literal or f-string name.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "newsclf"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _library_modules() -> list[str]:
    return [m for m in _modules() if not (m == "newsclf.ui" or m.startswith("newsclf.ui."))
            and not m.endswith("__main__")]


def test_every_library_module_imports_without_streamlit():
    modules = _library_modules()
    assert {"newsclf.models.tfidf", "newsclf.jobs.supervisor", "newsclf.data.corpus", "newsclf.plots.explain",
            "newsclf.explain", "newsclf.compare"} <= set(modules)
    code = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "from newsclf.cli import build_parser; build_parser()\n"  # every command imports too
        "print(json.dumps({'streamlit': sorted(k for k in sys.modules if k == 'streamlit' or k.startswith('streamlit.')),"
        " 'loaded': [m for m in mods if m in sys.modules]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == modules
    assert report["streamlit"] == []


def _import_graph() -> dict[str, set[str]]:
    mods = _modules()

    def owner(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {owner(a.name) for a in node.names if a.name.startswith("newsclf")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if base.startswith("newsclf"):
                    deps |= {owner(f"{base}.{a.name}") for a in node.names}
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
                arg = node.args[0]
                text = arg.value if isinstance(arg, ast.Constant) else "".join(
                    v.value for v in getattr(arg, "values", []) if isinstance(v, ast.Constant))
                if isinstance(text, str) and text.startswith("newsclf"):
                    deps.add(owner(re.sub(r"\.+$", "", text)))
        deps.discard(name)
        deps.discard("")
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_even_through_lazy_or_importlib_imports():
    graph = _import_graph()
    assert graph["newsclf.cli"] >= {"newsclf.errors"}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
