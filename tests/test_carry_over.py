"""A collection moved to another model (`regard index --from-store OLD --store NEW
--model …`): the same sources indexed into a new store, and what people made in the old
one carried over (indexer/store_carry.py): vocabularies, reviewers, decisions.

The old store is a copy of the shapes store with the shapes thesaurus, a reviewer and two
decisions; the new model is regard-test with random weights, another fingerprint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from indexer.reviewers import add_reviewer, reviewer_of
from indexer.store import Store
from indexer.store_terms import MachineSuggestion, TermStore
from service.cli import main as regard
from tests.test_terms import EX, THESAURUS, VOCABULARY, items_by_label

REVIEWER = "Marie Dupont"


def decisions_of(path: Path) -> set[tuple]:
    """Every decision as (item id, concept id, decision, by, at, the model that scored it)."""
    store = Store.open(path)
    try:
        rows = store.reader().execute(
            "SELECT i.id, c.id, d.decision, d.decided_by, d.decided_at, d.fingerprint "
            "FROM term_decisions d JOIN items i ON i.key = d.item_key "
            "JOIN concepts c ON c.key = d.concept_key"
        )
        return {tuple(row) for row in rows}
    finally:
        store.close()


@pytest.fixture(scope="module")
def old(tmp_path_factory, shapes_store: Path) -> tuple[Path, str]:
    """The old store and its reviewer's token."""
    path = tmp_path_factory.mktemp("carry") / "old"
    shutil.copytree(shapes_store, path)
    assert regard(["vocab", "add", str(THESAURUS), "--store", str(path)]) == 0
    store = Store.open(path)
    token = add_reviewer(store, REVIEWER)
    terms = TermStore(store)
    items = items_by_label(path)
    for label, concept, decision in [
        ("red circle 1", "circle", "accepted"),
        ("blue star 2", "red", "rejected"),
    ]:
        item = store.get_item(items[label])
        known = terms.concept(VOCABULARY, EX + concept)
        assert item is not None and known is not None
        assert store.model is not None
        said = MachineSuggestion(0.5, 0.3, 2, "softmax", store.model.key, "2026-11-27T10:00:00Z")
        terms.decide(item.key, known.key, decision, REVIEWER, said)
    store.close()
    return path, token


def test_a_collection_moves_to_another_model_with_what_people_did(old, tmp_path, capsys):
    old_path, token = old
    before = decisions_of(old_path)
    new_path = tmp_path / "new"
    args = ["index", "--from-store", str(old_path), "--store", str(new_path)]
    args += ["--model", "regard-test", "--pretrained", "random", "--quiet"]
    assert regard(args) == 0
    said = capsys.readouterr().out
    assert f"carried over from {old_path}: 1 vocabularies" in said and "2 decisions" in said

    new, old_store = Store.open(new_path), Store.open(old_path)
    try:
        assert new.model is not None and old_store.model is not None
        old_key = old_store.model.key
        assert new.model.key != old_key  # another model's vectors
        assert new.searchable_count() == old_store.searchable_count()
        (vocabulary,) = TermStore(new).vocabularies(new.model.key)
        assert vocabulary.name == VOCABULARY and vocabulary.embedded == vocabulary.concepts > 0
        assert reviewer_of(new, token) == REVIEWER
    finally:
        new.close()
        old_store.close()
    # The same images, terms, people and dates; the model's word was the old model's.
    assert decisions_of(new_path) == before and len(before) == 2
    assert {decision[-1] for decision in before} == {old_key}
    assert decisions_of(old_path) == before  # the old store is as it was

    # Again: nothing twice.
    assert regard(args) == 0
    assert "1 vocabularies" not in capsys.readouterr().out
    assert decisions_of(new_path) == before


def test_carrying_into_the_same_store_or_from_nothing_is_refused(old, tmp_path, capsys):
    old_path, _ = old
    same = ["index", "--from-store", str(old_path), "--store", str(old_path)]
    assert regard(same) == 1
    assert "the same store" in capsys.readouterr().err
    assert regard(["index", "--store", str(tmp_path / "new")]) == 2
    assert "--from-store" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
