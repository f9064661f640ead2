"""The searcher: text cache, items that left, refreshes while others search, memory limits;
and the parameters of `GET /api/search` and "more like this", as a real server takes them.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from indexer import search as search_module
from indexer.index_memory import IndexTooLargeError, estimate
from indexer.index_plan import IndexSettings, plan_index
from indexer.search import Searcher
from indexer.store import PendingItem
from indexer.text_cache import TextEmbeddingCache
from indexer.vector_index import VectorIndex
from tests.vector_stores import DIM, add_manifest, clustered, manifest_url, vector_store

SMALL = IndexSettings(exact_limit=500)


def near_twins(n: int, seed: int) -> np.ndarray:
    """n vectors nearly alike and far from the rest: each other's nearest neighbours."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal(DIM) + 0.05 * rng.standard_normal((n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


class CountingEncoder:
    """Texts to fixed vectors (a text names the item whose vector it returns)."""

    def __init__(self, vectors: np.ndarray, key: str = "toy|sha256:0|32"):
        self.vectors = vectors
        self.calls: list[str] = []
        self.fingerprint = type("Fingerprint", (), {"key": key})()

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        self.calls += texts
        return np.stack([self.vectors[int(text.split()[-1])] for text in texts])


@pytest.mark.parametrize("settings", [IndexSettings(), SMALL], ids=["exact", "ivf"])
def test_repeated_text_queries_hit_the_cache(tmp_path, settings):
    vectors = clustered(600)
    store = vector_store(tmp_path / "s", vectors)
    encoder = CountingEncoder(vectors)
    searcher = Searcher(store, encoder, settings)
    first = searcher.search_text("item 3", 5)
    again = searcher.search_text("item 3", 5)
    assert encoder.calls == ["item 3"]
    assert [h.item.key for h in first] == [h.item.key for h in again]
    assert first[0].item.key == 4 and first[0].score == pytest.approx(1.0, abs=1e-3)
    searcher.search_text(" item  3\n", 5)  # the same query, spaced otherwise
    assert encoder.calls == ["item 3"]
    searcher.search_text("forgé 3", 5)
    searcher.search_text("forge\u0301 3", 5)  # "é" as e + a combining accent: the same query
    assert encoder.calls == ["item 3", "forgé 3"]
    assert searcher.describe()["text_cache"] == {"size": 1024, "entries": 2, "hits": 3, "misses": 2}


def test_text_cache_keeps_the_most_recent_and_separates_models():
    cache = TextEmbeddingCache(size=2)
    calls: list[str] = []

    def embed(text: str) -> np.ndarray:
        calls.append(text)
        return np.full(4, len(calls), dtype=np.float32)

    cache.get("a", "one", embed)
    cache.get("a", "two", embed)
    cache.get("a", "one", embed)  # "two" is now the least recent
    cache.get("a", "three", embed)
    cache.get("a", "one", embed)
    cache.get("b", "one", embed)  # another model: another vector
    assert calls == ["one", "two", "three", "one"]
    vector = cache.get("a", "one", embed)
    with pytest.raises(ValueError):
        vector[0] = 0  # shared between requests: read-only


def test_index_searches_run_where_the_searcher_is_told(tmp_path):
    vectors = clustered(600)
    store = vector_store(tmp_path / "s", vectors)
    ran: list[tuple[str, int]] = []

    def run_search(search, *args):  # the service gives the model's thread (EncoderThread.run)
        ran.append((args[2], threading.get_ident()))
        return search(*args)

    searcher = Searcher(store, CountingEncoder(vectors), SMALL, run_search=run_search)
    assert searcher.search_text("item 3", 5)[0].item.key == 4
    item = searcher.search_text("item 7", 1)[0].item
    assert searcher.similar(item, 5)
    assert [modality for modality, _ in ran] == ["text", "text", "image"]


def test_text_queries_get_the_text_probes_and_image_vectors_the_image_ones(tmp_path):
    vectors = clustered(3000)
    store = vector_store(tmp_path / "s", vectors)
    # Far from every cluster, as texts are from images: neighbours spread over many cells.
    far = np.random.default_rng(3).standard_normal((30, DIM)).astype(np.float32)
    far /= np.linalg.norm(far, axis=1, keepdims=True)
    settings = IndexSettings(exact_limit=500, nprobe=1, text_nprobe=10_000)  # text: every cell
    searcher = Searcher(store, CountingEncoder(far), settings)
    stored = vectors.astype(np.float16).astype(np.float32)
    truth = [set((np.argsort(-(stored @ q))[:10] + 1).tolist()) for q in far]  # keys from 1

    def found(hits):
        return {h.item.key for h in hits}

    by_text = [found(searcher.search_text(f"item {i}", 10)) for i in range(len(far))]
    by_vector = [found(searcher.search_vector(q, 10)) for q in far]
    text_recall = np.mean([len(f & t) / 10 for f, t in zip(by_text, truth, strict=True)])
    image_recall = np.mean([len(f & t) / 10 for f, t in zip(by_vector, truth, strict=True)])
    assert text_recall >= 0.98 and image_recall < text_recall


