"""Loading files: formats, rates, channels, and every kind of bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
import soxr
from audio_helpers import SR, piano_like, tone

from companion.audio import (
    audio_info,
    is_silent,
    iter_audio_blocks,
    level_dbfs,
    load_audio,
    log_spectrogram,
)
from companion.audio import ffmpeg_decode
from companion.errors import AudioError, CompanionError

WriteAudio = Callable[..., Path]
needs_ffmpeg = pytest.mark.skipif(not ffmpeg_decode.available(), reason="ffmpeg not installed")


@pytest.fixture(scope="module")
def take() -> np.ndarray:
    return piano_like(3.0, seed=1)


def _spectral_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two log spectrograms (robust to lossy codecs' small delays)."""
    sa, sb = log_spectrogram(a), log_spectrogram(b)
    n = min(len(sa), len(sb))
    return float(np.corrcoef(sa[:n].ravel(), sb[:n].ravel())[0, 1])


def test_float_wav_loads_exactly(write_audio: WriteAudio, take: np.ndarray) -> None:
    path = write_audio("take.wav", take, subtype="FLOAT")
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    np.testing.assert_array_equal(x, take)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("take.flac", {}),
        ("take.ogg", {"format": "OGG", "subtype": "VORBIS"}),
        ("take.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}),
        ("take16.wav", {"subtype": "PCM_16"}),
    ],
)
def test_formats_load_as_mono_22050(write_audio: WriteAudio, name: str, kwargs: dict) -> None:
    take = piano_like(3.0, sr=44100, seed=2)
    path = write_audio(name, np.stack([take, 0.5 * take], axis=1), sr=44100, **kwargs)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    # 3 s of 44.1 kHz stereo -> 3 s at 22,050 Hz (mp3 may add up to ~50 ms of codec padding)
    assert abs(len(x) - 3.0 * SR) <= 0.06 * SR
    reference = soxr.resample(0.75 * take, 44100, SR)  # the channels' mean, resampled
    assert _spectral_similarity(x, reference[: len(x)]) > 0.97


def test_mp3_without_ffmpeg_uses_libsndfile(
    write_audio: WriteAudio, take: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_audio("take.mp3", take, format="MP3", subtype="MPEG_LAYER_III")
    monkeypatch.setattr(ffmpeg_decode, "available", lambda: False)
    assert audio_info(path).backend == "libsndfile"
    x = load_audio(path)
    assert abs(len(x) - len(take)) <= 0.06 * SR
    assert _spectral_similarity(x, take[: len(x)]) > 0.97


@needs_ffmpeg
def test_vbr_mp3_without_xing_header_is_read_to_the_end(tmp_path: Path, take: np.ndarray) -> None:
    # libsndfile stops early on such files; ffmpeg reads them completely
    src = tmp_path / "src.wav"
    sf.write(str(src), np.tile(take, 3), SR)
    mp3 = tmp_path / "vbr.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-q:a", "4", "-write_xing", "0", str(mp3)],
        check=True,
    )
    assert audio_info(mp3).backend == "ffmpeg"
    # no Xing/LAME header: the encoder's delay and padding (~65 ms) are not trimmed
    assert abs(len(load_audio(mp3)) - 9.0 * SR) <= 0.1 * SR


@pytest.mark.parametrize("rate", [8000, 96000])
def test_unusual_rates_are_resampled(write_audio: WriteAudio, rate: int) -> None:
    x = piano_like(2.0, sr=rate, seed=rate)
    path = write_audio(f"r{rate}.wav", x, sr=rate, subtype="FLOAT")
    assert audio_info(path).sample_rate == rate
    y = load_audio(path)
    np.testing.assert_array_equal(y, soxr.resample(x, rate, SR, quality="HQ"))
    assert len(y) == round(2.0 * SR)


def test_six_channels_are_averaged(write_audio: WriteAudio) -> None:
    chans = np.stack([tone(110.0 * (c + 1), 1.5, amp=0.1 * (c + 1)) for c in range(6)], axis=1)
    path = write_audio("surround.wav", chans, subtype="FLOAT")
    info = audio_info(path)
    assert info.channels == 6
    np.testing.assert_allclose(load_audio(path), chans.mean(axis=1), atol=1e-7)


