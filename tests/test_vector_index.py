"""The vector index: exact or IVF by size, recall, the cache files, additions, memory limits."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess

import faiss
import numpy as np
import pytest

from indexer import vector_index
from indexer.index_memory import IndexTooLargeError, check_fits, estimate
from indexer.index_plan import IndexSettingError, IndexSettings, plan_index
from indexer.store import EmbeddedImage, PendingItem, Store
from indexer.store_vectors import StoreVectors
from indexer.vector_index import INDEX_FILE, INDEX_META_FILE, VectorIndex, refreshed
from models import TEST_MODEL
from service.cli import main as regard
from tests.vector_stores import (
    add_manifest,
    clustered,
    fingerprint,
    image_rows,
    manifest_row,
    manifest_url,
    vector_store,
)

SMALL = IndexSettings(exact_limit=500)  # tests' threshold: exact up to 500 vectors


def exact_top(vectors: np.ndarray, keys: np.ndarray, queries: np.ndarray, k: int) -> list[set]:
    scores = queries @ vectors.T
    return [set(keys[np.argsort(-row)[:k]].tolist()) for row in scores]


def recall(
    index: VectorIndex, truth: list[set], queries: np.ndarray, k: int, modality: str = "image"
) -> float:
    found = index.search(queries, k, modality)
    return np.mean(
        [len({n.key for n in row} & want) / k for row, want in zip(found, truth, strict=True)]
    )


def test_exact_up_to_the_threshold_then_ivf(tmp_path):
    small = vector_store(tmp_path / "small", clustered(400))
    index = VectorIndex.load_or_build(small, SMALL)
    assert index.plan.kind == "exact" and index.plan.chosen_by == "size"

    large = vector_store(tmp_path / "large", clustered(2000))
    index = VectorIndex.load_or_build(large, SMALL)
    described = index.describe()
    assert described["kind"] == "ivf" and described["chosen_by"] == "size"
    assert described["nlist"] >= 8 and described["nprobe"] >= 1 and described["rerank"] > 0
    assert described["count"] == 2000 and described["memory_bytes"] > 0
    # The choice and its parameters are recorded beside the index.
    meta = json.loads((large.path / INDEX_META_FILE).read_text())
    assert meta["plan"]["kind"] == "ivf" and meta["plan"]["factory"] == described["factory"]


def test_a_setting_overrides_the_choice_by_size(tmp_path):
    store = vector_store(tmp_path / "s", clustered(2000))
    forced = VectorIndex.load_or_build(store, IndexSettings(kind="exact", exact_limit=500))
    assert (forced.plan.kind, forced.plan.chosen_by) == ("exact", "setting")
    forced = VectorIndex.load_or_build(store, IndexSettings(kind="ivf", nprobe=3, rerank=50))
    assert (forced.plan.kind, forced.plan.nprobe, forced.plan.rerank) == ("ivf", 3, 50)
    with pytest.raises(ValueError, match="auto, exact, ivf"):
        IndexSettings(kind="hnsw")


def test_ivf_recall_against_exact_search(tmp_path):
    vectors = clustered(3000)
    store = vector_store(tmp_path / "s", vectors)
    index = VectorIndex.load_or_build(store, SMALL)
    assert index.plan.kind == "ivf"
    queries = clustered(50, draw=1)  # near the data, not from it
    keys = np.array(sorted(index.keys))
    truth = exact_top(vectors.astype(np.float16).astype(np.float32), keys, queries, 10)
    assert recall(index, truth, queries, 10) >= 0.95
    # The scores are exact cosines, from the stored vectors.
    top = index.search(queries[:1], 1)[0][0]
    stored = StoreVectors(store.db_path).vectors_of(np.array([top.key]))[1][0]
    assert top.score == pytest.approx(float(stored.astype(np.float32) @ queries[0]), abs=1e-5)


def far_from_the_data(n: int, dim: int = 32) -> np.ndarray:
    """Random unit vectors: about as far from every cluster as a text's vector is from images."""
    vectors = np.random.default_rng(99).standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_text_queries_scan_more_cells_than_image_queries(tmp_path):
    vectors = clustered(3000)
    store = vector_store(tmp_path / "s", vectors)
    settings = IndexSettings(exact_limit=500, nprobe=1, text_nprobe=4)
    index = VectorIndex.load_or_build(store, settings)
    plan = index.plan
    assert (plan.nprobe, plan.text_nprobe) == (1, 4) and index.describe()["text_nprobe"] == 4
    # A query far from every cluster has its neighbours spread over many cells.
    queries = far_from_the_data(40)
    keys = np.array(sorted(index.keys))
    truth = exact_top(vectors.astype(np.float16).astype(np.float32), keys, queries, 10)
    every_cell = VectorIndex.load_or_build(
        store, IndexSettings(exact_limit=500, nprobe=1, text_nprobe=10_000)
    )
    assert every_cell.plan.text_nprobe == every_cell.plan.nlist  # capped at the cells there are
    as_image = recall(every_cell, truth, queries, 10, "image")
    as_text = recall(every_cell, truth, queries, 10, "text")
    assert as_text >= 0.98 and as_image < as_text


