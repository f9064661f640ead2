"""An IVF index measures, as it is built, how many cells each kind of query must scan."""

from __future__ import annotations

import json

import faiss
import numpy as np

from indexer.exact_top import ExactTop, best_of_chunks
from indexer.index_plan import IndexSettings
from indexer.index_tuning import RECALL_TARGET, Probes, ladder, tune
from indexer.vector_index import INDEX_META_FILE, VectorIndex
from tests.vector_stores import clustered, vector_store

SMALL = IndexSettings(exact_limit=500)  # tests' threshold: exact up to 500 vectors


def unclustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors with no clusters at all: a query's neighbours lie in many cells."""
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_ladder_runs_from_a_few_cells_to_a_quarter_of_them():
    assert ladder(1024) == [32, 48, 64, 96, 128, 192, 256]  # never fewer than 1/32
    assert ladder(256) == [8, 12, 16, 24, 32, 48, 64]  # and never fewer than 8
    assert ladder(13) == [8, 12, 13]  # a small index may scan every cell
    assert ladder(4) == [4] and ladder(1) == [1]


def test_exact_top_over_chunks_matches_one_scan_of_everything():
    vectors = unclustered(1234, dim=8)
    keys = np.arange(100, 100 + len(vectors))
    queries = unclustered(250, dim=8, seed=1)  # more queries than one block
    chunks = ((keys[s : s + 500], vectors[s : s + 500]) for s in range(0, len(keys), 500))
    found, scores = best_of_chunks(queries, chunks, 7)
    everything = queries @ vectors.T
    best = np.argsort(-everything, axis=1)[:, :7]
    assert np.array_equal(found, keys[best])
    assert np.allclose(scores, np.take_along_axis(everything, best, 1), atol=1e-6)


