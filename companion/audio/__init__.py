"""Audio front end: files and live input to the papers' log-filtered spectrogram.

Everything the rest of the app needs from audio::

    from companion.audio import (
        load_audio, iter_audio_blocks, audio_info, is_silent,   # files
        log_spectrogram, iter_log_spectrogram,                  # offline spectrogram
        StreamingSpectrogram,                                   # live spectrogram
        filterbank_center_frequencies, NUM_BANDS,
    )

    spec = log_spectrogram("take.mp3")            # (n_frames, 92) float32, 20 fps
    live = StreamingSpectrogram(input_rate=48000)  # chunks of any size in
    frames = live.process(chunk)                   # (k, 92) new frames out
    tail = live.flush()                            # at the end of the stream

Files: wav, flac, ogg, mp3 (plus m4a & co. with ffmpeg), any rate and
channel count, become mono float32 at 22,050 Hz (soxr HQ). Problems with a
file raise :class:`companion.errors.AudioError`; silent files load and
:func:`is_silent` says so. Spectrogram: 2048-sample Hann frames at 20 fps,
16 log bands per octave from 30 Hz to 6 kHz (92 bins), ``log10(1 + x)``,
identical to madmom's ``LogarithmicFilteredSpectrogram`` (checked in the
tests). Streaming and offline give the same frames.

Modules: :mod:`~companion.audio.io` (files), :mod:`~companion.audio.processors`
(processor chain, downmix, streaming resampler), :mod:`~companion.audio.framing`
(madmom's frame placement), :mod:`~companion.audio.filterbank`,
:mod:`~companion.audio.spectrogram`.
"""

from companion.audio.filterbank import LogFilterbank, log_filterbank
from companion.audio.framing import Framer, num_frames
from companion.audio.io import (
    AudioInfo,
    audio_info,
    is_silent,
    iter_audio_blocks,
    level_dbfs,
    load_audio,
)
from companion.audio.processors import (
    Downmix,
    Processor,
    ProcessorChain,
    StreamResampler,
    resample,
    to_mono,
)
from companion.audio.spectrogram import (
    NUM_BANDS,
    LogSpectrogramProcessor,
    StreamingSpectrogram,
    filterbank_center_frequencies,
    filterbank_for,
    iter_log_spectrogram,
    log_spectrogram,
)

__all__ = [
    "NUM_BANDS",
    "AudioInfo",
    "Downmix",
    "Framer",
    "LogFilterbank",
    "LogSpectrogramProcessor",
    "Processor",
    "ProcessorChain",
    "StreamResampler",
    "StreamingSpectrogram",
    "audio_info",
    "filterbank_center_frequencies",
    "filterbank_for",
    "is_silent",
    "iter_audio_blocks",
    "iter_log_spectrogram",
    "level_dbfs",
    "load_audio",
    "log_filterbank",
    "log_spectrogram",
    "num_frames",
    "resample",
    "to_mono",
]