@pytest.mark.parametrize("settings", [IndexSettings(), SMALL], ids=["exact", "ivf"])
def test_removed_and_failed_items_are_never_returned(tmp_path, settings):
    vectors = clustered(600)
    store = vector_store(tmp_path / "s", vectors)
    gone_vectors = near_twins(10, seed=4)
    gone = set(add_manifest(store, gone_vectors, "gone").tolist())
    searcher = Searcher(store, CountingEncoder(vectors), settings)
    assert gone <= {h.item.key for h in searcher.search_vector(gone_vectors[0], 10)}

    # A failed item leaves search at once, without a new generation or a rebuild.
    failed = next(iter(gone))
    store.record_item_failure(
        None, PendingItem(failed, "x", None, None, None, None), "u", "fetch", "HTTP 404"
    )
    hits = searcher.search_vector(gone_vectors[0], 10)
    assert failed not in {h.item.key for h in hits} and len(hits) == 10

    store.remove_manifests([manifest_url("gone")])
    for vector in gone_vectors:
        hits = searcher.search_vector(vector, 10)
        assert len(hits) == 10 and not gone & {h.item.key for h in hits}
    assert searcher.refresh().size == 600


def test_parallel_queries_are_answered_by_the_previous_index_during_a_rebuild(
    tmp_path, monkeypatch
):
    vectors = clustered(300)
    store = vector_store(tmp_path / "s", vectors)
    searcher = Searcher(store, CountingEncoder(vectors))
    previous = searcher.index()
    store.remove_manifests([manifest_url("m1")])  # a removal: a full rebuild
    new_vectors = clustered(40, draw=5)
    new_keys = set(add_manifest(store, new_vectors, "m2").tolist())

    started, release = threading.Event(), threading.Event()
    real_refreshed = search_module.refreshed

    def slow_refreshed(*args, **kwargs):
        started.set()
        assert release.wait(10)
        return real_refreshed(*args, **kwargs)

    monkeypatch.setattr(search_module, "refreshed", slow_refreshed)
    with ThreadPoolExecutor(max_workers=6) as pool:
        # The query that notices the change starts the rebuild and does not wait for it.
        assert pool.submit(searcher.index).result(timeout=10) is previous
        assert started.wait(10)
        # While it rebuilds, queries get answers at once, from the whole previous index
        # (never a part-built one), with m1's items filtered out as removed.
        indexes = [pool.submit(searcher.index) for _ in range(20)]
        searches = [pool.submit(searcher.search_vector, v, 5) for v in new_vectors[:10]]
        assert all(f.result(timeout=10) is previous for f in indexes)
        assert all(f.result(timeout=10) == [] for f in searches)
        assert searcher.describe()["refreshing"] is True  # as /api/stats says it
        release.set()
    fresh = searcher.refresh()
    assert fresh.size == 40 and fresh.generation == store.generation
    assert searcher.describe()["refreshing"] is False
    assert {h.item.key for h in searcher.search_vector(new_vectors[0], 5)} <= new_keys


def test_while_an_indexer_writes_a_refresh_starts_at_most_every_few_seconds(tmp_path, monkeypatch):
    vectors = clustered(300)
    store = vector_store(tmp_path / "s", vectors)
    searcher = Searcher(store, CountingEncoder(vectors))
    first = searcher.index()
    add_manifest(store, clustered(10, draw=5), "batch1")
    searcher.index()  # the first change since a while: refreshed at once, behind it
    grown = searcher.refresh()  # waits for that refresh
    assert grown.size == 310 and grown is not first
    add_manifest(store, clustered(10, draw=6), "batch2")  # the indexer's next batch
    # Within the interval, queries go on with the index they have: no copy of it per batch.
    assert searcher.index() is grown
    with searcher._refresh_lock:  # a refresh it might have started has ended
        assert searcher.index() is grown
    monkeypatch.setattr(search_module, "REFRESH_INTERVAL_S", 0.0)  # the interval is over
    searcher.index()
    with searcher._refresh_lock:
        assert searcher.index().size == 320