def test_probes_default_by_size_and_follow_the_settings():
    plan = plan_index(1_000_000, IndexSettings())
    assert (plan.nlist, plan.nprobe, plan.text_nprobe) == (1024, 32, 128)
    plan = plan_index(1_000_000, IndexSettings(nprobe=64))
    assert (plan.nprobe, plan.text_nprobe) == (64, 256)
    plan = plan_index(1_000_000, IndexSettings(text_nprobe=50))
    assert (plan.nprobe, plan.text_nprobe) == (32, 50)
    environ = {"REGARD_INDEX_NPROBE": "16", "REGARD_INDEX_TEXT_NPROBE": "40"}
    settings = IndexSettings.from_env(environ)
    assert (settings.nprobe, settings.text_nprobe) == (16, 40)
    with pytest.raises(ValueError, match="REGARD_INDEX_TEXT_NPROBE must be at least 1"):
        IndexSettings(text_nprobe=0)
    assert "text_nprobe" not in plan_index(10, IndexSettings()).to_dict()  # exact: no cells


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, IndexSettings()),
        ({"REGARD_INDEX_EXACT_LIMIT": "0"}, IndexSettings(exact_limit=0)),  # 0 is 0
        ({"REGARD_INDEX_EXACT_LIMIT": ""}, IndexSettings()),  # empty is unset
        ({"REGARD_INDEX_NPROBE": " "}, IndexSettings()),
        ({"REGARD_INDEX_KIND": "IVF"}, IndexSettings(kind="ivf")),
        ({"REGARD_INDEX_MMAP": "yes"}, IndexSettings(mmap=True)),
        ({"REGARD_INDEX_MMAP": "0"}, IndexSettings(mmap=False)),
        ({"REGARD_INDEX_MEMORY_LIMIT": "3_000_000_000"}, IndexSettings(memory_limit=3 * 10**9)),
    ],
)
def test_index_settings_are_read_one_way_for_every_command(environ, expected):
    assert IndexSettings.from_env(environ) == expected


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"REGARD_INDEX_KIND": "bogus"}, "REGARD_INDEX_KIND='bogus' is not one of auto"),
        ({"REGARD_INDEX_NPROBE": "abc"}, "REGARD_INDEX_NPROBE='abc' is not a whole number"),
        ({"REGARD_INDEX_NPROBE": "0"}, "REGARD_INDEX_NPROBE must be at least 1, not 0"),
        ({"REGARD_INDEX_MMAP": "maybe"}, "REGARD_INDEX_MMAP='maybe' is not true or false"),
        ({"REGARD_INDEX_EXACT_LIMIT": "-1"}, "REGARD_INDEX_EXACT_LIMIT must be 0 or more"),
    ],
)
def test_an_index_setting_that_means_nothing_is_named(environ, words):
    with pytest.raises(IndexSettingError) as refused:
        IndexSettings.from_env(environ)
    assert words in str(refused.value)


def test_one_query_scans_an_exact_index_in_parts_with_the_same_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(vector_index, "MIN_VECTORS_PER_PART", 100)
    monkeypatch.setattr(vector_index, "_cores", lambda: 3)
    store = vector_store(tmp_path / "s", clustered(1000))
    index = VectorIndex.load_or_build(store, IndexSettings())
    assert index.plan.kind == "exact" and index.scan_parts == 3
    queries = np.concatenate([clustered(20, draw=1), far_from_the_data(20)])
    whole = index.search(queries, 10)  # several queries: one scan each, not in parts
    for query, expected in zip(queries, whole, strict=True):
        parts = index.search(query, 10)[0]
        assert [n.key for n in parts] == [n.key for n in expected]
        assert np.allclose([n.score for n in parts], [n.score for n in expected])
    # Each part is scanned by one OpenMP thread: no team of its own (models.encoder_thread).
    assert vector_index._scan_threads().submit(faiss.omp_get_max_threads).result() == 1
    # Too few vectors for two parts: one scan.
    monkeypatch.setattr(vector_index, "MIN_VECTORS_PER_PART", 600)
    assert VectorIndex.load_or_build(store, IndexSettings()).scan_parts == 1


