"""Incremental passage embedding of the newest audio (why: the per-hop budget).

The passage encoder cuts the last few seconds into 1-s windows (hop 1 s),
runs a CNN on every window and a GRU over the sequence. Hops are 0.5 s, so a
window seen now is seen again two hops later at the same absolute position:
caching the CNN features by absolute end frame leaves one CNN window per hop
(plus a GRU over a handful of steps) instead of one per window. The result is
the same embedding as ``Embedder.embed_audio_passages`` on the same frames,
its CCA projection included (checked in the tests); encoders without the internals this needs fall back
to that call.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class PassageCache:
    """Embeds ``spec`` (the newest frames, ending at absolute frame ``end``) with cached windows."""

    def __init__(self, encoder, max_entries: int = 64) -> None:
        self.encoder = encoder
        model = getattr(encoder, "passage", None)
        audio = getattr(model, "audio", None)
        cfg = getattr(model, "cfg", None)
        self.ok = all(hasattr(audio, a) for a in ("cnn", "gru", "head")) and cfg is not None
        self.model = model
        self.window = int(getattr(getattr(cfg, "audio", None), "input_shape", (92, 20))[1]) if self.ok else 20
        self.hop = int(getattr(cfg, "audio_hop", 20)) if self.ok else 20
        self._feats: OrderedDict[int, object] = OrderedDict()
        self.max_entries = max_entries

    def reset(self) -> None:
        self._feats.clear()

    def embed(self, spec: np.ndarray, end: int) -> np.ndarray:
        """``spec``: (frames, 92), the last ``len(spec)`` frames up to absolute frame ``end``."""
        if not self.ok or len(spec) < self.window:
            return np.asarray(self.encoder.embed_audio_passages([spec]), np.float32)[0]
        import torch
        from torch.nn import functional as F

        from companion.models.encoders import normalise_audio

        n = 1 + (len(spec) - self.window) // self.hop
        # windows as cut_windows cuts them: from the start of spec, hop apart
        starts = [i * self.hop for i in range(n)]
        ends = [end - len(spec) + s + self.window for s in starts]
        audio = self.model.audio
        lock = getattr(self.encoder, "_lock", None)
        with (lock if lock is not None else _Null()), torch.inference_mode():
            missing = [i for i, e in enumerate(ends) if e not in self._feats]
            if missing:
                x = np.stack([spec[starts[i] : starts[i] + self.window].T for i in missing]).astype(np.float32)
                f = audio.cnn.trunk(normalise_audio(torch.from_numpy(x)).unsqueeze(1))
                for j, i in enumerate(missing):
                    self._feats[ends[i]] = f[j]
            feats = torch.stack([self._feats[e] for e in ends]).unsqueeze(0)
            _, h = audio.gru(feats)
            z = F.normalize(audio.head(h[-1]), dim=-1)[0].numpy().astype(np.float32)
        while len(self._feats) > self.max_entries:
            self._feats.popitem(last=False)
        # the encoder's own projection (a CCA fitted after training), as embed_audio_passages applies it:
        # without it the audio lands in another space than the library's passages (chance-level matches)
        project = getattr(self.encoder, "project_audio_passages", None)
        return np.asarray(project(z[None, :]), np.float32)[0] if callable(project) else z


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
