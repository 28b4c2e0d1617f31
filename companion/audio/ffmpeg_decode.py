"""Decoding through the ``ffmpeg`` command line, for what libsndfile does badly.

Used by :mod:`companion.audio.io` for MP3 (libsndfile stops early on VBR
files without a Xing header) and for formats libsndfile cannot open (m4a,
aac, wma, ...), when ``ffmpeg`` and ``ffprobe`` are on the PATH. ffmpeg
decodes at the file's own rate and channel count to raw float32; downmixing
and resampling stay in our code so every backend goes through the same steps.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from companion.errors import AudioError

PROBE_TIMEOUT_S = 30.0


def available() -> bool:
    """True when both ``ffmpeg`` and ``ffprobe`` can be run."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


@dataclass(frozen=True)
class Probe:
    format: str
    sample_rate: int
    channels: int
    frames: int
    """Estimated from the duration ffprobe reports (0 when unknown)."""


def probe(path: Path) -> Probe:
    """Rate, channels and approximate length of the first audio stream."""
    cmd = [
        "ffprobe", "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=codec_name,sample_rate,channels,duration:format=duration",
        "-of", "json", str(path),
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"{path}: timed out reading the file's header") from exc
    except OSError as exc:
        raise AudioError(f"{path}: could not run ffprobe ({exc})") from exc
    detail = res.stderr.decode("utf-8", "replace").strip().splitlines()
    try:
        data = json.loads(res.stdout or b"{}")
    except ValueError:
        data = {}
    streams = data.get("streams") or []
    if res.returncode != 0 or not streams:
        why = detail[-1] if detail else "no audio stream"
        raise AudioError(f"{path} is not a readable audio file: {why}")
    stream = streams[0]
    try:
        rate = int(stream["sample_rate"])
        channels = int(stream["channels"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: audio stream without sample rate or channels") from exc
    if rate <= 0 or channels <= 0:
        raise AudioError(f"{path}: invalid audio stream ({rate} Hz, {channels} channels)")
    duration = stream.get("duration") or (data.get("format") or {}).get("duration")
    try:
        frames = int(round(float(duration) * rate)) if duration else 0
    except ValueError:
        frames = 0
    return Probe(str(stream.get("codec_name", "unknown")).upper(), rate, channels, frames)


def iter_blocks(
    path: Path, channels: int, sample_rate: int, block_frames: int
) -> Iterator[np.ndarray]:
    """``(n, channels)`` float32 blocks at the file's own rate, as ffmpeg decodes them."""
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(channels), "-ar", str(sample_rate),
        "pipe:1",
    ]
    block_bytes = block_frames * channels * 4
    with tempfile.TemporaryFile() as errfile:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile)
        except OSError as exc:
            raise AudioError(f"{path}: could not run ffmpeg ({exc})") from exc
        assert proc.stdout is not None
        try:
            pending = b""
            while True:
                chunk = proc.stdout.read(block_bytes)
                if not chunk:
                    break
                chunk = pending + chunk
                usable = len(chunk) - len(chunk) % (channels * 4)
                pending = chunk[usable:]
                if usable:
                    yield np.frombuffer(chunk[:usable], dtype="<f4").reshape(-1, channels)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # the consumer stopped early
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if code != 0:
            errfile.seek(0)
            lines = errfile.read().decode("utf-8", "replace").strip().splitlines()
            why = lines[-1] if lines else f"ffmpeg exit status {code}"
            raise AudioError(f"{path} is corrupt or truncated: decoding failed ({why})")