def test_cached_index_is_loaded_unless_the_plan_changed(tmp_path):
    store = vector_store(tmp_path / "s", clustered(1000))
    assert VectorIndex.load_or_build(store, SMALL).origin == "built"
    again = VectorIndex.load_or_build(store, SMALL)
    assert again.origin == "loaded" and again.plan.kind == "ivf"
    # Search-time knobs apply to the cached index; a different kind rebuilds it.
    settings = IndexSettings(exact_limit=500, nprobe=2, text_nprobe=8)
    tuned = VectorIndex.load_or_build(store, settings)
    assert tuned.origin == "loaded" and (tuned.plan.nprobe, tuned.plan.text_nprobe) == (2, 8)
    exact = VectorIndex.load_or_build(store, IndexSettings(kind="exact"))
    assert exact.origin == "built" and exact.plan.kind == "exact"


def test_cells_are_measured_even_when_set_and_used_once_the_setting_goes(tmp_path):
    store = vector_store(tmp_path / "s", clustered(1000))
    set_by_hand = IndexSettings(exact_limit=500, nprobe=2, text_nprobe=3)
    built = VectorIndex.load_or_build(store, set_by_hand)
    assert (built.plan.nprobe, built.plan.text_nprobe) == (2, 3)
    assert built.plan.measured_nprobe > 0 and built.plan.measured_text_nprobe > 0
    again = VectorIndex.load_or_build(store, SMALL)  # the operator took the setting away
    assert again.origin == "loaded"
    assert again.plan.nprobe == built.plan.measured_nprobe
    assert again.plan.text_nprobe == built.plan.measured_text_nprobe


def test_a_save_removes_what_saves_killed_midway_left_and_only_that(tmp_path):
    store = vector_store(tmp_path / "s", clustered(300))
    gone = subprocess.Popen(["true"])  # a save's process that has ended
    gone.wait()
    running = subprocess.Popen(["sleep", "30"])  # a save still under way elsewhere
    try:
        orphan = store.path / f".{INDEX_FILE}.{gone.pid}-0badf00d.tmp"
        older_orphan = store.path / f".{INDEX_FILE}.{gone.pid}.tmp"  # named by pid alone
        in_progress = store.path / f".{INDEX_META_FILE}.{running.pid}-5eed1e55.tmp"
        orphan.write_bytes(b"half an index")
        older_orphan.write_bytes(b"half an index")
        in_progress.write_text("{}")
        VectorIndex.load_or_build(store, SMALL)
        assert not orphan.exists() and not older_orphan.exists() and in_progress.exists()
    finally:
        running.kill()


@pytest.mark.parametrize("meta", ["[]", "null", '"text"', "3"])
def test_index_meta_that_is_json_but_not_an_object_is_rebuilt(tmp_path, meta):
    store = vector_store(tmp_path / "s", clustered(300))
    VectorIndex.load_or_build(store, SMALL)
    (store.path / INDEX_META_FILE).write_text(meta)
    rebuilt = VectorIndex.load_or_build(store, SMALL)
    assert rebuilt.origin == "built" and rebuilt.size == 300
    assert isinstance(json.loads((store.path / INDEX_META_FILE).read_text()), dict)


def test_an_index_file_of_another_kind_than_its_meta_says_is_rebuilt(tmp_path):
    # Two writers (a server with other settings beside an indexer) may interleave the
    # replacement of index.faiss and index.json: each pair must agree, or be rebuilt.
    vectors = clustered(1000)
    exact_store = vector_store(tmp_path / "a", vectors)
    ivf_store = vector_store(tmp_path / "b", vectors)
    exact = VectorIndex.load_or_build(exact_store, IndexSettings(kind="exact"))
    ivf = VectorIndex.load_or_build(ivf_store, IndexSettings(kind="ivf"))
    assert (exact.plan.kind, ivf.plan.kind) == ("exact", "ivf")
    ivf_file = (ivf_store.path / INDEX_FILE).read_bytes()
    (ivf_store.path / INDEX_FILE).write_bytes((exact_store.path / INDEX_FILE).read_bytes())
    (exact_store.path / INDEX_FILE).write_bytes(ivf_file)
    for store, kind in ((exact_store, "exact"), (ivf_store, "ivf")):
        again = VectorIndex.load_or_build(store, IndexSettings(kind=kind))
        assert again.origin == "built" and again.plan.kind == kind
        [best] = again.search(vectors[7], 1)[0]
        assert best.score == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_memory_mapped_index_answers_like_the_one_in_memory(tmp_path, kind):
    vectors = clustered(1000)
    store = vector_store(tmp_path / "s", vectors)
    in_memory = VectorIndex.load_or_build(store, IndexSettings(kind=kind))
    mapped = VectorIndex.load_or_build(store, IndexSettings(kind=kind, mmap=True))
    assert mapped.plan.mmap and mapped.origin == "loaded"
    assert mapped.describe()["memory_bytes"] < in_memory.describe()["memory_bytes"]
    queries = clustered(5, draw=2)
    assert mapped.search(queries, 5) == in_memory.search(queries, 5)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
