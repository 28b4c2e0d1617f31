"""Passage encoder (Carvalho & Widmer, ISMIR 2023).

A passage (a system of sheet music, or the audio played for it) is cut into a
sequence of short snippets: sheet windows of ``sheet_shape`` taken along the
system strip, audio windows of 92 bins x 20 frames (1 s). One CNN per modality
embeds every snippet; a GRU (128 units) reads the sequence and its last state
goes through a linear layer to a 64-d L2-normalised passage embedding.

The snippet CNNs' convolutions do not depend on the input size, so they can be
initialised from a trained :class:`~companion.models.encoders.SnippetModel`
(whose audio pathway saw 42-frame excerpts) and then frozen or fine-tuned; the
pooling and head after them are the passage model's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from companion.models.encoders import (
    SHEET_SHAPE,
    ConvEncoder,
    EncoderConfig,
    SnippetModel,
    normalise_audio,
    normalise_sheet,
)

PASSAGE_AUDIO_SHAPE: tuple[int, int] = (92, 20)
"""One-second audio windows (20 frames at 20 fps)."""


@dataclass(frozen=True)
class PassageModelConfig:
    sheet: EncoderConfig = field(default_factory=lambda: EncoderConfig(input_shape=SHEET_SHAPE))
    audio: EncoderConfig = field(
        default_factory=lambda: EncoderConfig(input_shape=PASSAGE_AUDIO_SHAPE)
    )
    hidden: int = 128
    embed_dim: int = 64
    sheet_hop: int = 48
    """Hop (pixels at the downscaled 80-px strip height) between sheet windows of a passage:
    one window per second of music, as :func:`companion.sheets.cut_passage_snippets` cuts
    them (95 px at strip scale)."""
    audio_hop: int = 20
    """Hop (frames) between audio windows of a passage."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet.to_dict(),
            "audio": self.audio.to_dict(),
            "hidden": self.hidden,
            "embed_dim": self.embed_dim,
            "sheet_hop": self.sheet_hop,
            "audio_hop": self.audio_hop,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PassageModelConfig":
        return cls(
            sheet=EncoderConfig.from_dict(data.get("sheet", {"input_shape": SHEET_SHAPE})),
            audio=EncoderConfig.from_dict(data.get("audio", {"input_shape": PASSAGE_AUDIO_SHAPE})),
            hidden=int(data.get("hidden", 128)),
            embed_dim=int(data.get("embed_dim", 64)),
            sheet_hop=int(data.get("sheet_hop", 48)),
            audio_hop=int(data.get("audio_hop", 20)),
        )


class SequenceEncoder(nn.Module):
    """Snippet CNN -> GRU -> linear -> L2."""

    def __init__(self, cnn_cfg: EncoderConfig, hidden: int, embed_dim: int) -> None:
        super().__init__()
        self.cnn = ConvEncoder(cnn_cfg)
        self.gru = nn.GRU(self.cnn.out_channels, hidden, batch_first=True)
        self.head = nn.Linear(hidden, embed_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, H, W) snippet sequences (already normalised), lengths: (B,) valid steps."""
        b, t = x.shape[:2]
        feats = self.cnn.trunk(x.reshape(b * t, 1, *x.shape[2:])).reshape(b, t, -1)
        if lengths is None:
            _, h = self.gru(feats)
        else:
            packed = pack_padded_sequence(
                feats, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
            )
            _, h = self.gru(packed)
        return F.normalize(self.head(h[-1]), dim=-1)


class PassageModel(nn.Module):
    kind = "passage"

    def __init__(self, cfg: PassageModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PassageModelConfig()
        self.sheet = SequenceEncoder(self.cfg.sheet, self.cfg.hidden, self.cfg.embed_dim)
        self.audio = SequenceEncoder(self.cfg.audio, self.cfg.hidden, self.cfg.embed_dim)

    def embed_sheet(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 80, W) uint8/float sheet snippet sequences -> (B, 64)."""
        return self.sheet(normalise_sheet(x), lengths)

    def embed_audio(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 92, 20) spectrogram window sequences -> (B, 64)."""
        return self.audio(normalise_audio(x), lengths)

    def init_from_snippet_model(self, snippet: SnippetModel, freeze: bool = False) -> None:
        """Copy the snippet CNN trunks (same architecture required); optionally freeze them."""
        for mine, theirs in ((self.sheet.cnn, snippet.sheet), (self.audio.cnn, snippet.audio)):
            src = {k: v for k, v in theirs.state_dict().items() if k.startswith("features.")}
            missing = mine.load_state_dict(src, strict=False)
            if any(k.startswith("features.") for k in missing.missing_keys):
                raise ValueError("snippet CNN architecture differs from the passage CNN")
            if freeze:
                for p in mine.features.parameters():
                    p.requires_grad_(False)


def cut_windows(seq: torch.Tensor, window: int, hop: int) -> torch.Tensor:
    """Cut a (H, L) strip/spectrogram (time or x along the last axis) into (T, H, window).

    A sequence shorter than one window is right-padded with zeros.
    """
    h, length = seq.shape
    if length < window:
        seq = F.pad(seq, (0, window - length))
        length = window
    n = 1 + (length - window) // hop
    return seq.unfold(1, window, hop).permute(1, 0, 2)[:n].contiguous()
