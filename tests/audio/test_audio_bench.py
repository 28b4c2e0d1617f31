"""``companion bench audio`` runs and reports sane numbers."""

from __future__ import annotations

import json

import pytest

from companion.cli import main


def test_bench_audio_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "audio", "--seconds", "1", "--repeat", "1", "--chunk", "512", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["chunk"] == 512
    for key in ("offline_signal_ms_per_s", "offline_file_flac_44k_stereo_ms_per_s",
                "stream_22k_ms_per_s", "stream_48k_ms_per_s"):
        assert res[key] > 0
    assert res["stream_22k_frames"] == 20  # 1 s at 20 fps
    assert res["stream_48k_frames"] == 20


def test_bench_audio_rejects_bad_chunk(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "audio", "--chunk", "0"]) == 1
    assert "positive" in capsys.readouterr().err
