"""FluidSynth rendering with a choice of piano soundfonts.

Why the CLI: libfluidsynth's Python bindings are optional and partitura-style
wrappers download soundfonts; the ``fluidsynth`` program is installed with the
system and renders a MIDI file faster than real time.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from companion.errors import DataError

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"), Path("/usr/share/soundfonts"))
DEFAULT_SOUNDFONTS = ("FluidR3_GM.sf2", "MuseScore_General.sf3", "TimGM6mb.sf2")
DEFAULT_HELD_OUT = "TimGM6mb.sf2"


def find_soundfont(name: str) -> Path:
    """A soundfont by file name (searched in the system folders) or by path."""
    p = Path(name).expanduser()
    if p.is_file():
        return p
    for d in SOUNDFONT_DIRS:
        if (d / name).is_file():
            return d / name
    raise DataError(f"soundfont {name!r} not found (looked in {', '.join(map(str, SOUNDFONT_DIRS))})")


def available_soundfonts(names: tuple[str, ...] | list[str]) -> list[Path]:
    out = []
    for n in names:
        try:
            out.append(find_soundfont(n))
        except DataError:
            continue
    return out


def render(midi: Path, soundfont: Path, out_wav: Path, sample_rate: int = 22050,
           reverb: bool = False, gain: float = 0.5, timeout_s: float = 600.0) -> np.ndarray:
    """Render ``midi`` with ``soundfont``; returns mono float32 at ``sample_rate``."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise DataError("fluidsynth is not installed (Debian: apt-get install fluidsynth)")
    cmd = [exe, "-ni", "-q", "-g", f"{gain:.2f}", "-r", str(sample_rate), "-R", "1" if reverb else "0",
           "-C", "0", "-T", "wav", "-F", str(out_wav), str(soundfont), str(midi)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, text=True)
    except subprocess.TimeoutExpired as exc:
        raise DataError(f"fluidsynth took longer than {timeout_s:.0f} s") from exc
    if proc.returncode != 0 or not out_wav.exists():
        raise DataError(f"fluidsynth failed: {proc.stderr.strip()[-300:]}")
    audio, sr = sf.read(str(out_wav), dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise DataError(f"fluidsynth wrote {sr} Hz instead of {sample_rate} Hz")
    return audio.mean(axis=1)


_SYNTHS: dict[str, tuple[object, int]] = {}


def _synth_for(soundfont: Path, sample_rate: int):
    """A loaded synthesiser per soundfont, kept for the life of the worker process
    (MuseScore_General.sf3 takes ~20 s to decompress; loading it per piece would
    dominate the build)."""
    import fluidsynth

    key = f"{soundfont}@{sample_rate}"
    if key not in _SYNTHS:
        synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.5)
        synth.setting("synth.reverb.active", 0)
        synth.setting("synth.chorus.active", 0)
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            raise DataError(f"fluidsynth could not load soundfont {soundfont}")
        synth.program_select(0, sfid, 0, 0)
        _SYNTHS[key] = (synth, sfid)
    return _SYNTHS[key][0]


def render_performance(perf, soundfont: Path, sample_rate: int = 22050, midi_path: Path | None = None,
                       wav_path: Path | None = None) -> np.ndarray:
    """Mono float32 audio of a :class:`~companion.data.performance.Performance`.

    Uses libfluidsynth in-process when pyfluidsynth is installed (soundfont loaded
    once per worker), else the ``fluidsynth`` program on ``midi_path``.
    """
    try:
        import fluidsynth  # noqa: F401
    except ImportError:
        if midi_path is None or wav_path is None:
            raise DataError("without pyfluidsynth, rendering needs a MIDI and a WAV path")
        return render(midi_path, soundfont, wav_path, sample_rate)
    synth = _synth_for(soundfont, sample_rate)
    events: list[tuple[int, int, int, int]] = []  # (sample, order, kind, value...)
    for n in perf.notes:
        events.append((int(n.onset * sample_rate), 2, n.pitch, n.velocity))
        events.append((int(n.offset * sample_rate), 0, n.pitch, 0))
    for t, value in perf.pedal:
        events.append((int(t * sample_rate), 1, -1, value))
    events.sort()
    total = int(perf.duration * sample_rate)
    chunks = []
    now = 0
    for sample, order, pitch, value in events:
        if sample > now:
            chunks.append(synth.get_samples(sample - now))
            now = sample
        if order == 2:
            synth.noteon(0, pitch, value)
        elif order == 0:
            synth.noteoff(0, pitch)
        else:
            synth.cc(0, 64, value)
    if total > now:
        chunks.append(synth.get_samples(total - now))
    # Silence the synth for the next piece.
    synth.cc(0, 64, 0)
    for p in range(128):
        synth.noteoff(0, p)
    synth.get_samples(sample_rate)
    stereo = np.concatenate(chunks).astype(np.float32).reshape(-1, 2) / 32768.0
    return stereo.mean(axis=1)
