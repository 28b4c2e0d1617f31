"""One identity for a piece of music across editions, engravings and file names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from companion.data.sources import describe, excluded_by, read_exclude_list
from companion.data.store import _matches
from companion.data.works import HeardMusic, chopin_work_key, music_identity, same_music, trained_on

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, identity", [
    ("009-1-KI-001", "chopin-op9-no1"),
    ("009_1et2-1a-W-001", "chopin-op9-no1"),           # a range with words: once read as no work at all
    ("kern-009-1et2-1a-w-001-ca3351", "chopin-op9-no1"),  # the corpus piece id of the same file
    ("034_2-1-BH-002", "chopin-op34-no2"),
    ("034_1-1a-Sm", "chopin-op34-no1"),                # the number only in the range
    ("028_13-24-1a-C-013", "chopin-op28-no13"),
    ("072-1-MEIf-002-marche-funebre", "chopin-op72-no2"),
    ("072sep-1e-Sam-marche-funebre", "chopin-op72-no2"),  # the separate edition, unnumbered
    ("072-1-MEIf-005", "chopin-op72-no3"),             # the complete edition counts the écossaises 3-5
    ("072sep-1e-Sam-001-ecossaise", "chopin-op72-no3"),  # the separate edition counts them 1-3
    ("072-1-MEIf-001-nocturne", "chopin-op72-no1"),
    ("073-1x-Sam-Secondo", "chopin-op73"),             # capitalised part
    ("kern-073-1-meif-piano-secondo-19333f", "chopin-op73"),
    ("/x/kern/074-1c-LW-008.krn", "chopin-op74-no8"),
    ("WaltzEm-1b-SCH", "chopin-waltzem"),
    ("music21-chopin-mazurka06-2-3b734e", "chopin-op6-no2"),
    ("chopinff-o9-chopin-nocturne-op9-n3-chopin-nocturne-op9-n3-3766f7", "chopin-op9-no3"),  # Mutopia
    ("chopinff-o28-chop-28-8", "chopin-op28-no8"),
    ("chopinff-o45-chopin_prelude_op45", "chopin-op45"),
    ("bachjs-bwv1006a-bwv-1006a-6-bwv-1006a-6-cca08a", None),
    ("music21-bach-bwv846", None),
])
def test_music_identity_across_editions_and_sources(name, identity):
    assert music_identity(name) == identity


def test_work_keys_keep_the_form_of_the_names_read_right():
    assert chopin_work_key("chopin-op9-no1") == "chopin-009-001"
    assert chopin_work_key("chopin-op73") == "chopin-073-0"
    assert same_music("chopin-op70", "chopin-op70-no3") and not same_music("chopin-op7-no1", "chopin-op70-no1")


def _kern(tmp_path: Path, name: str, ops: str = "") -> Path:
    path = tmp_path / f"{name}.krn"
    path.write_text(f"!!!COM: Chopin, Fryderyk\n{ops}**kern\n4c\n*-\n", encoding="utf-8")
    return path


def test_every_edition_of_a_piece_gets_one_work_and_so_one_split(tmp_path):
    works = {n: describe(_kern(tmp_path, n), tmp_path) for n in (
        "009-1-KI-001", "009_1et2-1a-W-001", "072-1-MEIf-002-marche-funebre", "072sep-1e-Sam-marche-funebre",
        "073-1x-Sam-Secondo", "073-1-MEIf-piano-secondo", "073-1x-Sam-piano-primo", "006-1-KI-003")}
    w = {n: s.work for n, s in works.items() if s is not None}
    assert w["009-1-KI-001"] == w["009_1et2-1a-W-001"] == "chopin-009-001"
    assert w["072-1-MEIf-002-marche-funebre"] == w["072sep-1e-Sam-marche-funebre"] == "chopin-072-002"
    assert w["073-1x-Sam-Secondo"] == w["073-1-MEIf-piano-secondo"] == w["073-1x-Sam-piano-primo"]
    assert w["006-1-KI-003"] == "chopin-006-003"  # names read right before keep their key (and split)


def test_the_exclusion_list_catches_files_whose_metadata_names_no_opus(tmp_path):
    pats = read_exclude_list(REPO / "companion" / "data" / "real_scan_works.txt")
    # no !!!OPS line: only the file name says Op. 70 No. 3 (a scanned work); once trained on by mistake
    assert excluded_by(describe(_kern(tmp_path, "070-1-Sam-003"), tmp_path), pats)
    assert excluded_by(describe(_kern(tmp_path, "072-1-MEIf-001-nocturne", "!!!OPS: Op. 72\n"), tmp_path), pats)
    assert not excluded_by(describe(_kern(tmp_path, "072-1-MEIf-002-marche-funebre"), tmp_path), pats)
    # the preparation's check on built pieces reads the same identity from the source path
    meta = {"composer": "Chopin, Fryderyk", "title": "", "opus": "", "work": "chopin-070-003",
            "source": "../shared/data/scores/chopin-first-editions/kern/070-1-Sam-003.krn"}
    assert _matches(meta, pats)
    assert not _matches({**meta, "source": "kern/069-1-MEIf-003.krn", "work": "chopin-069-003"},
                        [["chopin", "op70"]])


def test_heard_music_spans_editions_and_reads_checkpoint_summaries():
    data = {"members": [{"data": {"trained_on": ["kern-009-1et2-1a-w-001-ca3351"]}},
                        {"data": {"trained_on": ["kern-072sep-1e-sam-marche-funebre-84a5c6"], "pairs": 3}}]}
    heard = HeardMusic(trained_on(data) + ["music21-bach-bwv846-0dabdd"])
    assert len(heard) == 3
    assert heard.heard("kern-009-1-ki-001-fda212")  # another edition of Op. 9 No. 1
    assert heard.heard("kern-072-1-meif-002-marche-funebre-6fad42")
    assert not heard.heard("kern-009-1et2-1a-w-002-911c12")  # Op. 9 No. 2 was not
    assert not heard.heard("kern-006-1-ki-003-136947")
    assert heard.heard("music21-bach-bwv846-0dabdd") and not heard.heard("bachjs-bwv1006a-x-cca08a")
    assert json.dumps(trained_on(data))  # plain strings, as a checkpoint stores them
