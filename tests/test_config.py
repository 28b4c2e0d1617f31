from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from companion.config import BUNDLED_DATA, Config, find_data_root, load_config, package_root, save_settings, to_dict


def test_defaults_match_the_papers() -> None:
    cfg = Config()
    assert cfg.audio.sample_rate == 22050
    assert cfg.audio.frame_size == 2048
    assert cfg.audio.hop_size == pytest.approx(1102.5)
    assert (cfg.audio.fmin, cfg.audio.fmax, cfg.audio.bands_per_octave) == (30.0, 6000.0, 16)
    assert cfg.sheet.analysis_width == 835
    assert cfg.sheet.strip_height == 160
    assert cfg.sheet.snippet_size == (80, 100)


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.audio.sample_rate = 44100  # type: ignore[misc]


def test_companion_home_moves_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPANION_HOME", str(tmp_path))
    cfg = load_config()
    assert cfg.paths.library_dir == tmp_path / "library"
    assert cfg.paths.settings_file.parent == tmp_path / "config"


def test_settings_override_and_save(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    save_settings({"sheet": {"snippet_hop": 25}, "paths": {"library_dir": str(tmp_path / "lib")}}, settings)
    cfg = load_config(settings)
    assert cfg.sheet.snippet_hop == 25
    assert cfg.paths.library_dir == tmp_path / "lib"
    assert cfg.audio.sample_rate == 22050
    save_settings({"audio": {"fps": 10}}, settings)
    merged = json.loads(settings.read_text())
    assert merged["sheet"] == {"snippet_hop": 25} and merged["audio"] == {"fps": 10}


def test_broken_settings_file_is_ignored(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text("{not json")
    assert load_config(settings) == load_config(tmp_path / "missing.json")


def test_to_dict_is_json_serialisable() -> None:
    json.dumps(to_dict(load_config()))


def _data_tree(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "resources" / "demo").mkdir(parents=True)
    return root


def test_data_root_of_a_source_tree(tmp_path: Path) -> None:
    repo = _data_tree(tmp_path / "repo")
    (repo / "pyproject.toml").write_text("[project]\nname = 'companion'\n")
    (repo / "companion").mkdir()
    assert find_data_root(repo / "companion") == repo


def test_data_root_of_an_installed_wheel(tmp_path: Path) -> None:
    # site-packages holds a stray top-level models/ of some other distribution
    # and no pyproject.toml: the package's own copy must win.
    site = tmp_path / "site-packages"
    (site / "models").mkdir(parents=True)
    bundled = _data_tree(site / "companion" / BUNDLED_DATA)
    assert find_data_root(site / "companion") == bundled


def test_data_root_of_a_frozen_app(tmp_path: Path) -> None:
    frozen = _data_tree(tmp_path / "_internal")
    package = tmp_path / "_internal" / "companion"
    package.mkdir()
    assert find_data_root(package, frozen) == frozen
    # A frozen folder without the data falls through to the other places.
    assert find_data_root(package, tmp_path / "empty") == tmp_path / "_internal"


def test_data_root_when_nothing_is_installed_names_the_source_location(tmp_path: Path) -> None:
    (tmp_path / "companion").mkdir()
    assert find_data_root(tmp_path / "companion") == tmp_path


def test_this_checkout_finds_its_models_and_resources() -> None:
    root = package_root()
    assert (root / "models").is_dir() and (root / "resources" / "demo" / "demo.json").is_file()
    assert Config().models_dir == root / "models"
