"""scripts/ship_models.py note: a note added to a shipped model card (catalogue and Markdown), a
corrected rerun replacing it rather than adding a second — on a copy of the catalogue."""

import json
import shutil

import pytest
from conftest import load_script

from geohsr import weights as W

ship = load_script("ship_models")


def test_note_is_added_to_the_catalogue_and_the_card_and_replaced_on_rerun(tmp_path, monkeypatch):
    shutil.copy(W.models_dir() / "catalog.json", tmp_path / "catalog.json")
    monkeypatch.setenv("GEOHSR_MODELS", str(tmp_path))
    name = "coarsr_x4_rs_compact"
    before = json.loads((tmp_path / "catalog.json").read_text())
    first = "An oracle of this test: first wording of the note, 1.44 dB"
    ship.add_notes(name, [first])
    ship.add_notes(name, ["An oracle of this test: first wording of the note, 1.45 dB (corrected)"])
    after = json.loads((tmp_path / "catalog.json").read_text())
    notes = next(e for e in after["weights"] if e["file"] == f"{name}.safetensors")["held_out_metrics"]["notes"]
    assert [n for n in notes if n.startswith("An oracle of this test")] == [
        "An oracle of this test: first wording of the note, 1.45 dB (corrected)"]
    card = (tmp_path / f"{name}.md").read_text()
    assert "1.45 dB (corrected)" in card and first not in card
    # nothing else in the catalogue changed
    for old, new in zip(before["weights"], after["weights"]):
        if old["file"] != f"{name}.safetensors":
            assert old == new
    with pytest.raises(SystemExit, match="not in models/catalog.json"):
        ship.add_notes("no_such_weights", ["x"])
