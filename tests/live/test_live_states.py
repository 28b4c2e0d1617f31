"""Error texts below are the ones PortAudio/sounddevice really produce."""

from __future__ import annotations

import pytest
from live_helpers import PortAudioError

from companion.live.states import USER_MESSAGES, CaptureState, classify_error


@pytest.mark.parametrize(
    ("exc", "running", "state"),
    [
        (PortAudioError("Error opening InputStream: Device unavailable", -9985), False, CaptureState.DEVICE_BUSY),
        (PortAudioError("Error opening InputStream: Device unavailable", -9985), True, CaptureState.DEVICE_LOST),
        (PortAudioError("Error opening InputStream: Invalid sample rate", -9997), False, CaptureState.RATE_UNSUPPORTED),
        (PortAudioError("Error opening InputStream: Invalid device", -9996), False, CaptureState.NO_DEVICE),
        (PortAudioError("Error querying device -1"), False, CaptureState.NO_DEVICE),
        (ValueError("No input device matching 'USB Mic'"), False, CaptureState.NO_DEVICE),
        (
            PortAudioError("Error opening InputStream: Unanticipated host error", -9999, (0, -13, "Permission denied")),
            False,
            CaptureState.PERMISSION_DENIED,
        ),
        (
            PortAudioError("Error opening InputStream: Unanticipated host error", -9999, (0, -16, "Device or resource busy")),
            False,
            CaptureState.DEVICE_BUSY,
        ),
        (
            PortAudioError("Error starting stream: Unanticipated host error", -9999, (0, -19, "No such device")),
            False,
            CaptureState.NO_DEVICE,
        ),
        (PortAudioError("Error starting stream: Wait timed out", -9987), True, CaptureState.DEVICE_LOST),
        (PortAudioError("Error starting stream: Internal PortAudio error", -9986), False, CaptureState.ERROR),
        (OSError("PortAudio library not found"), False, CaptureState.NO_DEVICE),
    ],
)
def test_classify_real_portaudio_errors(exc: BaseException, running: bool, state: CaptureState) -> None:
    failure = classify_error(exc, while_running=running)
    assert failure.state == state
    assert failure.detail  # the system's words are kept for the log
    assert failure.message == USER_MESSAGES[state]


def test_retrying_states() -> None:
    assert {s for s in CaptureState if s.retries} == {
        CaptureState.NO_DEVICE, CaptureState.DEVICE_LOST, CaptureState.DEVICE_BUSY
    }
    assert not CaptureState.RUNNING.is_failure and CaptureState.PERMISSION_DENIED.is_failure
