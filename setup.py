"""Build hook: ship the top-level ``models/`` and ``resources/`` folders inside the package.

Why: the repository keeps them at its top level (the design card), but a wheel
(``pip install .``) only carries what is inside the package. This copies them to
``companion/_bundled/`` in the build, where :func:`companion.config.package_root`
looks for them when companion is not run from a source tree. Everything else is
configured in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_FOLDERS = ("models", "resources")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "*.tmp", "*.part")


class build_py_with_data(build_py):
    """``build_py`` that also copies the data folders into ``companion/_bundled``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install runs from the source tree, which has the folders
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "companion" / "_bundled"
        for name in DATA_FOLDERS:
            source = root / name
            if not source.is_dir():
                raise SystemExit(f"setup.py: the {name}/ folder is missing from {root}; cannot build a complete package")
            dest = target / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(source, dest, ignore=IGNORED)


setup(cmdclass={"build_py": build_py_with_data})
