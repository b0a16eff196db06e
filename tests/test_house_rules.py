"""DESIGN.md's rules of the house that a machine can check."""

import ast
import re
from pathlib import Path

from conftest import REPO

PKG = REPO / "alignui"
SOURCES = sorted(PKG.rglob("*.py"))
GRADIO_IMPORT = re.compile(r"^\s*(import gradio|from gradio)", re.M)
HEAVY_IMPORT = re.compile(r"^\s*(import (gradio|duckdb)|from (gradio|duckdb))", re.M)


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def test_only_the_ui_imports_gradio():
    offenders = [rel(p) for p in SOURCES if GRADIO_IMPORT.search(p.read_text()) and "alignui/ui/" not in rel(p)]
    assert not offenders, f"gradio imported outside alignui/ui/: {offenders}"


def test_training_code_imports_neither_gradio_nor_duckdb():
    training = [p for p in SOURCES if "alignui/training/" in rel(p) and "runner" not in p.name]
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
