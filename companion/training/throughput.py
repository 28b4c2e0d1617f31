"""Training-throughput benchmark: pairs per second for forward + backward + step.

Why: the papers' network trains at ~35 pairs/s on two CPU threads; the recipe
in docs/benchmarks.md (``## Encoders``) is chosen from these measurements.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from companion.models.encoders import (
    AUDIO_SHAPE,
    SHEET_SHAPE,
    EncoderConfig,
    SnippetModel,
    SnippetModelConfig,
    count_parameters,
)
from companion.models.losses import cosine_hinge_loss


@dataclass
class ThroughputResult:
    name: str
    params: int
    batch_size: int
    threads: int
    channels_last: bool
    pairs_per_s: float
    infer_ms_per_snippet: float


def variant(width: int, convs_per_block: int = 2, blocks: int = 4, stem_stride: int = 1) -> SnippetModelConfig:
    return SnippetModelConfig(
        sheet=EncoderConfig(SHEET_SHAPE, width, blocks, convs_per_block, 32, stem_stride),
        audio=EncoderConfig(AUDIO_SHAPE, width, blocks, convs_per_block, 32, stem_stride),
    )


def measure(
    name: str,
    cfg: SnippetModelConfig,
    batch_size: int = 64,
    threads: int = 2,
    steps: int = 5,
    channels_last: bool = False,
) -> ThroughputResult:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SnippetModel(cfg)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    sheet = torch.randint(0, 256, (batch_size, *SHEET_SHAPE), dtype=torch.uint8)
    audio = torch.rand(batch_size, *AUDIO_SHAPE)

    def step() -> None:
        s = sheet.unsqueeze(1)
        a = audio.unsqueeze(1)
        if channels_last:
            s = s.contiguous(memory_format=torch.channels_last)
            a = a.contiguous(memory_format=torch.channels_last)
        zs, za = model(s, a)
        loss = cosine_hinge_loss(za, zs, 0.7)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    model.eval()
    with torch.inference_mode():
        one_s = sheet[:1].unsqueeze(1)
        one_a = audio[:1].unsqueeze(1)
        model(one_s, one_a)
        t1 = time.perf_counter()
        for _ in range(20):
            model.embed_audio(one_a)
        infer = (time.perf_counter() - t1) / 20 * 1000
    return ThroughputResult(name, count_parameters(model), batch_size, threads, channels_last,
                            steps * batch_size / dt, infer)


DEFAULT_VARIANTS: dict[str, SnippetModelConfig] = {
    "w24x2 (papers' widths)": variant(24, 2),
    "w16x2": variant(16, 2),
    "w16x1": variant(16, 1),
    "w12x1": variant(12, 1),
    "w8x1": variant(8, 1),
    "w24x1 stride-2 stem": variant(24, 1, stem_stride=2),
    "w16x1 stride-2 stem": variant(16, 1, stem_stride=2),
    "w16x2 stride-2 stem": variant(16, 2, stem_stride=2),
    "recipe: w16x1, sheet stem stride 2": SnippetModelConfig(
        sheet=EncoderConfig(SHEET_SHAPE, 16, 4, 1, 32, 2),
        audio=EncoderConfig(AUDIO_SHAPE, 16, 4, 1, 32, 1),
    ),
}