@pytest.mark.parametrize("path", ["end of a run", "server refresh"])
def test_a_memory_mapped_index_grows_in_memory_and_is_mapped_again(
    tmp_path, monkeypatch, kind, path
):
    settings = IndexSettings(kind=kind, mmap=True)
    store = vector_store(tmp_path / "s", clustered(1000))
    source = StoreVectors(store.db_path)
    first = VectorIndex.load_or_build(store, settings, source)
    assert (
        first.mapped
        and first.with_added(np.arange(5000, 5001), clustered(1), 0, copy=False) is None
    )
    file_before = (store.path / INDEX_FILE).stat().st_mtime_ns
    new_vectors = clustered(30, draw=7)
    new_keys = add_manifest(store, new_vectors, "m2")
    monkeypatch.setattr(VectorIndex, "build_from", no_rebuild)
    grown = next_index(path, first, store, source, settings)
    assert grown.origin == "added" and grown.mapped and grown.size == 1030
    assert [row[0].key for row in grown.search(new_vectors[:3], 1)] == new_keys[:3].tolist()
    assert first.size == 1000  # the one answering meanwhile is left as it was
    rewritten = (store.path / INDEX_FILE).stat().st_mtime_ns != file_before
    # A server keeps the new vectors beside the file it maps; the end of a run writes it.
    assert rewritten == (path == "end of a run")
    again = VectorIndex.load_or_build(store, settings, source)
    assert again.mapped and again.size == 1030
    assert again.origin == ("loaded" if path == "end of a run" else "added")


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_a_memory_mapped_index_with_many_vectors_beside_it_is_read_grown_and_mapped_again(
    tmp_path, monkeypatch, kind
):
    settings = IndexSettings(kind=kind, mmap=True)
    store = vector_store(tmp_path / "s", clustered(1000))
    source = StoreVectors(store.db_path)
    first = VectorIndex.load_or_build(store, settings, source)
    monkeypatch.setattr(vector_index, "RECENT_LIMIT", 20)
    monkeypatch.setattr(VectorIndex, "build_from", no_rebuild)
    new_vectors = clustered(30, draw=7)  # past the limit: no copy of a mapped index
    new_keys = add_manifest(store, new_vectors, "m2")
    grown = refreshed(first, store, settings, source)
    assert grown.origin == "added" and grown.mapped and grown.size == 1030
    assert json.loads((store.path / INDEX_META_FILE).read_text())["count"] == 1030  # saved
    assert [row[0].key for row in grown.search(new_vectors[:3], 1)] == new_keys[:3].tolist()


def test_a_store_too_large_for_memory_is_refused_with_the_way_out(tmp_path):
    store = vector_store(tmp_path / "s", clustered(1000))
    ivf_peak = estimate(plan_index(1000, IndexSettings(kind="ivf")), 1000, 32).build_peak
    exact = IndexSettings(kind="exact", memory_limit=ivf_peak)  # ivf fits, exact does not
    with pytest.raises(IndexTooLargeError) as refused:
        VectorIndex.load_or_build(store, exact)
    message = str(refused.value)
    assert "exact index of 1,000 vectors of dimension 32 needs about" in message
    assert "the limit set by REGARD_INDEX_MEMORY_LIMIT" in message
    assert "REGARD_INDEX_KIND=ivf" in message
    assert not (store.path / INDEX_FILE).exists()  # refused before building anything
    # Nothing fits at all: the message says so, rather than offering what would fail too.
    with pytest.raises(IndexTooLargeError, match="No index of this collection fits"):
        VectorIndex.load_or_build(store, IndexSettings(memory_limit=10))


def test_refusal_offers_only_what_fits():
    plan = plan_index(1_000_000, IndexSettings())
    assert plan.kind == "ivf" and plan.nlist == 1024
    with pytest.raises(IndexTooLargeError) as refused:
        check_fits(
            plan_index(1_000_000, IndexSettings(kind="exact")),
            1_000_000,
            768,
            limit=1 << 30,
            building=False,
        )
    message = str(refused.value)
    assert "1.4 GB" in message and "1.0 GB" in message
    assert "REGARD_INDEX_KIND=ivf" in message and "REGARD_INDEX_MMAP=true" in message

    # An IVF index refused: its on-disk form is offered once, not once per way to name it.
    ivf = plan_index(1_000_000, IndexSettings())
    with pytest.raises(IndexTooLargeError) as refused:
        check_fits(ivf, 1_000_000, 768, estimate(ivf, 1_000_000, 768).resident - 1, False)
    ways_out = str(refused.value).split("Choose ", 1)[1]
    assert ways_out.count("REGARD_INDEX_MMAP=true") == 1, ways_out


