"""Reading audio files: mono float32 at the analysis rate, whole or in blocks.

Use::

    from companion.audio import load_audio, iter_audio_blocks, audio_info, is_silent

    signal = load_audio("take1.mp3")               # mono float32 at 22,050 Hz
    for block in iter_audio_blocks("concert.flac"):  # 60 s blocks, bounded memory
        ...
    if is_silent(signal):
        ...  # tell the user the recording is silent (the file itself is fine)

Decoding: libsndfile (through ``soundfile``; its wheel bundles libsndfile
1.2 with FLAC, Ogg Vorbis/Opus and MP3) reads wav, flac, ogg and mp3 plus the
other formats libsndfile knows (aiff, au, caf, w64, ...). MP3 is decoded by
ffmpeg when it is on the PATH, because libsndfile stops early on VBR MP3s
without a Xing header (measured: 1.07 s of a 7.3 s file, silently); ffmpeg
also opens what libsndfile cannot (m4a/aac, wma, FLAC in Ogg, ...). Without
ffmpeg, MP3 falls back to libsndfile and m4a & co. get a message asking for
ffmpeg or a conversion.

Channels are averaged to mono; any rate is resampled to the analysis rate with
soxr (HQ), block by block with ``soxr.ResampleStream``, which gives exactly
the samples of one ``soxr.resample`` call on the whole file.

Everything that can go wrong with a file (missing, empty, not audio,
truncated, unsupported) raises :class:`companion.errors.AudioError` with a
message for the user. Truncation is caught where the format allows: a WAV
data chunk shorter than its header says, an Ogg stream without its
end-of-stream page, FLAC/MP3 decoding errors, and fewer samples decoded than
the header declares (by more than 0.5 s or 2 %, since MP3 lengths are only
approximate: a few percent missing at the end of an MP3 goes unnoticed). A silent file is *not* an error: it loads normally and
:func:`is_silent` tells the caller, who knows what to say about it.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from companion.audio import ffmpeg_decode
from companion.audio.processors import StreamResampler, to_mono
from companion.errors import AudioError

log = logging.getLogger(__name__)

ANALYSIS_RATE = 22050
LIBSNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
     ".au", ".snd", ".caf", ".w64", ".rf64"}
)
FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka", ".ac3"})
SILENCE_DBFS = -60.0
"""Default threshold of :func:`is_silent`: RMS level in dB relative to full scale."""
_TRUNCATION_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, before decoding it."""

    path: Path
    format: str
    """Container/codec as the decoder names it, e.g. ``WAV``, ``FLAC``, ``MP3``."""
    sample_rate: int
    channels: int
    frames: int
    """Samples per channel the header declares (an estimate for some MP3s; 0 if unknown)."""
    backend: str
    """``libsndfile`` or ``ffmpeg``."""

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"not a file: {path}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}")
    if not os.access(path, os.R_OK):
        raise AudioError(f"no permission to read {path}")


def _unreadable(path: Path, detail: str) -> AudioError:
    ext = path.suffix.lower()
    if ext in FFMPEG_EXTENSIONS and not ffmpeg_decode.available():
        return AudioError(
            f"{path}: {ext[1:]} files need ffmpeg, which was not found on the PATH; "
            "install ffmpeg or convert the file to wav, flac, ogg or mp3"
        )
    if ext in LIBSNDFILE_EXTENSIONS or ext in FFMPEG_EXTENSIONS:
        return AudioError(
            f"{path} is not a readable {ext[1:]} file: it is corrupt, truncated or not audio "
            f"({detail})"
        )
    return AudioError(
        f"{path}: unsupported audio format {ext or '(no extension)'}; "
        "use wav, flac, ogg or mp3"
    )


def _sndfile_info(path: Path) -> sf._SoundFileInfo | None:
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):  # not recognised / malformed
        return None


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Format, rate, channels and declared length of a file, without decoding it.

    libsndfile is asked first; ffmpeg (when installed) takes MP3s and whatever
    libsndfile cannot open (m4a, aac, FLAC-in-Ogg, ...).
    """
    path = Path(path)
    _check_path(path)
    info = _sndfile_info(path)
    if ffmpeg_decode.available() and (info is None or info.format == "MP3"):
        try:
            probed = ffmpeg_decode.probe(path)
        except AudioError:
            if info is None:
                raise _unreadable(path, "neither libsndfile nor ffmpeg can decode it") from None
        else:
            return AudioInfo(path, probed.format, probed.sample_rate, probed.channels,
                             probed.frames, "ffmpeg")
    if info is None:
        raise _unreadable(path, "format not recognised")
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(f"{path}: invalid header ({info.samplerate} Hz, {info.channels} channels)")
    return AudioInfo(path, info.format, int(info.samplerate), int(info.channels),
                     int(info.frames), "libsndfile")


def _wav_truncation(path: Path) -> tuple[int, int] | None:
    """(declared, present) data bytes of a RIFF/WAVE file whose data chunk is cut short.

    libsndfile silently shortens such files; a recording cut off mid-write is
    worth telling the user about. Placeholder sizes (0, 0xFFFFFFFF) that
    streaming writers leave are not counted as truncation.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                if csize in (0, 0xFFFFFFFF):
                    return None
                present = size - (pos + 8)
                return (csize, present) if present < csize else None
            pos += 8 + csize + (csize & 1)
    return None


