"""Capture states and the mapping from audio-system errors to them.

Why: a live app must never crash because a microphone was unplugged or
another program holds it. Every failure becomes a *state* with a message the
user can act on; some states retry by themselves (the device may come back),
others wait for the user (pick another device, grant permission).

State machine (see :class:`companion.live.capture.CaptureSession`)::

    idle --start--> starting --ok--> running --stream ends/errors--> device_lost
                        |                                              |
                        +--> no_device | device_busy  (retry, backoff) |
                        +--> permission_denied | rate_unsupported | error
                                         (wait for the user: restart / set_device)
    any --stop--> idle
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class CaptureState(str, enum.Enum):
    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    NO_DEVICE = "no_device"
    DEVICE_LOST = "device_lost"
    DEVICE_BUSY = "device_busy"
    PERMISSION_DENIED = "permission_denied"
    RATE_UNSUPPORTED = "rate_unsupported"
    ERROR = "error"

    @property
    def is_failure(self) -> bool:
        return self in FAILURE_STATES

    @property
    def retries(self) -> bool:
        """True for failures the session retries by itself (with backoff)."""
        return self in RETRY_STATES


FAILURE_STATES = frozenset(
    {
        CaptureState.NO_DEVICE,
        CaptureState.DEVICE_LOST,
        CaptureState.DEVICE_BUSY,
        CaptureState.PERMISSION_DENIED,
        CaptureState.RATE_UNSUPPORTED,
        CaptureState.ERROR,
    }
)
RETRY_STATES = frozenset({CaptureState.NO_DEVICE, CaptureState.DEVICE_LOST, CaptureState.DEVICE_BUSY})

USER_MESSAGES: dict[CaptureState, str] = {
    CaptureState.IDLE: "Not listening.",
    CaptureState.STARTING: "Opening the microphone…",
    CaptureState.RUNNING: "Listening.",
    CaptureState.NO_DEVICE: (
        "No microphone found. Plug one in or enable it in the system's sound "
        "settings; listening starts by itself when one appears."
    ),
    CaptureState.DEVICE_LOST: (
        "The microphone stopped delivering sound (unplugged or switched off?). "
        "Trying to reconnect…"
    ),
    CaptureState.DEVICE_BUSY: (
        "The microphone is in use by another program. Close that program; "
        "listening resumes by itself."
    ),
    CaptureState.PERMISSION_DENIED: (
        "The app is not allowed to use the microphone. Allow microphone access "
        "in the system's privacy settings, then press Retry."
    ),
    CaptureState.RATE_UNSUPPORTED: (
        "The microphone does not support any usable sample rate. Choose another "
        "input device or change its format in the system's sound settings."
    ),
    CaptureState.ERROR: "The audio system reported an error. Press Retry or choose another input device.",
}


@dataclass(frozen=True)
class Failure:
    """A classified audio-system failure."""

    state: CaptureState
    detail: str
    """The audio system's own words (for the log and a "details" line)."""

    @property
    def message(self) -> str:
        return USER_MESSAGES[self.state]


# PortAudio PaErrorCode values (portaudio.h)
PA_INVALID_CHANNEL_COUNT = -9998
PA_INVALID_SAMPLE_RATE = -9997
PA_INVALID_DEVICE = -9996
PA_UNANTICIPATED_HOST_ERROR = -9999
PA_DEVICE_UNAVAILABLE = -9985
PA_NO_DEFAULT_DEVICE = -1  # "paNoDevice": sounddevice reports "Error querying device -1"

_BUSY = re.compile(r"busy|in use|unavailable|exclusive|AUDCLNT_E_DEVICE_IN_USE|-16\b", re.I)
_PERMISSION = re.compile(r"permission|not permitted|access denied|denied|EACCES|EPERM|-13\b", re.I)
_GONE = re.compile(
    r"no such device|disconnected|unplugged|device.*(removed|not found|not connected)|-19\b|ENODEV"
    r"|AUDCLNT_E_DEVICE_INVALIDATED|Error querying device -1|No input device",
    re.I,
)
_RATE = re.compile(r"sample ?rate|samplerate", re.I)


def _error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    if len(args) > 1 and isinstance(args[1], int):
        return args[1]
    match = re.search(r"PaErrorCode (-?\d+)", str(exc))
    return int(match.group(1)) if match else None


def classify_error(exc: BaseException, *, while_running: bool = False) -> Failure:
    """Map an exception from the audio system to a :class:`Failure`.

    Works on ``sounddevice.PortAudioError`` (code in ``args[1]``, host error in
    ``args[2]``), sounddevice's ``ValueError("No input device matching …")``,
    ``OSError`` from a missing PortAudio library, and anything else (-> error).
    ``while_running`` marks errors from a stream that was already running:
    those mean the device went away unless they clearly say otherwise.
    """
    text = str(exc) or type(exc).__name__
    code = _error_code(exc)
    host_text = ""
    args = getattr(exc, "args", ())
    if len(args) > 2 and isinstance(args[2], tuple) and len(args[2]) == 3:
        host_text = f"{args[2][2]} {args[2][1]}"
    full = f"{text} {host_text}"
    if isinstance(exc, OSError) and "PortAudio" in text:
        return Failure(CaptureState.NO_DEVICE, f"PortAudio library not found: {text}")
    if code == PA_INVALID_SAMPLE_RATE or (code is None and _RATE.search(text)):
        return Failure(CaptureState.RATE_UNSUPPORTED, text)
    if _PERMISSION.search(full):
        return Failure(CaptureState.PERMISSION_DENIED, text)
    if code == PA_DEVICE_UNAVAILABLE or _BUSY.search(full):
        # ALSA reports -EBUSY as paDeviceUnavailable; a vanished device can look
        # the same mid-stream, where "lost" is the better guess.
        if while_running:
            return Failure(CaptureState.DEVICE_LOST, text)
        return Failure(CaptureState.DEVICE_BUSY, text)
    if code == PA_INVALID_DEVICE or _GONE.search(full) or isinstance(exc, LookupError):
        return Failure(CaptureState.DEVICE_LOST if while_running else CaptureState.NO_DEVICE, text)
    if while_running:
        return Failure(CaptureState.DEVICE_LOST, text)
    return Failure(CaptureState.ERROR, text)