def next_index(
    path: str, previous: VectorIndex, store: Store, source: StoreVectors, settings=SMALL
) -> VectorIndex:
    """The index after the store changed, as a running server's refresh makes it from
    `previous`, or as the end of a run does from the saved one."""
    if path == "server refresh":
        return refreshed(previous, store, settings, source)
    return VectorIndex.load_or_build(store, settings, source)


def indexed_store(tmp_path, count: int) -> tuple[Store, StoreVectors, VectorIndex]:
    """A store of `count` clustered vectors, its vector source, and its saved index."""
    store = vector_store(tmp_path / "s", clustered(count))
    source = StoreVectors(store.db_path)
    return store, source, VectorIndex.load_or_build(store, SMALL, source)


def no_rebuild(*args, **kwargs):
    raise AssertionError("the index was rebuilt for an addition")


@pytest.mark.parametrize("settings", [IndexSettings(), SMALL], ids=["exact", "ivf"])
def test_additions_update_the_index_without_a_rebuild(tmp_path, monkeypatch, settings):
    store = vector_store(tmp_path / "s", clustered(1000))
    source = StoreVectors(store.db_path)
    before = VectorIndex.load_or_build(store, settings, source)
    new_vectors = clustered(30, draw=7)
    new_keys = add_manifest(store, new_vectors, "m2")

    monkeypatch.setattr(VectorIndex, "build_from", no_rebuild)
    after = refreshed(before, store, settings, source)
    assert after.origin == "added" and after.size == 1030
    assert after.generation == store.generation and after.plan == before.plan
    assert before.size == 1000  # the previous index is left as it was, for its readers
    top = after.search(new_vectors[:3], 1)
    assert [row[0].key for row in top] == new_keys[:3].tolist()
    # Not saved (a refresh follows every batch an indexer writes): a restart grows the
    # saved index again, rather than building it.
    meta = json.loads((store.path / INDEX_META_FILE).read_text())
    assert meta["generation"] == before.generation
    restarted = VectorIndex.load_or_build(store, settings, source)
    assert restarted.origin == "added" and restarted.size == 1030


@pytest.mark.parametrize("settings", [IndexSettings(), SMALL], ids=["exact", "ivf"])
def test_a_refresh_copies_no_index_until_many_vectors_were_added(tmp_path, monkeypatch, settings):
    # A server refreshes after each batch an indexer writes: the faiss index (hundreds of
    # MB at a million items) is shared, the batches kept beside it and scanned exactly.
    vectors = clustered(1000)
    store = vector_store(tmp_path / "s", vectors)
    source = StoreVectors(store.db_path)
    previous = VectorIndex.load_or_build(store, settings, source)
    copies = []
    real_clone = faiss.clone_index
    monkeypatch.setattr(
        vector_index.faiss, "clone_index", lambda i: copies.append(1) or real_clone(i)
    )
    monkeypatch.setattr(vector_index, "RECENT_LIMIT", 50)
    batches = [clustered(20, draw=10 + n) for n in range(4)]
    sizes = []
    for n, batch in enumerate(batches):
        keys = add_manifest(store, batch, f"batch{n}")
        previous = refreshed(previous, store, settings, source)
        sizes.append((previous.size, len(copies)))
        # The batch's own vectors find their items first; the older ones theirs.
        assert [row[0].key for row in previous.search(batch[:2], 1)] == keys[:2].tolist()
        [best] = previous.search(vectors[7], 1)[0]
        assert best.score == pytest.approx(1.0, abs=1e-2)
    # Two batches beside the index; the third passes 50: one copy takes all three in.
    assert sizes == [(1020, 0), (1040, 0), (1060, 1), (1080, 1)]
    # Saved, it holds them all (the end of a run loads it, and the next server too).
    previous.save(store.path)
    assert VectorIndex.load_or_build(store, settings, source).size == 1080


