"""The core must never import Qt: this keeps it testable headless and reusable.

Two checks: a static one over every module's import statements, and a dynamic
one that imports every core module in a fresh interpreter and looks for Qt in
``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import companion

PACKAGE_DIR = Path(companion.__file__).resolve().parent
FORBIDDEN = ("PySide6", "pyqtgraph", "PyQt5", "PyQt6", "shiboken6")
GUI_DIR = PACKAGE_DIR / "gui"


def core_modules() -> list[Path]:
    return [
        p for p in PACKAGE_DIR.rglob("*.py") if GUI_DIR not in p.parents and "__pycache__" not in p.parts
    ]


def forbidden_imports(source: str) -> list[str]:
    """Names of forbidden top-level packages imported anywhere in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(name)
    return found


def test_checker_detects_violations() -> None:
    assert forbidden_imports("import PySide6.QtCore") == ["PySide6.QtCore"]
    assert forbidden_imports("def f():\n    from pyqtgraph import PlotWidget\n") == ["pyqtgraph"]
    assert forbidden_imports("import numpy\nfrom companion.gui import app") == []


def test_core_sources_do_not_import_qt() -> None:
    offenders = {}
    for path in core_modules():
        bad = forbidden_imports(path.read_text(encoding="utf-8"))
        if bad:
            offenders[str(path.relative_to(PACKAGE_DIR))] = bad
    assert not offenders, f"core modules import Qt: {offenders}"


def test_importing_core_loads_no_qt() -> None:
    names = []
    for path in core_modules():
        rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    code = (
        "import importlib, json, sys\n"
        f"for n in {names!r}:\n"
        "    importlib.import_module(n)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
