"""Input devices: list them, pick one by name/index/default, remember the choice.

Everything goes through a *backend*: the ``sounddevice`` module itself, or
any object with the same few functions (``query_devices``,
``query_hostapis``, ``check_input_settings``, ``InputStream``, ``default``,
``PortAudioError``). Tests pass a fake backend to exercise every failure
without hardware.

PortAudio scans devices once, when it is initialised. :func:`rescan` re-
initialises it so a microphone plugged in later shows up; the capture session
calls it before each retry (never while one of our streams is open).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from companion.config import save_settings
from companion.errors import AudioError

log = logging.getLogger(__name__)

COMMON_RATES: tuple[int, ...] = (48000, 44100, 96000, 88200, 32000, 24000, 22050, 16000, 8000)
"""Rates probed when a device's default rate cannot be used (most common first)."""
MIN_GOOD_RATE = 16000
"""Lower rates lose the top of the spectrogram (6 kHz): used only when nothing else works."""


class NoAudioSystem(AudioError):
    """PortAudio (the audio library) is missing or cannot start."""


class DeviceNotFound(AudioError):
    """No input device matches what the user asked for (or none exists)."""


@dataclass(frozen=True)
class DeviceInfo:
    """An input device as the audio system reports it."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float
    is_default: bool = False

    def describe(self) -> str:
        mark = "*" if self.is_default else " "
        return (
            f"{mark} [{self.index}] {self.name} ({self.hostapi}, "
            f"{self.max_input_channels} ch, {self.default_samplerate:.0f} Hz)"
        )


_backend: Any = None


def get_backend() -> Any:
    """The ``sounddevice`` module, imported on first use.

    Raises :class:`NoAudioSystem` with a remedy when PortAudio is missing.
    """
    global _backend
    if _backend is None:
        try:
            import sounddevice
        except OSError as exc:  # sounddevice raises OSError when libportaudio is absent
            raise NoAudioSystem(
                "the PortAudio audio library is not installed, so no microphone can be "
                "used (on Debian/Ubuntu: apt install libportaudio2)"
            ) from exc
        _backend = sounddevice
    return _backend


def rescan(backend: Any) -> None:
    """Make PortAudio scan the devices again (hot-plugged microphones appear).

    Only for the real sounddevice module (fakes have no PortAudio to restart);
    safe only while none of our streams is open.
    """
    terminate = getattr(backend, "_terminate", None)
    initialize = getattr(backend, "_initialize", None)
    if terminate is None or initialize is None:
        refresh = getattr(backend, "rescan", None)
        if callable(refresh):
            refresh()
        return
    try:
        terminate()
        initialize()
    except Exception as exc:  # a failed re-scan leaves the old list; the next retry tries again
        log.warning("re-scanning audio devices failed: %s", exc)


def _hostapi_names(backend: Any) -> list[str]:
    try:
        return [str(h["name"]) for h in backend.query_hostapis()]
    except Exception:
        return []


def _default_input_index(backend: Any) -> int:
    try:
        dev = backend.default.device
        idx = dev[0] if isinstance(dev, (list, tuple)) or hasattr(dev, "__getitem__") else dev
        idx = int(idx) if idx is not None else -1
    except (TypeError, ValueError, IndexError):
        idx = -1
    if idx < 0:
        try:
            idx = int(backend.query_devices(kind="input")["index"])
        except Exception:
            idx = -1
    return idx


def list_input_devices(backend: Any | None = None) -> list[DeviceInfo]:
    """All devices with at least one input channel, in the audio system's order."""
    backend = backend or get_backend()
    apis = _hostapi_names(backend)
    default = _default_input_index(backend)
    out: list[DeviceInfo] = []
    for i, d in enumerate(backend.query_devices()):
        channels = int(d.get("max_input_channels", 0))
        if channels <= 0:
            continue
        index = int(d.get("index", i))
        api_index = int(d.get("hostapi", 0))
        out.append(
            DeviceInfo(
                index=index,
                name=str(d["name"]),
                hostapi=apis[api_index] if 0 <= api_index < len(apis) else "?",
                max_input_channels=channels,
                default_samplerate=float(d.get("default_samplerate", 0.0) or 0.0),
                is_default=index == default,
            )
        )
    return out


def _listing(devices: Sequence[DeviceInfo]) -> str:
    if not devices:
        return "no input devices are available"
    return "available input devices:\n" + "\n".join(d.describe() for d in devices)