@pytest.mark.parametrize("settings", [IndexSettings(), SMALL], ids=["exact", "ivf"])
def test_a_later_run_adds_to_the_saved_index_without_a_rebuild(tmp_path, monkeypatch, settings):
    # Each `regard index` ends by loading the saved index: a run that only brought new
    # images adds their vectors to it, rather than building (and training) it again.
    store = vector_store(tmp_path / "s", clustered(1000))
    first = VectorIndex.load_or_build(store, settings)
    new_vectors = clustered(30, draw=7)
    new_keys = add_manifest(store, new_vectors, "m2")
    monkeypatch.setattr(VectorIndex, "build_from", no_rebuild)
    # The new vectors are read from the store a chunk at a time, never all at once.
    monkeypatch.setattr(vector_index, "BUILD_CHUNK_ROWS", 7)
    grown = VectorIndex.load_or_build(store, settings)
    assert grown.origin == "added" and grown.size == 1030 and grown.plan == first.plan
    assert grown.generation == store.generation
    top = grown.search(new_vectors[:3], 1)
    assert [row[0].key for row in top] == new_keys[:3].tolist()
    again = VectorIndex.load_or_build(store, settings)  # saved at the new generation
    assert again.origin == "loaded" and again.size == 1030
    assert np.array_equal(again.keys, grown.keys)
    # A third run adds to what the second one saved.
    add_manifest(store, clustered(20, draw=8), "m3")
    assert VectorIndex.load_or_build(store, settings).size == 1050


