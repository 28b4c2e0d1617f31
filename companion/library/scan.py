"""Find PDFs under folders and fingerprint them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator


def find_pdfs(root: Path) -> Iterator[Path]:
    """Every ``*.pdf`` below ``root`` (any case), sorted, skipping hidden folders and files.

    Symbolic links to folders are not followed (no cycles); links to files are.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() == ".pdf":
            yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(".pdf") and not name.startswith("."):
                yield Path(dirpath) / name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
