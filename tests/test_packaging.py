"""Packaging: a wheel built from this checkout carries the models and the demo.

Why a real build: ``pip install .`` must give a working ``companion demo`` without
the repository, which only holds if ``setup.py``'s build step copies ``models/``
and ``resources/`` into the package. The PyInstaller desktop build is far too
slow for the default suite; it is checked by ``packaging/smoke_test.sh``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "companion", "models", "resources")


def _setuptools_version() -> tuple[int, ...]:
    if importlib.util.find_spec("setuptools") is None:
        return (0,)
    import setuptools

    return tuple(int(x) for x in setuptools.__version__.split(".")[:2] if x.isdigit())


# The build runs without isolation (no downloads), so it needs the environment's
# setuptools to read pyproject's SPDX licence string (setuptools >= 77, in the test extra).
@pytest.mark.skipif(_setuptools_version() < (77,), reason="needs setuptools >= 77 in this environment (the test extra)")
def test_wheel_carries_models_and_resources(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:  # a copy, so the build writes nothing into the checkout
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "_bundled"))
        else:
            shutil.copy2(path, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("companion-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"companion/_bundled/{p.relative_to(REPO).as_posix()}"
                for folder in ("models", "resources") for p in (REPO / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert expected, "the checkout has no models/ or resources/"
    assert expected <= names, sorted(expected - names)[:10]
    assert "companion/_bundled/resources/demo/demo.json" in names
    assert "companion/config.py" in names
