from __future__ import annotations

import json
from pathlib import Path

import pytest
from live_helpers import FakeSoundDevice, PortAudioError

from companion.config import load_config, save_settings
from companion.live.devices import (
    DeviceNotFound,
    FormatProbeError,
    choose_stream_format,
    find_input_device,
    list_input_devices,
    probe_sample_rates,
    remember_device,
)


def _sd() -> FakeSoundDevice:
    sd = FakeSoundDevice()
    sd.devices.append({"name": "HDMI out", "index": 2, "hostapi": 0, "max_input_channels": 0,
                       "max_output_channels": 2, "default_samplerate": 48000.0})
    return sd


def test_lists_inputs_only_with_details() -> None:
    devices = list_input_devices(_sd())
    assert [d.name for d in devices] == ["Fake USB Mic", "Fake Line In"]
    mic = devices[0]
    assert (mic.hostapi, mic.max_input_channels, mic.default_samplerate, mic.is_default) == ("ALSA", 1, 48000.0, True)
    assert "Fake USB Mic" in mic.describe() and "48000 Hz" in mic.describe()


@pytest.mark.parametrize(
    ("spec", "name"),
    [(None, "Fake USB Mic"), ("", "Fake USB Mic"), ("default", "Fake USB Mic"), (1, "Fake Line In"),
     ("1", "Fake Line In"), ("fake line in", "Fake Line In"), ("line", "Fake Line In")],
)
def test_find_by_default_index_or_name(spec: object, name: str) -> None:
    assert find_input_device(spec, _sd()).name == name  # type: ignore[arg-type]


def test_find_errors_list_the_choices() -> None:
    with pytest.raises(DeviceNotFound, match="several input devices match 'fake'"):
        find_input_device("fake", _sd())
    with pytest.raises(DeviceNotFound, match="Fake Line In"):
        find_input_device("Scarlett", _sd())
    with pytest.raises(DeviceNotFound, match="no input device number 2"):
        find_input_device(2, _sd())  # the HDMI output is not an input
    with pytest.raises(DeviceNotFound, match="no microphone"):
        find_input_device(None, FakeSoundDevice(devices=[]))


def test_no_declared_default_falls_back_to_first_input() -> None:
    sd = FakeSoundDevice(default_input=-1)
    assert find_input_device(None, sd).name == "Fake USB Mic"


def test_probe_rates_and_choose_format() -> None:
    sd = _sd()
    sd.supported_rates = {44100.0, 16000.0}
    mic = find_input_device(None, sd)
    assert probe_sample_rates(mic, sd) == [44100.0, 16000.0]
    assert choose_stream_format(mic, sd) == (44100.0, 1)  # default 48 kHz refused
    sd.supported_rates = set()
    assert choose_stream_format(mic, sd) is None


def test_stereo_only_device_opens_with_two_channels() -> None:
    sd = _sd()
    line = find_input_device("line", sd)

    def check(device=None, channels=None, dtype=None, samplerate=None, **_):  # noqa: ANN001, ANN202
        if channels == 1:
            raise PortAudioError("Invalid number of channels", -9998)

    sd.check_input_settings = check  # type: ignore[method-assign]
    assert choose_stream_format(line, sd) == (44100.0, 2)


def test_busy_device_is_not_a_format_problem() -> None:
    sd = _sd()
    sd.check_error = PortAudioError("Error opening InputStream: Device unavailable", -9985)
    with pytest.raises(FormatProbeError) as info:
        choose_stream_format(find_input_device(None, sd), sd)
    assert info.value.cause is sd.check_error


def test_remember_device_keeps_other_settings(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    save_settings({"audio": {"fps": 10.0}, "sheet": {"snippet_hop": 25}}, settings)
    remember_device("Fake Line In", settings)
    data = json.loads(settings.read_text())
    assert data["audio"] == {"fps": 10.0, "audio_device": "Fake Line In"}
    assert data["sheet"] == {"snippet_hop": 25}
    assert load_config(settings).audio.audio_device == "Fake Line In"
