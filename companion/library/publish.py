"""Publishing a generation: build faiss indices from the catalog and make them current.

Why one function for the indexer, ``library remove`` and the benchmark: the
order of steps is what makes publishing crash-safe (files of the new generation
first, each atomically; then one transaction that deletes retired documents,
marks the rest visible and bumps the generation; then cleanup of older files).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from companion.library import vectors
from companion.library.catalog import Catalog


def publish(catalog: Catalog, directory: Path, model_version: str, force: bool = False,
            exact_max: int = vectors.EXACT_MAX_VECTORS) -> bool:
    """Make everything committed in the catalog searchable; False if nothing to do (or not yet possible)."""
    with catalog.transaction():
        if not catalog.can_publish(model_version):
            return False  # visible documents still wait for the new model's embeddings
        if (not force and catalog.generation > 0 and catalog.model_version == model_version
                and not catalog.pending_changes()):
            return False
        generation = catalog.generation + 1
        extra: dict[str, str] = {}
        for name in ("snippets", "passages"):
            vecs, ids = catalog.publishable_embeddings(model_version, name)
            vindex = vectors.build_index(vecs, ids, exact_max=exact_max)
            vectors.save_index(Path(directory), name, generation, vindex)
            extra[f"{name}_index"] = json.dumps(vindex.info)
        extra["published_at"] = str(time.time())
        catalog.commit_generation(generation, model_version, extra)
    # keep the previous generation for readers that are loading it right now
    vectors.clean_generations(Path(directory), keep={generation, generation - 1})
    return True
