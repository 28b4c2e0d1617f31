"""Snippet encoders: lean VGG-style CNN pathways (Dorfer et al., TISMIR 2018).

Why configurable: the papers' pathways (24-48-96 channels, two convolutions per
block, 662k parameters for both) train at only ~35 pairs/s on two CPU threads.
``EncoderConfig.width`` scales all channel counts, ``convs_per_block`` drops
the second convolution of each block, and ``pool`` chooses how the last feature
map becomes a vector (averaged, rows kept, or flattened: the shipped model
flattens, because averaging lost pitch and order and the network underfitted);
docs/benchmarks.md (``## Encoders``) lists the measured trade-offs.

Both pathways end in a linear layer to ``embed_dim`` and L2 normalisation, so
the cosine similarity of two embeddings is their dot product.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

SHEET_SHAPE: tuple[int, int] = (80, 100)
"""(height, width) of a downscaled sheet snippet (160x200 px at strip scale)."""
AUDIO_SHAPE: tuple[int, int] = (92, 42)
"""(bins, frames) of an audio excerpt: 92 log bands, 42 frames (about 2 s at 20 fps)."""


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of one CNN pathway; stored verbatim in checkpoints."""

    input_shape: tuple[int, int] = SHEET_SHAPE
    width: int = 24
    """Channels of the first block; later blocks use 2x and 4x (as in the papers at 24)."""
    blocks: int = 4
    """Number of conv blocks, each followed by 2x2 max pooling (except the last)."""
    convs_per_block: int = 2
    embed_dim: int = 32
    stem_stride: int = 1
    """Stride of the very first convolution; 2 quarters the cost of the full-resolution block."""
    batch_norm: bool = True
    embed_bn: bool = True
    """BatchNorm on the embedding before L2 normalisation: centres the batch, which keeps the
    hinge loss away from the collapsed start where every cosine similarity is ~1."""
    dropout: float = 0.0
    pool: str = "avg"
    """How the last feature map becomes one vector. "avg": global average (any input size; the
    first checkpoints). "height": average over width (time / x) only, keeping the rows, so the
    embedding knows absolute pitch and staff position (any width). "flatten": keep every cell,
    so it also knows the order of events (fixed input shape)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EncoderConfig":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "input_shape" in kwargs:
            kwargs["input_shape"] = tuple(int(v) for v in kwargs["input_shape"])
        return cls(**kwargs)


POOLS: tuple[str, ...] = ("avg", "height", "flatten")


def _channels(cfg: EncoderConfig) -> list[int]:
    mult = [1, 2, 4, 4, 4, 4]
    return [cfg.width * mult[min(i, len(mult) - 1)] for i in range(cfg.blocks)]


def feature_map_shape(cfg: EncoderConfig) -> tuple[int, int]:
    """(rows, cols) of the last feature map for an input of ``cfg.input_shape``."""
    h, w = cfg.input_shape
    h, w = (h - 1) // cfg.stem_stride + 1, (w - 1) // cfg.stem_stride + 1
    for _ in range(cfg.blocks - 1):
        h, w = h // 2, w // 2
    return h, w


class ConvEncoder(nn.Module):
    """A VGG-style pathway: [conv3x3-BN-ELU] x k, max-pool, ..., pooling (``cfg.pool``), linear, L2."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        in_ch = 1
        chans = _channels(cfg)
        for b, ch in enumerate(chans):
            for c in range(cfg.convs_per_block):
                stride = cfg.stem_stride if (b == 0 and c == 0) else 1
                layers.append(nn.Conv2d(in_ch, ch, 3, stride=stride, padding=1, bias=not cfg.batch_norm))
                if cfg.batch_norm:
                    layers.append(nn.BatchNorm2d(ch))
                layers.append(nn.ELU(inplace=True))
                in_ch = ch
            if b < len(chans) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        if cfg.pool not in POOLS:
            raise ValueError(f"unknown pool {cfg.pool!r}; expected one of {', '.join(POOLS)}")
        if cfg.pool != "avg":
            rows, cols = feature_map_shape(cfg)
            in_ch = in_ch * rows * (cols if cfg.pool == "flatten" else 1)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.head = nn.Linear(in_ch, cfg.embed_dim)
        self.head_bn = nn.BatchNorm1d(cfg.embed_dim) if cfg.embed_bn else nn.Identity()
        self.out_channels = in_ch

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the embedding layer, shape (N, C)."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        h = self.features(x)
        if self.cfg.pool == "height":
            return h.mean(dim=3).flatten(1)
        if self.cfg.pool == "flatten":
            return h.flatten(1)
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head_bn(self.head(self.dropout(self.trunk(x)))), dim=-1)


@dataclass(frozen=True)
class SnippetModelConfig:
    """Both pathways of the snippet model."""

    sheet: EncoderConfig = field(default_factory=lambda: EncoderConfig(input_shape=SHEET_SHAPE))
    audio: EncoderConfig = field(default_factory=lambda: EncoderConfig(input_shape=AUDIO_SHAPE))

    def to_dict(self) -> dict[str, Any]:
        return {"sheet": self.sheet.to_dict(), "audio": self.audio.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SnippetModelConfig":
        return cls(
            sheet=EncoderConfig.from_dict(data.get("sheet", {"input_shape": SHEET_SHAPE})),
            audio=EncoderConfig.from_dict(data.get("audio", {"input_shape": AUDIO_SHAPE})),
        )


def normalise_sheet(x: torch.Tensor) -> torch.Tensor:
    """uint8 (0 = black ink, 255 = paper) or float [0, 1] -> float32 ink map in [0, 1].

    Inverting makes empty paper zero, so zero padding looks like blank paper.
    """
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    else:
        x = x.float()
    return 1.0 - x


def normalise_audio(x: torch.Tensor) -> torch.Tensor:
    """Log-filtered spectrogram frames (log10(1 + x)), (N, bins, frames) -> float32."""
    return x.float()


class SnippetModel(nn.Module):
    """Sheet and audio pathways into one 32-d space (Dorfer et al. 2018)."""

    kind = "snippet"

    def __init__(self, cfg: SnippetModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or SnippetModelConfig()
        self.sheet = ConvEncoder(self.cfg.sheet)
        self.audio = ConvEncoder(self.cfg.audio)

    @property
    def embed_dim(self) -> int:
        return int(self.cfg.sheet.embed_dim)

    def embed_sheet(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 80, 100) uint8 pages or float [0, 1] -> (N, D) unit vectors."""
        return self.sheet(normalise_sheet(x))

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 92, 42) spectrogram excerpts -> (N, D) unit vectors."""
        return self.audio(normalise_audio(x))

    def forward(self, sheet: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_sheet(sheet), self.embed_audio(audio)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