def ivf_over(vectors: np.ndarray, nlist: int) -> tuple[faiss.Index, np.ndarray]:
    keys = np.arange(1, len(vectors) + 1, dtype=np.int64)
    index = faiss.index_factory(vectors.shape[1], f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add_with_ids(vectors, keys)
    return index, keys


def recall_scanning(index, probes: Probes, exact: ExactTop, cells: int, kind: str) -> float:
    """The probes' recall@10 with `cells` scanned, counted plainly, each probe's own item
    left out: what `tune` must have found."""
    queries = probes.image if kind == "image" else probes.text
    rows = exact.keys[: len(queries)] if kind == "image" else exact.keys[len(queries) :]
    params = faiss.SearchParametersIVF(nprobe=cells)
    _, found = index.search(queries, 50, params=params)
    shares = []
    for own, truth, got in zip(probes.own_keys, rows, found, strict=True):
        wanted = [key for key in truth.tolist() if key != own][:10]
        shares.append(len(set(wanted) & set(got.tolist())) / len(wanted))
    return float(np.mean(shares))


def test_tune_keeps_the_fewest_cells_that_reach_the_target():
    vectors = unclustered(12_000, dim=12)
    index, keys = ivf_over(vectors, 256)
    probes = Probes.draw(keys, vectors, count=100)
    exact = probes.exact_top()
    exact.add(keys, vectors)
    tuning = tune(index, probes, exact, rerank=50)
    cells = ladder(256)
    assert cells[0] < tuning.nprobe < cells[-1]  # neither the fewest cells nor the most
    for kind, chosen, measured in (
        ("image", tuning.nprobe, tuning.recall),
        ("text", tuning.text_nprobe, tuning.text_recall),
    ):
        assert chosen in cells
        assert measured == round(recall_scanning(index, probes, exact, chosen, kind), 4)
        assert measured >= RECALL_TARGET or chosen == cells[-1]
        if chosen != cells[0]:  # one step fewer falls short
            fewer = cells[cells.index(chosen) - 1]
            assert recall_scanning(index, probes, exact, fewer, kind) < RECALL_TARGET


def test_the_build_measures_the_cells_records_them_and_loads_them(tmp_path):
    store = vector_store(tmp_path / "s", clustered(3000))
    built = VectorIndex.load_or_build(store, SMALL)
    plan = built.plan
    assert plan.kind == "ivf" and plan.measured_nprobe in ladder(plan.nlist)
    assert (plan.nprobe, plan.text_nprobe) == (plan.measured_nprobe, plan.measured_text_nprobe)
    assert plan.measured_recall >= RECALL_TARGET
    described = built.describe()
    assert described["measured_text_recall"] == plan.measured_text_recall > 0
    recorded = json.loads((store.path / INDEX_META_FILE).read_text())["plan"]
    assert recorded["measured_nprobe"] == plan.measured_nprobe
    loaded = VectorIndex.load_or_build(store, SMALL)
    assert loaded.origin == "loaded" and loaded.plan == plan
    # An operator's setting wins at load time over what was measured.
    set_by_hand = VectorIndex.load_or_build(store, IndexSettings(exact_limit=500, nprobe=3))
    assert set_by_hand.origin == "loaded" and set_by_hand.plan.nprobe == 3
    assert set_by_hand.plan.text_nprobe == plan.measured_text_nprobe


def test_a_collection_without_clusters_gets_more_cells_than_a_clustered_one(tmp_path):
    settings = IndexSettings(kind="ivf")
    clustered_index = VectorIndex.build(np.arange(1, 6001), clustered(6000, dim=16), 1, settings)
    spread_index = VectorIndex.build(np.arange(1, 6001), unclustered(6000), 1, settings)
    assert clustered_index.plan.nlist == spread_index.plan.nlist
    assert spread_index.plan.nprobe > clustered_index.plan.nprobe
    # What was measured holds for new queries: recall@10 of new vectors near the data.
    queries = unclustered(100, seed=7)
    truth, _ = best_of_chunks(queries, [(spread_index.keys, unclustered(6000))], 10)
    found = spread_index.search(queries, 10)
    shares = [
        len({n.key for n in row} & set(want.tolist())) / 10
        for row, want in zip(found, truth, strict=True)
    ]
    assert np.mean(shares) >= 0.9


def test_cells_set_by_the_operator_are_used_and_measured_all_the_same():
    vectors = clustered(3000)
    keys = np.arange(1, 3001)
    measured = VectorIndex.build(keys, vectors, 1, IndexSettings(kind="ivf")).plan
    both = VectorIndex.build(keys, vectors, 1, IndexSettings(kind="ivf", nprobe=3, text_nprobe=5))
    assert (both.plan.nprobe, both.plan.text_nprobe) == (3, 5)
    # What was measured stays on record, for when the setting goes (test_vector_index).
    assert (both.plan.measured_nprobe, both.plan.measured_text_nprobe) == (
        measured.measured_nprobe,
        measured.measured_text_nprobe,
    )
    image_only = VectorIndex.build(keys, vectors, 1, IndexSettings(kind="ivf", nprobe=3))
    assert image_only.plan.nprobe == 3 and image_only.plan.measured_nprobe > 0
    assert image_only.plan.text_nprobe == image_only.plan.measured_text_nprobe > 0


def test_an_index_built_before_cells_were_measured_loads_with_the_old_shares(tmp_path):
    store = vector_store(tmp_path / "s", clustered(3000))
    built = VectorIndex.load_or_build(store, SMALL)
    meta_file = store.path / INDEX_META_FILE
    meta = json.loads(meta_file.read_text())
    for name in list(meta["plan"]):
        if name.startswith("measured_"):
            del meta["plan"][name]
    meta_file.write_text(json.dumps(meta))  # as an earlier version wrote it
    loaded = VectorIndex.load_or_build(store, SMALL)
    assert loaded.origin == "loaded" and loaded.plan.nlist == built.plan.nlist
    old_share = max(8, built.plan.nlist // 32)
    assert (loaded.plan.nprobe, loaded.plan.text_nprobe) == (
        min(old_share, built.plan.nlist),
        min(4 * old_share, built.plan.nlist),
    )
    assert loaded.plan.measured_nprobe == 0
