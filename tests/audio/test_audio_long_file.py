"""A 3-hour recording is analysed in blocks with bounded memory."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import soundfile as sf
from audio_helpers import piano_like

HOURS = 3.0
RATE = 8000  # a cheap file to write: 3 h of 8 kHz 16-bit mono is 173 MB
RSS_LIMIT_MB = 1024


def _write_long_wav(path: Path) -> int:
    """Write 3 hours block by block (never the whole signal in memory); return its length."""
    block = piano_like(10.0, sr=RATE, seed=9)
    total = int(HOURS * 3600 * RATE)
    written = 0
    with sf.SoundFile(str(path), "w", RATE, 1, subtype="PCM_16") as fh:
        gain = 1.0
        while written < total:
            n = min(len(block), total - written)
            fh.write(gain * block[:n])
            written += n
            gain = 1.5 - gain  # alternate 1.0 and 0.5: not one block repeated bit for bit
    return written


def test_three_hour_file_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "three_hours.wav"
    n_samples = _write_long_wav(path)
    script = textwrap.dedent(
        """
        import json, resource, sys
        import numpy as np
        from companion.audio import log_spectrogram
        spec = log_spectrogram(sys.argv[1])
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"frames": len(spec), "bands": spec.shape[1],
                          "peak_mb": peak_kb / 1024, "mean": float(spec.mean()),
                          "finite": bool(np.isfinite(spec).all())}))
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    resampled = round(n_samples * 22050 / RATE)
    assert out["frames"] == math.ceil(resampled / 1102.5) == int(HOURS * 3600 * 20)
    assert out["bands"] == 92 and out["finite"] and out["mean"] > 0.01
    # the signal alone would be 950 MB as float32 at 22,050 Hz; blocks keep us far below
    assert out["peak_mb"] < RSS_LIMIT_MB, out
    print(f"3-hour file: peak RSS {out['peak_mb']:.0f} MB")