def _ogg_truncated(path: Path) -> bool:
    """True when an Ogg file's last page is not flagged end-of-stream.

    Ogg headers do not state the length; libsndfile takes it from the last
    page, so a cut-off file just looks shorter. Every complete Ogg stream ends
    with a page whose header-type byte has the EOS bit (0x04) set.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    pos = tail.rfind(b"OggS")
    if pos < 0 or pos + 6 > len(tail):
        return True
    return not (tail[pos + 5] & 0x04)


def _sndfile_blocks(path: Path, info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    if info.format == "OGG" and _ogg_truncated(path):
        raise AudioError(
            f"{path} is truncated: the Ogg stream stops after {_seconds(info.duration)} "
            "without its end-of-stream mark"
        )
    if info.format in ("WAV", "WAVEX"):
        cut = _wav_truncation(path)
        if cut is not None:
            declared, present = cut
            if present <= 0:
                raise AudioError(f"{path} is truncated: it has a header but no audio data")
            frac = present / declared
            raise AudioError(
                f"{path} is truncated: its header promises {_seconds(info.duration / frac)} of "
                f"audio but only {_seconds(info.duration)} are in the file"
            )
    try:
        with sf.SoundFile(str(path)) as fh:
            while True:
                block = fh.read(block_frames, dtype="float32", always_2d=True)
                if len(block) == 0:
                    return
                yield block
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path} is corrupt or truncated: decoding failed ({exc})") from exc


def iter_audio_blocks(
    path: str | os.PathLike[str],
    sample_rate: int = ANALYSIS_RATE,
    block_seconds: float = 60.0,
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sample_rate``, about ``block_seconds`` each.

    Memory stays bounded by the block size whatever the file's length, so a
    3-hour recording can be analysed on a small machine. Concatenated, the
    blocks equal :func:`load_audio`. Raises :class:`AudioError` for files that
    cannot be used, including files that turn out truncated while decoding.
    """
    path = Path(path)
    info = audio_info(path)
    if info.sample_rate < 2 * 6000:
        log.warning(
            "%s is sampled at %d Hz: frequencies above %.0f Hz are missing from it",
            path, info.sample_rate, info.sample_rate / 2,
        )
    block_frames = max(1024, int(block_seconds * info.sample_rate))
    if info.backend == "ffmpeg":
        blocks = ffmpeg_decode.iter_blocks(path, info.channels, info.sample_rate, block_frames)
    else:
        blocks = _sndfile_blocks(path, info, block_frames)
    resampler = StreamResampler(info.sample_rate, sample_rate)
    decoded = 0
    for block in blocks:
        decoded += len(block)
        out = resampler.process(to_mono(block))
        if len(out):
            yield out
    if decoded == 0:
        raise AudioError(f"{path} contains no audio (0 samples); it may be truncated")
    tolerance = max(_TRUNCATION_TOLERANCE_S * info.sample_rate, 0.02 * info.frames)
    if info.frames and decoded < info.frames - tolerance:
        raise AudioError(
            f"{path} is truncated or corrupt: decoded {_seconds(decoded / info.sample_rate)} "
            f"of the {_seconds(info.duration)} its header declares"
        )
    out = resampler.flush()
    if len(out):
        yield out


def load_audio(path: str | os.PathLike[str], sample_rate: int = ANALYSIS_RATE) -> np.ndarray:
    """A whole file as mono float32 at ``sample_rate`` (default 22,050 Hz).

    For long recordings prefer :func:`iter_audio_blocks` or
    :func:`companion.audio.log_spectrogram` on the path, which never hold the
    whole signal.
    """
    blocks = list(iter_audio_blocks(path, sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def level_dbfs(signal: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3 dB); -inf for silence."""
    x = np.asarray(signal).ravel()
    if x.size == 0:
        return -math.inf
    energy = 0.0
    for i in range(0, x.size, 1 << 20):  # float64 sums without a float64 copy of it all
        block = x[i : i + (1 << 20)].astype(np.float64)
        energy += float(block @ block)
    rms = math.sqrt(energy / x.size)
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def is_silent(signal: np.ndarray, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """True when the signal's RMS level is below ``threshold_dbfs`` (or it is empty).

    Silent files load without error; use this to tell the user instead of
    searching the library for a piece in digital silence. -60 dBFS is far
    below a quietly played piano recorded with a consumer microphone.
    """
    return level_dbfs(signal) < threshold_dbfs
