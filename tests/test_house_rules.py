"""DESIGN.md's rules of the house that a machine can check."""

import ast
import re
from pathlib import Path

from conftest import REPO

PKG = REPO / "alignui"
SOURCES = sorted(PKG.rglob("*.py"))
# gradio_client (the small HTTP client the CLI hands commands to the app with) is not the web framework
GRADIO_IMPORT = re.compile(r"^\s*(import gradio|from gradio)(?!_client)", re.M)
HEAVY_IMPORT = re.compile(r"^\s*(import (gradio|duckdb)|from (gradio|duckdb))", re.M)


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def test_only_the_ui_imports_gradio():
    offenders = [rel(p) for p in SOURCES if GRADIO_IMPORT.search(p.read_text()) and "alignui/ui/" not in rel(p)]
    assert not offenders, f"gradio imported outside alignui/ui/: {offenders}"


def test_training_code_imports_neither_gradio_nor_duckdb():
    training = [p for p in SOURCES if "alignui/training/" in rel(p) and "alignui/training/app/" not in rel(p)]
    offenders = [rel(p) for p in training if HEAVY_IMPORT.search(p.read_text())]
    assert not offenders, f"training code must read snapshots, not the database or the UI: {offenders}"


def test_files_stay_small():
    big = {rel(p): n for p in SOURCES + [REPO / "app.py"] if (n := len(p.read_text().splitlines())) > 400}
    assert not big, f"files over 400 lines, split them by concern: {big}"


def test_functions_stay_short():
    long = []
    for p in SOURCES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno > 60:
                long.append(f"{rel(p)}:{node.name}")
    assert not long, f"functions over 60 lines: {long}"


def test_every_module_says_what_it_owns():
    missing = [rel(p) for p in SOURCES if p.stat().st_size and not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"


def test_ui_callbacks_hold_no_sql_torch_or_randomness():
    ui = [p for p in SOURCES if "alignui/ui/" in rel(p)]
    pattern = re.compile(r"^\s*(import (torch|duckdb|random)|from (torch|duckdb|random))|\bSELECT\b|\bINSERT\b", re.M)
    offenders = [rel(p) for p in ui if pattern.search(p.read_text())]
    assert not offenders, f"ui/ must stay thin (no SQL, torch or randomness): {offenders}"


ROOT_MODULES_MAX = 8  # config, errors, paths, context, runs, vocab, __init__, __main__


def _package_of(module: str) -> str:
    """alignui.serving.loading -> 'serving'; root modules are their own node ('root:config')."""
    parts = module.split(".")
    if len(parts) < 2:
        return "root:__init__"
    if (PKG / parts[1]).is_dir():
        return parts[1] if parts[1:3] != ["training", "app"] else "training.app"
    return f"root:{parts[1]}"


def _imports(path: Path) -> set[str]:
    """Every alignui module a source file imports (top-level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alignui"):
            found |= {f"{node.module}.{a.name}" if node.module == "alignui" else node.module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("alignui")}
    return found


def _module_of(path: Path) -> str:
    mod = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return mod.removesuffix(".__init__")


def test_the_root_holds_only_a_handful_of_modules():
    root = sorted(p.name for p in PKG.glob("*.py"))
    assert len(root) <= ROOT_MODULES_MAX, f"alignui/ root holds {len(root)} modules, group them into packages: {root}"


def test_every_package_says_what_it_owns():
    packages = [p for p in PKG.rglob("*") if p.is_dir() and p.name != "__pycache__"]
    missing = [rel(p) for p in packages if not (p / "__init__.py").exists()
               or not ast.get_docstring(ast.parse((p / "__init__.py").read_text()))]
    assert not missing, f"packages without a docstring in __init__.py: {missing}"


def test_library_code_never_imports_the_cli():
    outside = [p for p in SOURCES if "alignui/cli/" not in rel(p) and p.name != "__main__.py"]
    offenders = [rel(p) for p in outside if any(m.startswith("alignui.cli") for m in _imports(p))]
    assert not offenders, f"library code imports the CLI (move what it needs below both): {offenders}"


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for p in SOURCES:
        src = _package_of(_module_of(p))
        for module in _imports(p):
            dst = _package_of(module)
            if dst != src:
                graph.setdefault(src, set()).add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif len(path) < 12:
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    return sorted(set(cycles))


def test_no_import_cycle_between_packages():
    cycles = _cycles(_package_graph())
    assert not cycles, f"import cycles between packages: {cycles[:5]}"


def test_the_cycle_check_can_fail():
    """The walk finds a made-up cycle, and the real graph has the edges it should (so an empty answer means something)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a", "b -> c -> a -> b",
                                                                         "c -> a -> b -> c"]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []
    assert _package_of("alignui.training.app.runner") == "training.app"
    graph = _package_graph()
    assert "serving" in graph["training"] and "training" in graph["training.app"] and "db" in graph["annotation"]


def test_no_builder_reaches_into_gradios_context():
    """Tabs get their Blocks and Tab passed in (alignui.ui.common.Page), not found through gradio.context."""
    offenders = [rel(p) for p in SOURCES if re.search(r"gradio\.context|Context\.(root_block|block)\b", p.read_text())
                 and p.name != "common.py"]
    assert not offenders, f"reaches into gradio's Context: {offenders}"
