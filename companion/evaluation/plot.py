"""PNG plot of rank distributions (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def plot_rank_distributions(series: dict[str, Sequence[int]], path: Path, title: str = "Rank distributions") -> Path:
    """One histogram panel per series (log-scaled rank bins); writes ``path`` and returns it."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = [k for k, v in series.items() if len(v)]
    if not names:
        raise ValueError("nothing to plot")
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        r = np.asarray(series[name])
        top = max(2, int(r.max()))
        bins = np.unique(np.round(np.logspace(0, np.log10(top + 1), 25)).astype(int))
        ax.hist(r, bins=bins, color="#3b6ea8")
        ax.set_xscale("log")
        ax.set_xlabel("rank of the correct item")
        ax.set_ylabel("queries")
        mrr = float(np.mean(1.0 / r))
        ax.set_title(f"{name}\nMRR {mrr:.3f}, median {np.median(r):.0f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
