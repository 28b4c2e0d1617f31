"""Run an indexing pass with the test doubles (the kill-and-resume test runs this in a subprocess).

usage: python index_script.py LIBRARY FOLDER MODEL_VERSION WORKERS [KILL_AT_STEP]

With KILL_AT_STEP = n the process SIGKILLs itself just before its n-th write
step (an SQL statement of the catalog or an index file write), so kills land
exactly between writes, where a time-based kill rarely does (rendering and
embedding take most of the time). It prints the number of write steps taken.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import ProjectionFrontEnd, hash_embedder_v1, hash_embedder_v2  # noqa: E402

from companion.library import IndexOptions, Indexer, vectors  # noqa: E402

steps = 0
kill_at = 0


def step(*_: object) -> None:
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


_atomic_write = vectors._atomic_write


def counted_write(path: Path, data: bytes) -> None:
    step()
    _atomic_write(path, data)
    step()


vectors._atomic_write = counted_write

if __name__ == "__main__":
    lib, folder, model, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    kill_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    factory = {"test-1": hash_embedder_v1, "test-2": hash_embedder_v2}[model]
    # publish after every file: the most moments at which a kill can hit a publish
    options = IndexOptions(workers=workers, publish_every_s=0.0)
    with Indexer(Path(lib), ProjectionFrontEnd(), factory, options) as indexer:
        indexer.catalog.conn.set_trace_callback(step)
        report = indexer.run([Path(folder)])
    print(json.dumps({"added": report.added, "errors": report.errors, "generation": report.generation,
                      "steps": steps}))