def test_a_store_too_large_is_refused_at_start_and_the_previous_index_kept_later(tmp_path):
    vectors = clustered(400)
    store = vector_store(tmp_path / "s", vectors)
    exact = plan_index(400, IndexSettings())
    fits_400 = estimate(exact, 400, DIM).build_peak
    with pytest.raises(IndexTooLargeError, match="400 vectors of dimension 32"):
        Searcher(store, CountingEncoder(vectors), IndexSettings(memory_limit=100)).index()

    searcher = Searcher(store, CountingEncoder(vectors), IndexSettings(memory_limit=fits_400))
    previous = searcher.index()
    add_manifest(store, clustered(1600, draw=6), "m2")  # now far too large
    assert searcher.refresh() is previous
    assert searcher.search_vector(vectors[0], 1)[0].item.key == 1
    assert "2,000 vectors" in searcher.describe()["stale"]


def test_a_refresh_counts_the_index_answering_meanwhile_against_the_limit(tmp_path):
    vectors = clustered(400)
    store = vector_store(tmp_path / "s", vectors)
    add_manifest(store, clustered(40, draw=3), "m2")
    # Room to build an index of 440 vectors, not beside another one answering meanwhile.
    limit = estimate(plan_index(440, IndexSettings()), 440, DIM).build_peak
    searcher = Searcher(store, CountingEncoder(vectors), IndexSettings(memory_limit=limit))
    previous = searcher.index()
    store.remove_manifests([manifest_url("m2")])
    add_manifest(store, clustered(40, draw=4), "m3")  # a removal: a full rebuild
    assert searcher.refresh() is previous  # refused: answering goes on from the previous
    stale = searcher.describe()["stale"]
    assert "less the" in stale and "of the index answering meanwhile" in stale


def test_describe_reports_the_index_choice(tmp_path):
    store = vector_store(tmp_path / "s", clustered(600))
    described = Searcher(store, CountingEncoder(clustered(1)), SMALL).describe()
    assert described["kind"] == "ivf" and described["chosen_by"] == "size"
    assert described["count"] == 600 and described["generation"] == store.generation
    assert isinstance(VectorIndex.load_or_build(store, SMALL).describe()["nprobe"], int)


# ---- the parameters of the HTTP API, sent as written to a real `regard serve` -----------


def get_raw(service, path_and_query: str) -> tuple[int, dict]:
    """GET a URL exactly as written: percent-escapes reach the server untouched."""
    try:
        with urllib.request.urlopen(service.url + path_and_query, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_an_empty_k_as_a_form_sends_it_is_the_default(live_service):
    status, body = get_raw(live_service, "/api/search?q=circle&k=")
    assert status == 200 and body["k"] == 24 and len(body["results"]) == 24
    item = body["results"][0]["id"]
    status, body = get_raw(live_service, f"/api/items/{item}/similar?k=")
    assert status == 200 and body["k"] == 24


@pytest.mark.parametrize("path", ["/api/search?q=circle&k=abc", "/api/items/x/similar?k=abc"])
def test_a_k_that_is_not_a_number_is_refused_naming_it(live_service, path):
    status, body = get_raw(live_service, path)
    assert status == 422 and body["error"]["code"] == "invalid_request"
    message = body["error"]["message"]
    assert "k:" in message and "integer" in message and "'abc'" in message


def test_a_query_encoded_in_latin_1_is_refused_with_its_utf_8_form(live_service):
    status, body = get_raw(live_service, "/api/search?q=fauteuil%20en%20fer%20forg%E9")
    assert status == 400
    error = body["error"]
    assert (error["status"], error["code"]) == (400, "query_not_utf8")
    assert "'q' is not UTF-8" in error["message"]
    assert "q=fauteuil%20en%20fer%20forg%C3%A9" in error["message"]  # what to send instead

    # The same query in UTF-8 is searched as typed; so is a U+FFFD sent as UTF-8.
    status, body = get_raw(live_service, "/api/search?q=fauteuil%20en%20fer%20forg%C3%A9")
    assert status == 200 and body["query"] == "fauteuil en fer forgé"
    status, body = get_raw(live_service, "/api/search?q=forg%EF%BF%BD")
    assert status == 200 and body["query"] == "forg\ufffd"


def test_only_query_parameters_must_be_utf_8_and_a_repeated_one_is_its_last_value(
    live_service,
):
    # An item id in the path is matched as sent: a Latin-1 one names no item.
    status, body = get_raw(live_service, "/api/items/forg%E9")
    assert (status, body["error"]["code"]) == (404, "unknown_item")
    status, body = get_raw(live_service, "/api/search?q=chaise&k=3&q=fauteuil&k=5")
    assert status == 200 and (body["query"], body["k"]) == ("fauteuil", 5)