def unclustered(n: int, seed: int = 5) -> np.ndarray:
    """Unit vectors in no cluster at all: images unlike the collection's (another fonds)."""
    vectors = np.random.default_rng(seed).standard_normal((n, 32)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("path", ["end of a run", "server refresh"])
def test_an_ivf_index_grown_by_a_quarter_measures_its_cells_again(tmp_path, path):
    store = vector_store(tmp_path / "s", clustered(1000))
    source = StoreVectors(store.db_path)
    first = VectorIndex.load_or_build(store, SMALL, source)
    assert first.plan.kind == "ivf" and first.plan.measured_count == 1000

    def grown(previous: VectorIndex) -> VectorIndex:
        return next_index(path, previous, store, source)

    add_manifest(store, clustered(100, draw=3), "m2")  # a tenth more: the cells stand
    a_little = grown(first)
    assert a_little.origin == "added" and a_little.plan == first.plan
    # Images of another kind, lying in no cluster: their neighbours spread over more cells.
    add_manifest(store, unclustered(400), "m3")
    much = grown(a_little)
    assert much.origin == "added" and much.size == 1500
    assert much.plan.measured_count == 1500 and much.plan.nlist == first.plan.nlist
    assert much.plan.measured_nprobe > first.plan.measured_nprobe
    assert much.plan.nprobe == much.plan.measured_nprobe  # and searched with them
    saved = json.loads((store.path / INDEX_META_FILE).read_text())["plan"]
    assert saved["measured_count"] == 1500 and saved["nprobe"] == much.plan.nprobe


def test_a_saved_index_of_vectors_embedded_again_since_is_rebuilt(tmp_path):
    vectors = clustered(300)
    store = vector_store(tmp_path / "s", vectors)
    source = StoreVectors(store.db_path)
    VectorIndex.load_or_build(store, SMALL, source)
    with source.snapshot() as snapshot:
        key = int(snapshot.keys()[0])
    replacement = clustered(1, draw=9)[0]
    store.save_vectors([EmbeddedImage(key, replacement, "u", 10, 8)], fingerprint()["key"])
    add_manifest(store, clustered(10, draw=4), "m2")
    rebuilt = VectorIndex.load_or_build(store, SMALL, source)
    assert rebuilt.origin == "built" and rebuilt.size == 310
    [best] = rebuilt.search(replacement, 1)[0]
    assert best.key == key and best.score == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("path", ["end of a run", "server refresh"])
def test_an_item_that_failed_then_was_embedded_again_is_held_once(tmp_path, path):
    # Its failure takes it out of search (a change no index may be grown over); its new
    # vector later is then no addition to an index that still holds the old one.
    store, source, before = indexed_store(tmp_path, 300)
    key = int(before.keys[0])
    store.record_item_failure(
        None, PendingItem(key, "x", None, None, None, None), "u", "fetch", "x"
    )
    assert store.generation > before.generation
    replacement = clustered(1, draw=9)[0]
    store.save_vectors([EmbeddedImage(key, replacement, "u", 10, 8)], fingerprint()["key"])
    index = next_index(path, before, store, source, SMALL)
    assert index.origin == "built" and index.size == 300
    [best, second] = index.search(replacement, 2)[0]
    assert best.key == key and best.score == pytest.approx(1.0, abs=1e-3)
    assert second.key != key


@pytest.mark.parametrize("path", ["end of a run", "server refresh"])
def test_a_growth_that_would_hold_an_item_twice_is_built_anew(tmp_path, path):
    # The safety net under the store's account of its changes: were it wrong (here,
    # made to say that an item embedded again was an addition), the index is rebuilt.
    store, source, before = indexed_store(tmp_path, 300)
    key = int(before.keys[0])
    store.save_vectors([EmbeddedImage(key, clustered(1, draw=9)[0], "u", 10, 8)], "x")
    store._conn().execute("UPDATE generations SET only_added = 1")
    index = next_index(path, before, store, source, SMALL)
    assert index.origin == "built" and index.size == 300
    assert len(np.unique(index.keys)) == 300


def test_an_index_saved_before_a_restore_is_not_added_to(tmp_path):
    # Backup, then one item embedded again and the index saved; the backup restored, then
    # a run adds images. The same keys are searchable as when the index was saved, but
    # one of them holds its older vector again: the index must not be reused.
    store = vector_store(tmp_path / "s", clustered(300))
    keys = add_manifest(store, clustered(5, draw=2), "m2")
    original = clustered(5, draw=2)[0]
    backup = tmp_path / "backup.sqlite"
    with sqlite3.connect(backup) as copy:
        store._conn().backup(copy)
    store.save_vectors(
        [EmbeddedImage(int(keys[0]), clustered(1, draw=9)[0], "u", 10, 8)], fingerprint()["key"]
    )
    VectorIndex.load_or_build(store, SMALL)
    store.close()
    with sqlite3.connect(backup) as copy, sqlite3.connect(store.db_path) as target:
        copy.backup(target)
    restored = Store.open(store.path)
    add_manifest(restored, clustered(10, draw=4), "m3")
    index = VectorIndex.load_or_build(restored, SMALL)
    assert index.origin == "built" and index.size == 315
    [best] = index.search(original, 1)[0]
    assert best.key == keys[0] and best.score == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("path", ["end of a run", "server refresh"])
def test_items_searchable_again_with_their_older_vectors_rebuild_the_index(tmp_path, path):
    # A manifest dropped from its collection and listed again: its items come back with
    # the vectors they had, written before the index was. Growing the index with what
    # was written since it would miss them.
    store = vector_store(tmp_path / "s", clustered(600))
    back_vectors = clustered(20, draw=3)
    back = add_manifest(store, back_vectors, "back")
    source = StoreVectors(store.db_path)
    store.remove_manifests([manifest_url("back")])
    without = VectorIndex.load_or_build(store, SMALL, source)
    assert without.size == 600
    # Listed again: searchable, not embedded again.
    store.save_manifest(manifest_row("back"), image_rows(manifest_url("back"), 20))
    assert store.pending_items() == []
    add_manifest(store, clustered(5, draw=4), "new")
    index = next_index(path, without, store, source, SMALL)
    assert index.origin == "built" and index.size == 625
    [best] = index.search(back_vectors[0], 1)[0]
    assert best.key == back[0] and best.score == pytest.approx(1.0, abs=1e-3)


def as_schema_3(store: Store) -> Store:
    """The store as Regard wrote it before the generations were recorded, opened again
    (migrated): it knows only the generation it is at."""
    store.close()
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("DROP TABLE generations")
        conn.execute("DROP INDEX vectors_generation")
        conn.execute("PRAGMA user_version = 3")
    return Store.open(store.path)


def test_a_store_migrated_grows_the_index_saved_at_its_generation_and_rebuilds_an_older_one(
    tmp_path, monkeypatch
):
    current = vector_store(tmp_path / "current", clustered(600))
    VectorIndex.load_or_build(current, SMALL)
    current = as_schema_3(current)
    add_manifest(current, clustered(10, draw=4), "m2")
    assert VectorIndex.load_or_build(current, SMALL).origin == "added"

    older = vector_store(tmp_path / "older", clustered(600))
    VectorIndex.load_or_build(older, SMALL)
    add_manifest(older, clustered(10, draw=4), "m2")
    older = as_schema_3(older)  # what changed since the index was saved is not known
    add_manifest(older, clustered(10, draw=5), "m3")
    rebuilt = VectorIndex.load_or_build(older, SMALL)
    assert rebuilt.origin == "built" and rebuilt.size == 620


def test_the_vectors_added_since_an_index_are_found_by_their_generation_not_a_scan(tmp_path):
    # A server refreshes its index each time an indexer writes a batch: at a million
    # items a pass over the vectors table would cost seconds every time.
    store = vector_store(tmp_path / "s", clustered(600))
    generation = store.generation
    add_manifest(store, clustered(10, draw=4), "m2")
    with StoreVectors(store.db_path).snapshot() as snapshot:
        assert snapshot.only_added_since(generation)
        assert snapshot.count_and_dim_since(generation) == (10, 32)
        [(keys, vectors)] = list(snapshot.chunks_since(generation, 100))
        assert len(keys) == 10 and vectors.shape == (10, 32)
        statements: list[str] = []
        snapshot._conn.set_trace_callback(statements.append)
        list(snapshot.chunks_since(generation, 4))
        snapshot.count_and_dim_since(generation)
        snapshot._conn.set_trace_callback(None)
        assert len(statements) >= 4  # two chunks of 4, the end, the count and the dim
        for statement in statements:
            plan = " ".join(
                row[3] for row in snapshot._conn.execute("EXPLAIN QUERY PLAN " + statement)
            )
            assert "INDEX vectors_generation" in plan, plan


@pytest.mark.parametrize("settings", [IndexSettings(kind="exact"), SMALL], ids=["exact", "ivf"])
def test_an_index_file_left_under_another_saves_meta_is_rebuilt(tmp_path, settings):
    # Two writers (a server and an indexer) replace index.faiss and index.json one after
    # the other: interleaved, one's index may sit under the other's meta, with the same
    # count and kind. Here: the index from before an item was embedded again.
    store = vector_store(tmp_path / "s", clustered(600))
    source = StoreVectors(store.db_path)
    VectorIndex.load_or_build(store, settings, source)
    older = tmp_path / "older.faiss"
    shutil.copy2(store.path / INDEX_FILE, older)  # as a rename would leave it
    with source.snapshot() as snapshot:
        key = int(snapshot.keys()[5])
    replacement = clustered(1, draw=9)[0]
    store.save_vectors([EmbeddedImage(key, replacement, "u", 10, 8)], fingerprint()["key"])
    assert VectorIndex.load_or_build(store, settings, source).origin == "built"
    os.replace(older, store.path / INDEX_FILE)  # the other writer's file, renamed last
    again = VectorIndex.load_or_build(store, settings, source)
    assert again.origin == "built"
    [best] = again.search(replacement, 1)[0]
    assert best.key == key and best.score == pytest.approx(1.0, abs=1e-3)


def test_regard_index_adds_a_later_runs_images_to_the_saved_index(tmp_path, iiif_server, capsys):
    store = tmp_path / "store"
    options = ["--store", str(store), "--model", TEST_MODEL, "--quiet"]
    shapes = f"{iiif_server.base_url}/shapes/manifest.json?per_pair=1"
    assert regard(["index", shapes, *options]) == 0
    assert "saved index" not in capsys.readouterr().out  # the first run builds it
    first = json.loads((store / INDEX_META_FILE).read_text())
    assert regard(["index", iiif_server.url("v3/vam_ocean-liners.json"), *options]) == 0
    assert "the new vectors were added to the saved index: no rebuild" in capsys.readouterr().out
    second = json.loads((store / INDEX_META_FILE).read_text())
    assert second["generation"] > first["generation"] and second["count"] > first["count"]
    with StoreVectors(store / "store.sqlite").snapshot() as snapshot:
        assert second["count"] == snapshot.count_and_dim()[0]


def test_removed_items_rebuild_the_index(tmp_path):
    store = vector_store(tmp_path / "s", clustered(600))
    gone = add_manifest(store, clustered(20, draw=3), "gone")
    source = StoreVectors(store.db_path)
    before = VectorIndex.load_or_build(store, SMALL, source)
    store.remove_manifests([manifest_url("gone")])
    after = refreshed(before, store, SMALL, source)
    assert after.origin == "built" and after.size == 600
    assert not set(gone.tolist()) & set(after.keys.tolist())


def test_ivf_never_returns_items_that_left_since_it_was_built(tmp_path):
    store = vector_store(tmp_path / "s", clustered(600))
    gone_vectors = clustered(20, draw=3)
    gone = add_manifest(store, gone_vectors, "gone")
    index = VectorIndex.load_or_build(store, SMALL)
    store.remove_manifests([manifest_url("gone")])  # the index is now stale
    found = {n.key for row in index.search(gone_vectors, 10) for n in row}
    assert found and not found & set(gone.tolist())


def test_an_index_written_before_plans_is_rebuilt(tmp_path):
    store = vector_store(tmp_path / "s", clustered(100))
    VectorIndex.load_or_build(store, IndexSettings(kind="exact"))
    meta_file = store.path / INDEX_META_FILE
    meta = json.loads(meta_file.read_text())
    del meta["plan"]
    meta_file.write_text(json.dumps(meta))
    rebuilt = VectorIndex.load_or_build(store)
    assert rebuilt.origin == "built" and rebuilt.plan.code == "SQfp16"


def test_an_index_built_from_arrays_takes_additions_too():
    vectors, more = clustered(800), clustered(20, draw=8)
    index = VectorIndex.build(np.arange(1, 801), vectors, generation=1, settings=SMALL)
    assert index.plan.kind == "ivf"
    added = index.with_added(np.arange(801, 821), more, generation=2)
    assert [row[0].key for row in added.search(more[:3], 1)] == [801, 802, 803]
    assert index.search(more[:1], 1)[0][0].key <= 800  # the original is unchanged
