"""Streaming: any chunking gives the offline frames; resampling on the way."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from audio_helpers import SR, piano_like

from companion.audio import (
    Downmix,
    ProcessorChain,
    StreamingSpectrogram,
    StreamResampler,
    log_spectrogram,
)
from companion.errors import AudioError

TOL = 1e-5


def _stream(proc: StreamingSpectrogram, x: np.ndarray, chunk_sizes: list[int]) -> np.ndarray:
    out, i, k = [], 0, 0
    while i < len(x):
        size = chunk_sizes[k % len(chunk_sizes)]
        out.append(proc.process(x[i : i + size]))
        i += size
        k += 1
    out.append(proc.flush())
    return np.concatenate(out)


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return piano_like(4.3, seed=11)


@pytest.mark.parametrize("chunks", [[256], [1000], [4410], [1], [1023, 7, 3000, 64, 2048]])
def test_streaming_equals_offline(signal: np.ndarray, chunks: list[int]) -> None:
    x = signal if chunks != [1] else signal[: SR // 2]  # one sample at a time: keep it short
    offline = log_spectrogram(x)
    streamed = _stream(StreamingSpectrogram(), x, chunks)
    assert streamed.shape == offline.shape
    assert np.max(np.abs(streamed - offline)) <= TOL


def test_frames_come_out_as_soon_as_complete(signal: np.ndarray) -> None:
    proc = StreamingSpectrogram()
    assert proc.process(signal[:1023]).shape == (0, 92)  # frame 0 needs samples 0..1023
    assert proc.process(signal[1023:1024]).shape == (1, 92)
    # frame 1 is centred on 1102 and needs samples up to 2125
    assert proc.process(signal[1024:2125]).shape == (0, 92)
    assert proc.process(signal[2125:2126]).shape == (1, 92)
    assert proc.frames_emitted == 2


def test_reset_and_flush_start_a_new_stream(signal: np.ndarray) -> None:
    proc = StreamingSpectrogram()
    offline = log_spectrogram(signal)
    proc.process(signal[:5000])
    proc.reset()
    first = _stream(proc, signal, [4410])  # flush() inside resets
    second = _stream(proc, signal, [999])
    assert np.max(np.abs(first - offline)) <= TOL
    assert np.max(np.abs(second - offline)) <= TOL


@pytest.mark.parametrize("rate", [44100, 48000])
def test_streaming_resample_equals_offline_resample(rate: int) -> None:
    x = piano_like(3.2, sr=rate, seed=rate)
    offline = log_spectrogram(soxr.resample(x, rate, SR, quality="HQ"))
    for chunks in ([256], [1024], [4410, 333]):
        streamed = _stream(StreamingSpectrogram(input_rate=rate), x, chunks)
        assert streamed.shape == offline.shape
        assert np.max(np.abs(streamed - offline)) <= TOL


@pytest.mark.parametrize("rate", [8000, 44100, 48000, 96000])
def test_stream_resampler_is_exactly_soxr_resample(rate: int) -> None:
    x = np.random.default_rng(rate).standard_normal(rate * 2 + 13).astype(np.float32)
    expected = soxr.resample(x, rate, SR, quality="HQ")
    res = StreamResampler(rate, SR)
    got = np.concatenate([res.process(x[i : i + 700]) for i in range(0, len(x), 700)] + [res.flush()])
    np.testing.assert_array_equal(got, expected)


def test_multichannel_and_int16_chunks(signal: np.ndarray) -> None:
    pcm = np.round(signal * 32767).astype(np.int16)
    stereo = np.stack([pcm, pcm], axis=1)
    offline = log_spectrogram(pcm.astype(np.float32) / 32768)
    streamed = _stream(StreamingSpectrogram(), stereo, [512])
    assert np.max(np.abs(streamed - offline)) <= TOL


def test_chain_flush_cascades() -> None:
    chain = ProcessorChain([Downmix(), StreamResampler(44100, SR)])
    x = np.ones((44100, 2), dtype=np.float32)
    head = chain.process(x)
    tail = chain.flush()
    assert len(head) + len(tail) == SR  # the resampler's held-back tail came out


@pytest.mark.parametrize(
    "bad", [np.array([0.0, np.nan]), np.array([np.inf]), np.zeros((2, 2, 2)), np.array(["a"])]
)
def test_bad_chunks_raise_audio_error(bad: np.ndarray) -> None:
    with pytest.raises(AudioError):
        StreamingSpectrogram().process(bad)


@pytest.mark.parametrize("rate", [0, -44100, float("nan")])
def test_invalid_input_rate(rate: float) -> None:
    with pytest.raises(AudioError):
        StreamingSpectrogram(input_rate=rate)
    with pytest.raises(AudioError):
        log_spectrogram(np.zeros(100, dtype=np.float32), sample_rate=rate)
