"""regard recall's measure: recall@k of a store's index, and the cells its queries need."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from indexer.index_plan import IndexSettings
from indexer.index_tuning import RECALL_TARGET, ladder
from indexer.recall import Recall, measure_recall
from indexer.store_vectors import StoreVectors
from indexer.vector_index import VectorIndex
from service.cli import cells_advice
from tests.vector_stores import DIM, clustered, vector_store


def far_from_the_data(n: int) -> np.ndarray:
    """Random unit vectors: about as far from every cluster as a text's vector is from images."""
    vectors = np.random.default_rng(5).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_recall_says_the_fewest_cells_its_queries_need(tmp_path):
    store = vector_store(tmp_path / "s", clustered(3000))
    vectors = StoreVectors(store.db_path)
    one_cell = IndexSettings(exact_limit=500, nprobe=1, text_nprobe=1)
    index = VectorIndex.load_or_build(store, one_cell, vectors)
    nlist = index.plan.nlist
    report = measure_recall(index, vectors, far_from_the_data(30), items=40)
    assert report.text is not None and report.image is not None
    steps = sorted(set(ladder(nlist)) | {nlist // 2, nlist})
    needed = report.text.cells_needed
    assert needed in steps and needed > 1  # one cell is not enough for texts this far

    def text_recall(cells: int) -> float:
        asked = index.with_plan(replace(index.plan, nprobe=cells, text_nprobe=cells))
        text = measure_recall(asked, vectors, far_from_the_data(30), items=1).text
        assert text is not None
        return text.mean

    assert text_recall(needed) >= RECALL_TARGET
    if needed != steps[0]:
        assert text_recall(steps[steps.index(needed) - 1]) < RECALL_TARGET
    assert report.image.cells_needed in steps


def test_an_exact_index_finds_everything_and_needs_no_cells(tmp_path):
    store = vector_store(tmp_path / "s", clustered(300))
    vectors = StoreVectors(store.db_path)
    index = VectorIndex.load_or_build(store, IndexSettings(), vectors)
    report = measure_recall(index, vectors, far_from_the_data(10), items=20)
    assert index.plan.kind == "exact"
    assert report.text is not None and report.text.mean == 1.0
    assert report.text.cells_needed is None


def test_the_advice_names_the_setting_only_where_more_cells_are_needed():
    assert cells_advice(96, 32, "REGARD_INDEX_TEXT_NPROBE") == (
        f"{RECALL_TARGET} needs 96 cells, 32 scanned now: REGARD_INDEX_TEXT_NPROBE=96"
    )
    assert cells_advice(32, 96, "REGARD_INDEX_TEXT_NPROBE") == (
        f"{RECALL_TARGET} reached with 32 cells (96 scanned now)"
    )
    assert cells_advice(1, 1, "X") == f"{RECALL_TARGET} reached with 1 cell (1 scanned now)"
    assert "REGARD_INDEX_KIND=exact" in cells_advice(None, 8, "X")


def test_the_cells_needed_never_exceed_a_setting_that_already_reaches_the_target(tmp_path):
    store = vector_store(tmp_path / "s", clustered(3000))
    vectors = StoreVectors(store.db_path)
    index = VectorIndex.load_or_build(store, IndexSettings(exact_limit=500), vectors)
    texts = far_from_the_data(30)
    steps = sorted(set(ladder(index.plan.nlist)))
    # Settings between the ladder's steps, as an operator may give them.
    between = sorted({(a + b) // 2 for a, b in zip(steps, steps[1:], strict=False)} - set(steps))
    reached = 0
    for cells in between:
        asked = index.with_plan(replace(index.plan, nprobe=cells, text_nprobe=cells))
        text = measure_recall(asked, vectors, texts, items=1).text
        assert text is not None and text.cells_needed is not None
        assert (text.mean >= RECALL_TARGET) == (text.cells_needed <= cells), (cells, text)
        reached += text.mean >= RECALL_TARGET
    assert 0 < reached < len(between)  # settings on both sides of the target were tried


def test_an_item_tied_with_the_exact_kth_counts_as_found():
    exact = [[(5, 0.9), (7, 0.8)]]
    assert Recall.of([[(5, 0.9), (6, 0.8)]], exact, 2).mean == 1.0  # 6 ties with 7
    assert Recall.of([[(5, 0.9), (6, 0.79)]], exact, 2).mean == 0.5  # 6 is below it


def test_an_exact_index_finds_everything_among_many_identical_images(tmp_path):
    # Twenty copies of one picture (a museum's duplicates): their order is chance.
    vectors = clustered(300)
    vectors[100:120] = vectors[100]
    store = vector_store(tmp_path / "s", vectors)
    source = StoreVectors(store.db_path)
    index = VectorIndex.load_or_build(store, IndexSettings(kind="exact"), source)
    report = measure_recall(index, source, vectors[100:101], items=40)
    assert report.text is not None and report.text.mean == 1.0
    assert report.image is not None and report.image.mean == 1.0
