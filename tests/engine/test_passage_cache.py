"""The incremental passage embedding equals the Embedder's on the same frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from companion.engine.passage_cache import PassageCache
from companion.models.checkpoint import save_checkpoint
from companion.models.embedder import Embedder
from companion.models.encoders import SnippetModel
from companion.models.passage import PassageModel


@pytest.mark.parametrize("cca", [False, True], ids=["raw", "cca"])
def test_cached_windows_give_the_embedders_passage_embedding(tmp_path: Path, cca: bool) -> None:
    torch.manual_seed(0)
    save_checkpoint(SnippetModel(), tmp_path / "snippet.pt")
    extra = {}
    if cca:  # a passage model with its CCA projection (companion cca): the cache must apply it too
        g = torch.Generator().manual_seed(1)
        extra = {"cca": {side + "_" + k: (torch.randn(64, generator=g) * 0.1 if k == "mean" else
                                          torch.randn(64, 64, generator=g))
                         for side in ("x", "y") for k in ("mean", "proj")}}
    save_checkpoint(PassageModel(), tmp_path / "passage.pt", extra=extra)
    emb = Embedder(tmp_path, threads=1)
    assert (emb.passage_cca is not None) == cca
    cache = PassageCache(emb)
    assert cache.ok
    rng = np.random.default_rng(0)
    stream = np.abs(rng.standard_normal((200, 92))).astype(np.float32)
    for end in range(60, 200, 10):  # one hop of 10 frames at a time, windows reused every 2 hops
        spec = stream[end - 60 : end]
        got = cache.embed(spec, end)
        want = emb.embed_audio_passages([spec])[0]
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert len(cache._feats) > 3  # features were cached, not recomputed from scratch


def test_encoders_without_internals_fall_back() -> None:
    class Plain:
        passage = object()

        def embed_audio_passages(self, specs):
            return np.ones((len(specs), 64), np.float32)

    cache = PassageCache(Plain())
    assert not cache.ok
    assert cache.embed(np.zeros((60, 92), np.float32), 60).shape == (64,)