def find_input_device(spec: str | int | None, backend: Any | None = None) -> DeviceInfo:
    """The device meant by ``spec``: None/""/"default", an index, or (part of) a name.

    A name matches exactly first (case-insensitive), then as a unique
    substring. Raises :class:`DeviceNotFound` listing what is available.
    """
    backend = backend or get_backend()
    devices = list_input_devices(backend)
    if not devices:
        raise DeviceNotFound("no microphone or other audio input was found")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "default")):
        for d in devices:
            if d.is_default:
                return d
        return devices[0]  # no declared default: the first input is the best guess
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        for d in devices:
            if d.index == index:
                return d
        raise DeviceNotFound(f"there is no input device number {index}; {_listing(devices)}")
    wanted = spec.strip().lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    if exact:
        return exact[0]
    partial = [d for d in devices if wanted in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise DeviceNotFound(
            f"several input devices match {spec!r}; use more of the name or the number:\n"
            + "\n".join(d.describe() for d in partial)
        )
    raise DeviceNotFound(f"no input device matches {spec!r}; {_listing(devices)}")


class FormatProbeError(AudioError):
    """Probing formats failed for a reason other than the format (busy, gone, no permission)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


_FORMAT_TEXT = re.compile(r"sample ?rate|samplerate|number of channels|channel count", re.I)


def _is_format_error(exc: BaseException) -> bool:
    args = getattr(exc, "args", ())
    code = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    if code is not None:
        return code in (-9997, -9998)  # paInvalidSampleRate, paInvalidChannelCount
    return bool(_FORMAT_TEXT.search(str(exc)))


def _probe(device: DeviceInfo, rate: float, channels: int, backend: Any) -> BaseException | None:
    try:
        backend.check_input_settings(
            device=device.index, samplerate=rate, channels=channels, dtype="float32"
        )
        return None
    except Exception as exc:  # PortAudioError or ValueError: not usable
        log.debug("device %s: %s Hz x %d not usable: %s", device.name, rate, channels, exc)
        return exc


def rate_supported(device: DeviceInfo, rate: float, channels: int, backend: Any) -> bool:
    """Whether the device accepts ``rate`` with ``channels`` float32 input channels."""
    return _probe(device, rate, channels, backend) is None


def probe_sample_rates(
    device: DeviceInfo,
    backend: Any | None = None,
    rates: Sequence[float] = COMMON_RATES,
    channels: int = 1,
) -> list[float]:
    """The rates in ``rates`` (and the device's default) that the device accepts."""
    backend = backend or get_backend()
    candidates = list(dict.fromkeys([device.default_samplerate, *rates]))
    return [float(r) for r in candidates if r > 0 and rate_supported(device, r, channels, backend)]


def choose_stream_format(
    device: DeviceInfo, backend: Any | None = None, preferred_rate: float | None = None
) -> tuple[float, int] | None:
    """A (rate, channels) the device accepts: its default rate, mono, if it can.

    Mono first (the analysis is mono, and it halves the callback's copy); then
    two channels for devices that only open in stereo. None when no format
    works; :class:`FormatProbeError` when probing failed for another reason
    (the device is busy, gone or forbidden: a format problem it is not).
    """
    backend = backend or get_backend()
    rates = [r for r in (preferred_rate, device.default_samplerate) if r]
    rates += [r for r in COMMON_RATES if r not in rates]
    # below 16 kHz the spectrogram's top bands (up to 6 kHz) go missing: last resort only
    rates.sort(key=lambda r: r < MIN_GOOD_RATE)
    channel_options = [1] + ([2] if device.max_input_channels >= 2 else [])
    other: BaseException | None = None
    for channels in channel_options:
        for rate in rates:
            exc = _probe(device, rate, channels, backend)
            if exc is None:
                return float(rate), channels
            if not _is_format_error(exc):
                other = exc
                break  # the device itself is the problem: other rates will not help
        if other is not None:
            break
    if other is not None:
        raise FormatProbeError(other)
    return None


def remember_device(name: str, settings_file: Path) -> None:
    """Store the chosen device in the settings (``audio.audio_device``), keeping other audio keys."""
    audio: dict[str, Any] = {}
    if settings_file.exists():
        try:
            loaded = json.loads(settings_file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("audio"), dict):
                audio = dict(loaded["audio"])
        except (OSError, ValueError):
            pass
    audio["audio_device"] = name
    save_settings({"audio": audio}, settings_file)
