"""Decisions read from a CSV file (`regard import`), the other half of `regard export
--format csv`: a round trip keeps every decision as it was; rows the store cannot take
are named with their line, and the others are recorded.

The stores are copies of the shapes store with the shapes thesaurus, one of them with
two decisions, as tests/test_carry_over.py makes it.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from service.cli import main as regard
from tests import test_carry_over
from tests.test_carry_over import decisions_of
from tests.test_terms import EX, THESAURUS, VOCABULARY, items_by_label

old = test_carry_over.old  # its store with two decisions, a fixture of this module too


def fresh_store(shapes_store: Path, folder: Path) -> Path:
    shutil.copytree(shapes_store, folder)
    assert regard(["vocab", "add", str(THESAURUS), "--store", str(folder)]) == 0
    return folder


def row(item_id: str, concept: str, decision: str) -> dict[str, str]:
    return {
        "item_id": item_id,
        "vocabulary": VOCABULARY,
        "concept_id": EX + concept,
        "decision": decision,
    }


def test_exported_decisions_import_as_they_were(old, shapes_store, tmp_path, capsys):
    old_path, _ = old
    exported = tmp_path / "decisions.csv"
    args = ["export", "--store", str(old_path), "--format", "csv", "--output", str(exported)]
    assert regard([*args, "--suggestions", "2"]) == 0
    target = fresh_store(shapes_store, tmp_path / "store")
    capsys.readouterr()
    assert regard(["import", str(exported), "--store", str(target)]) == 0
    said = capsys.readouterr().out
    assert "2 decisions recorded: 1 accepted, 1 rejected, 0 withdrawn" in said
    assert "machine suggestions skipped" in said and " 0 machine suggestions" not in said
    assert decisions_of(target) == decisions_of(old_path) and len(decisions_of(target)) == 2
    # Again: the same decisions, nothing twice.
    assert regard(["import", str(exported), "--store", str(target)]) == 0
    assert decisions_of(target) == decisions_of(old_path)


def test_rows_the_store_cannot_take_are_named_and_the_others_recorded(
    shapes_store, tmp_path, capsys
):
    target = fresh_store(shapes_store, tmp_path / "store")
    item = items_by_label(target)["red circle 1"]
    rows = [
        row(item, "circle", "accepted"),
        row("nothing", "red", "accepted"),
        row(item, "oval", "accepted"),
        row(item, "red", "maybe"),
    ]
    path = tmp_path / "mine.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert regard(["import", str(path), "--store", str(target), "--reviewer", "Marie"]) == 1
    out, err = capsys.readouterr()
    assert "1 decisions recorded: 1 accepted" in out
    assert "mine.csv:3: no image 'nothing' in this store" in err
    assert f"mine.csv:4: no concept '{EX}oval' in vocabulary '{VOCABULARY}'" in err
    assert "mine.csv:5: the decision 'maybe' is none of accepted, rejected, undecided" in err
    ((item_id, concept, decision, by, _, model),) = decisions_of(target)
    assert (item_id, concept, decision, by) == (item, EX + "circle", "accepted", "Marie")
    assert model is None  # no machine suggestion in the file

    # A file without the columns a decision needs is refused before anything is read.
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,concept\nx,y\n")
    assert regard(["import", str(bad), "--store", str(target)]) == 1
    assert "no column vocabulary, concept_id, decision" in capsys.readouterr().err