def test_blocks_concatenate_to_the_whole_file(write_audio: WriteAudio) -> None:
    x = piano_like(5.0, sr=48000, seed=4)
    path = write_audio("long.flac", x, sr=48000)
    blocks = list(iter_audio_blocks(path, block_seconds=0.7))
    assert len(blocks) >= 7
    assert max(len(b) for b in blocks) <= 0.7 * SR + 2048
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path))
    spec_from_path = log_spectrogram(path)
    np.testing.assert_allclose(spec_from_path, log_spectrogram(load_audio(path)), atol=1e-5)


# --- bad input ------------------------------------------------------------------------


def _message(exc: pytest.ExceptionInfo[AudioError]) -> str:
    assert isinstance(exc.value, CompanionError)
    return str(exc.value).lower()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as exc:
        load_audio(tmp_path / "nope.wav")
    assert "not found" in _message(exc)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as exc:
        load_audio(tmp_path)
    assert "not a file" in _message(exc)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    assert "empty" in _message(exc)


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are my practice notes, not audio\n" * 20)
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    assert "not a readable wav file" in _message(exc)


@pytest.mark.parametrize("name", ["score.mid", "sheet.pdf", "noextension"])
def test_unsupported_format(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0" + bytes(200))
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    msg = _message(exc)
    assert "unsupported" in msg or "not a readable" in msg


def test_m4a_without_ffmpeg_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "phone.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    monkeypatch.setattr(ffmpeg_decode, "available", lambda: False)
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    assert "ffmpeg" in _message(exc)


@needs_ffmpeg
def test_corrupt_m4a_with_ffmpeg(tmp_path: Path) -> None:
    path = tmp_path / "phone.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    assert "not a readable m4a file" in _message(exc)


@needs_ffmpeg
def test_m4a_with_ffmpeg(tmp_path: Path, take: np.ndarray) -> None:
    src = tmp_path / "src.wav"
    sf.write(str(src), take, SR)
    m4a = tmp_path / "phone.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), str(m4a)], check=True)
    x = load_audio(m4a)
    assert abs(len(x) - len(take)) <= 0.1 * SR
    assert _spectral_similarity(x, take[: len(x)]) > 0.95


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("cut.wav", {"subtype": "PCM_16"}),
        ("cut.flac", {}),
        ("cut.ogg", {"format": "OGG", "subtype": "VORBIS"}),
        ("cut.mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}),
    ],
)
@pytest.mark.parametrize("keep", [0.5, 0.03])
def test_truncated_files(
    write_audio: WriteAudio, take: np.ndarray, name: str, kwargs: dict, keep: float
) -> None:
    path = write_audio(name, np.tile(take, 3), **kwargs)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    msg = _message(exc)
    assert any(w in msg for w in ("truncated", "corrupt", "not a readable", "no audio")), msg


def test_wav_cut_right_after_its_header(write_audio: WriteAudio, take: np.ndarray) -> None:
    path = write_audio("header_only.wav", take, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"data") + 8])
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    assert "truncated" in _message(exc) or "no audio" in _message(exc)


def test_wav_with_no_samples(write_audio: WriteAudio) -> None:
    path = write_audio("nothing.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    assert "no audio" in _message(exc)


def test_wav_with_streaming_placeholder_size_is_accepted(
    write_audio: WriteAudio, take: np.ndarray
) -> None:
    # recorders that never finalise the header leave 0xFFFFFFFF as the data size
    path = write_audio("rec.wav", take, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    assert len(load_audio(path)) == len(take)


# --- silence --------------------------------------------------------------------------


def test_silent_file_loads_and_is_flagged(write_audio: WriteAudio, take: np.ndarray) -> None:
    path = write_audio("silence.flac", np.zeros(SR * 2, dtype=np.float32))
    x = load_audio(path)
    assert len(x) == 2 * SR
    assert is_silent(x)
    assert log_spectrogram(path).max() == 0.0
    assert not is_silent(take)
    assert not is_silent(tone(440.0, 1.0, amp=0.003))  # a very quiet note is not silence
    assert is_silent(np.full(SR, 1e-5, dtype=np.float32))  # -100 dBFS hum is
    assert is_silent(np.zeros(0, dtype=np.float32))


def test_level_of_a_full_scale_sine() -> None:
    assert level_dbfs(tone(1000.0, 1.0, amp=1.0)) == pytest.approx(-3.01, abs=0.01)
    assert level_dbfs(np.zeros(10, dtype=np.float32)) == -np.inf
