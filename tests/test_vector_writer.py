"""Vectors written in a thread of their own: every batch handed over is written by the
end, whatever ends the run; a failed write is told to the run, and what came before it
stays written."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from indexer.store import EmbeddedImage, PendingItem, Store
from indexer.vector_writer import VectorWriter
from tests.vector_stores import clustered, fingerprint, image_rows, manifest_row, manifest_url

KEY = fingerprint()["key"]


def pending_store(path: Path, count: int) -> tuple[Store, list[PendingItem]]:
    store = Store.open(path, create=True)
    store.bind_model("toy", "x", fingerprint())
    store.save_manifest(manifest_row("m1"), image_rows(manifest_url("m1"), count))
    return store, store.pending_items()


def embedded(items: list[PendingItem], vectors: np.ndarray) -> list[EmbeddedImage]:
    return [EmbeddedImage(p.key, v, "u", 10, 8) for p, v in zip(items, vectors, strict=True)]


def stored_vectors(store: Store) -> dict[int, np.ndarray]:
    rows = store.reader().execute("SELECT item_key, vector FROM vectors")
    return {key: np.frombuffer(blob, dtype=np.float16) for key, blob in rows}


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "regard-vectors"]


def test_every_batch_handed_over_is_written_when_the_writer_closes(tmp_path: Path):
    store, items = pending_store(tmp_path / "s", 6)
    vectors = clustered(6)
    with VectorWriter(store, KEY) as writer:
        writer.write(embedded(items[:4], vectors[:4]))
        writer.write(embedded(items[4:], vectors[4:]))
    written = stored_vectors(store)
    assert sorted(written) == [p.key for p in items]
    for p, vector in zip(items, vectors, strict=True):
        assert np.array_equal(written[p.key], vector.astype(np.float16))
    assert store.stats()["items"] == 6 and store.stats()["pending"] == 0
    assert not writer_threads()


def test_a_failed_write_is_raised_and_the_batches_before_it_stay_written(tmp_path: Path):
    store, items = pending_store(tmp_path / "s", 6)
    vectors = clustered(6)
    astray = EmbeddedImage(10_000, vectors[0], "u", 10, 8)  # no such item
    with pytest.raises(sqlite3.IntegrityError):
        with VectorWriter(store, KEY) as writer:
            writer.write(embedded(items[:3], vectors[:3]))
            writer.write([astray])
            writer.write(embedded(items[3:], vectors[3:]))  # not written: after the error
    assert sorted(stored_vectors(store)) == [p.key for p in items[:3]]
    assert store.stats()["pending"] == 3
    assert not writer_threads()


def test_what_was_handed_over_is_written_when_the_run_is_interrupted(tmp_path: Path):
    store, items = pending_store(tmp_path / "s", 4)
    with pytest.raises(KeyboardInterrupt):
        with VectorWriter(store, KEY) as writer:
            writer.write(embedded(items, clustered(4)))
            raise KeyboardInterrupt
    assert sorted(stored_vectors(store)) == [p.key for p in items]
    assert not writer_threads()
