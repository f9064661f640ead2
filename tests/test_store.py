"""The collection store: schema, idempotent writes, generations, model binding, failures."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace

import numpy as np
import pytest

from indexer import store as store_module
from indexer.schema import SCHEMA_VERSION
from indexer.store import (
    EmbeddedImage,
    ManifestRow,
    ManifestSave,
    ModelMismatchError,
    SourceRead,
    Store,
    StoreNotFoundError,
)
from indexer.store_vectors import StoreVectors
from indexer.validators import Validators
from indexer.vector_index import INDEX_FILE, INDEX_META_FILE, VectorIndex
from tests.vector_stores import image_rows

FINGERPRINT = {"key": "toy|sha256:0|4", "model": "toy", "pretrained": "x", "dim": 4}


def manifest(n_images: int, manifest_id: str = "https://example.org/m1") -> tuple:
    row = ManifestRow(
        id=manifest_id,
        source=manifest_id,
        version=3,
        label={"fr": ["Fauteuil"], "en": ["Armchair"]},
        summary=None,
        metadata=[{"label": {"en": ["Maker"]}, "value": {"none": ["Jean Royère"]}}],
        rights=None,
        required_statement=None,
        content_hash="abc",
    )
    images = image_rows(manifest_id, n_images)
    return row, images


def make_store(tmp_path, n_images: int = 4) -> Store:
    store = Store.open(tmp_path / "store", create=True)
    store.bind_model("toy", "x", FINGERPRINT)
    store.save_manifest(*manifest(n_images))
    return store


def embed(store: Store, count: int | None = None) -> None:
    """Give pending items distinct unit vectors: item key k gets axis (k - 1) % 4."""
    pending = store.pending_items()[:count]
    axes = np.eye(4, dtype=np.float32)
    store.save_vectors(
        [EmbeddedImage(p.key, axes[(p.key - 1) % 4], "u", 10, 8) for p in pending],
        FINGERPRINT["key"],
    )


def test_a_manifest_and_the_url_it_was_read_from_are_saved_in_one_commit(tmp_path):
    store = Store.open(tmp_path / "store", create=True)
    store.bind_model("toy", "x", FINGERPRINT)
    commits: list[str] = []
    store.reader().set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    url, validators = "https://example.org/m1.json", Validators('"v1"', None, "abc")
    store.save_manifest(*manifest(3), source=SourceRead(url, validators))
    assert len(commits) == 1
    # What the next harvest asks with: the same manifest, conditionally.
    assert store.source_manifest(url) == "https://example.org/m1"
    assert store.manifest_validators(url) == validators


def test_manifests_saved_together_take_one_commit_and_all_or_none_are_saved(tmp_path):
    store = make_store(tmp_path, n_images=2)
    embed(store)
    conn = store.reader()
    commits: list[str] = []
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql.strip() == "COMMIT" else None)
    generations = conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    shorter, added = manifest(1), manifest(3, "https://example.org/m2")
    url = "https://example.org/m2.json"
    source = SourceRead(url, Validators('"v2"', None, "def"))
    removed = store.save_manifests([ManifestSave(*shorter), ManifestSave(*added, source=source)])
    assert len(commits) == 1
    assert removed == 1  # m1's second image has left it
    counts = store.stats()
    assert (counts["manifests"], counts["items"], counts["pending"], counts["removed"]) == (
        2,
        1,
        3,
        1,
    )
    assert store.manifest_validators(url) == source.validators
    # One change of what is searchable, one generation.
    assert conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == generations + 1
    # A manifest that cannot be saved takes those saved with it back: none is.
    row, images = manifest(2, "https://example.org/m4")
    astray = replace(images[1], manifest_id="https://example.org/not-saved")
    with pytest.raises(sqlite3.IntegrityError):
        store.save_manifests(
            [
                ManifestSave(*manifest(1, "https://example.org/m3")),
                ManifestSave(row, [images[0], astray]),
            ]
        )
    assert store.stats() == counts


def test_a_write_waits_for_another_process_in_short_steps_then_goes_on(tmp_path, monkeypatch):
    store = make_store(tmp_path)
    begun: list[str] = []
    store.reader().set_trace_callback(
        lambda sql: begun.append(sql) if sql.startswith("BEGIN") else None
    )
    # As the harvest process would, from a thread of its own.
    other = sqlite3.connect(store.db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releasing = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    releasing.start()
    embed(store)  # waits for the other write, then writes
    releasing.join()
    assert len(store.pending_items()) == 0
    # Asked again and again rather than left to SQLite's own wait, whose sleeps grow
    # to 100 ms; and SQLite's wait is as it was for every other statement.
    assert len(begun) > 5
    assert store.reader().execute("PRAGMA busy_timeout").fetchone()[0] == 30_000

    # A write held past the timeout is an error, and leaves the store as it was.
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.1)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.save_manifest(*manifest(6))
    other.execute("ROLLBACK")
    other.close()
    assert (store.stats()["items"], store.stats()["pending"]) == (4, 0)  # not 6 items
    assert store.reader().execute("PRAGMA busy_timeout").fetchone()[0] == 100


def test_opening_a_missing_store_says_how_to_make_one(tmp_path):
    with pytest.raises(StoreNotFoundError, match="regard index"):
        Store.open(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_new_store_has_current_schema_and_reopens(tmp_path):
    store = make_store(tmp_path)
    store.close()
    conn = sqlite3.connect(tmp_path / "store" / "store.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    reopened = Store.open(tmp_path / "store")
    assert reopened.model.key == FINGERPRINT["key"]
    assert len(reopened.pending_items()) == 4


def test_saving_a_manifest_twice_adds_nothing_twice(tmp_path):
    store = make_store(tmp_path)
    embed(store, 2)
    store.save_manifest(*manifest(4))
    stats = store.stats()
    assert stats["manifests"] == 1
    assert stats["items"] == 2 and stats["pending"] == 2
    # the embedded ones keep their vectors and are not pending again
    assert len(store.pending_items()) == 2


def with_services(images: list) -> list:
    """The images as served by level 0 Image API services that the manifest describes
    by id alone (their sizes are in their info.json)."""
    return [
        replace(image, service={"id": f"https://iiif.example/{n}", "version": 2, "level": 0})
        for n, image in enumerate(images)
    ]


def described_by_info(tmp_path, n_images: int) -> tuple:
    """A store of `n_images` images of level 0 services described by id alone, indexed
    with what each one's info.json said of it: (store, manifest row, images, those)."""
    store = Store.open(tmp_path / "store", create=True)
    store.bind_model("toy", "x", FINGERPRINT)
    row, images = manifest(n_images)
    images = with_services(images)
    store.save_manifest(row, images)
    described = [
        {**image.service, "width": 100, "height": 80, "sizes": [[50, 40]]} for image in images
    ]
    store.save_vectors(
        [
            EmbeddedImage(p.key, np.eye(4, dtype=np.float32)[0], "u", 10, 8, described[n])
            for n, p in enumerate(store.pending_items())
        ],
        FINGERPRINT["key"],
    )
    return store, row, images, described


def test_what_an_info_json_said_is_kept_while_the_image_and_its_service_are_the_same(tmp_path):
    store, row, images, described = described_by_info(tmp_path, 3)

    def kept() -> list:
        return [store.get_item(image.id).described_service for image in images]

    assert kept() == described
    assert store.get_item(images[0].id).best_service == described[0]
    store.save_manifest(row, images)  # read again, as briefly described as before
    assert kept() == described
    # Another service for the same image URL, and a new version of the image: what was
    # read of them no longer holds.
    moved = replace(images[1], service={**images[1].service, "id": "https://iiif.example/new"})
    changed = replace(images[2], version="2")
    store.save_manifest(row, [images[0], moved, changed])
    assert kept() == [described[0], None, None]
    assert store.get_item(images[1].id).best_service == moved.service


def test_what_an_info_json_said_is_dropped_once_the_manifest_describes_the_service_anew(
    tmp_path,
):
    store, row, images, _ = described_by_info(tmp_path, 2)
    # Same id, same image: the manifest now lists the service's own sizes, or says it
    # moved to level 2. Its new description is the one the links are built from.
    listing = replace(images[0], service={**images[0].service, "sizes": [[25, 20], [100, 80]]})
    scaling = replace(images[1], service={**images[1].service, "level": 2})
    store.save_manifest(row, [listing, scaling])
    for image in (listing, scaling):
        item = store.get_item(image.id)
        assert item.state == "indexed" and item.described_service is None
        assert item.best_service == image.service


def test_a_swap_of_searchable_items_with_the_same_count_and_sum_of_keys_is_a_new_generation(
    tmp_path,
):
    store = make_store(tmp_path, n_images=6)
    embed(store)
    row, images = manifest(6)
    by_key = {store.get_item(image.id).key: image for image in images}
    assert sorted(by_key) == [1, 2, 3, 4, 5, 6]
    store.save_manifest(row, [by_key[k] for k in (1, 3, 4, 5)])  # 2 and 6 leave it
    before = store.generation
    # 3 and 5 leave, 2 and 6 come back with their vectors: four items, keys summing to
    # 13, as before; yet not the same ones, and the index must be built again.
    store.save_manifest(row, [by_key[k] for k in (1, 2, 4, 6)])
    assert [store.get_item(by_key[k].id).state for k in (2, 3, 5, 6)] == [
        "indexed",
        "removed",
        "removed",
        "indexed",
    ]
    assert store.generation > before


def test_vectors_bump_generation_and_are_stored_as_float16(tmp_path):
    store = make_store(tmp_path)
    assert store.generation == 0
    embed(store)
    first = store.generation
    assert first > 0
    with StoreVectors(store.db_path).snapshot() as snapshot:
        keys, vectors = next(snapshot.chunks(100))
        assert snapshot.generation == first
    assert len(keys) == 4 and vectors.shape == (4, 4) and vectors.dtype == np.float16
    blob = store._conn().execute("SELECT vector FROM vectors LIMIT 1").fetchone()[0]
    assert len(blob) == 4 * 2  # float16


def test_a_different_model_is_refused(tmp_path):
    store = make_store(tmp_path)
    other = dict(FINGERPRINT, key="other|tag|4")
    with pytest.raises(ModelMismatchError, match="never mixes two models"):
        store.bind_model("other", "tag", other)
    assert store.model.key == FINGERPRINT["key"]


def test_failures_are_counted_by_reason_and_cleared_by_success(tmp_path):
    store = make_store(tmp_path)
    run = store.begin_run(["src"])
    first, second = store.pending_items()[:2]
    store.record_item_failure(run, first, "http://x/1", "fetch", "HTTP 404 Not Found")
    store.record_item_failure(run, second, "http://x/2", "decode", "image data is truncated")
    stats = store.stats()
    assert stats["failed"] == 2
    assert stats["failed_by_reason"] == {"HTTP 404 Not Found": 1, "image data is truncated": 1}
    assert {f["url"] for f in store.failures()} == {"http://x/1", "http://x/2"}
    # failed items are retried by the next run, and a success clears the failure
    assert first.key in {p.key for p in store.pending_items()}
    embed(store)
    assert store.stats()["failed"] == 0
    assert store.failures() == []


def test_index_cache_is_rebuilt_when_stale_or_corrupt(tmp_path):
    store = make_store(tmp_path)
    embed(store, 2)
    index = VectorIndex.load_or_build(store)
    first = store.generation
    assert index.size == 2 and index.generation == first
    assert (store.path / INDEX_FILE).exists() and (store.path / INDEX_META_FILE).exists()

    embed(store)  # the two others: a later generation
    index = VectorIndex.load_or_build(store)
    assert index.size == 4 and index.generation == store.generation > first

    (store.path / INDEX_FILE).write_bytes(b"not a faiss index")
    index = VectorIndex.load_or_build(store)
    assert index.size == 4
    top = index.search(np.eye(4, dtype=np.float32)[2], 1)[0][0]
    assert top.score == pytest.approx(1.0)


def test_an_index_built_before_a_restore_from_backup_is_never_taken_for_current(tmp_path):
    store = make_store(tmp_path)
    embed(store, 2)
    backup = tmp_path / "backup.sqlite"
    with sqlite3.connect(backup) as copy:
        store._conn().backup(copy)
    embed(store)  # the two others, then an index over all four is cached
    assert VectorIndex.load_or_build(store).size == 4

    # The store is restored; the two others are embedded again, with other vectors: as
    # many vectors as the cached index holds, one change after the backup's generation.
    store.close()
    with sqlite3.connect(backup) as copy, sqlite3.connect(store.db_path) as target:
        copy.backup(target)
    restored = Store.open(store.path)
    pending = restored.pending_items()
    axes = np.eye(4, dtype=np.float32)
    restored.save_vectors(
        [EmbeddedImage(p.key, axes[p.key % 2 + 2], "u", 10, 8) for p in pending], FINGERPRINT["key"]
    )
    index = VectorIndex.load_or_build(restored)
    assert index.origin == "built"  # the cached file was from before the restore
    for p in pending:
        [best] = index.search(axes[p.key % 2 + 2], 1)[0]  # the two swapped their vectors
        assert best.key == p.key and best.score == pytest.approx(1.0, abs=1e-3)


def test_a_store_of_a_newer_regard_is_refused_in_one_line(tmp_path, capsys):
    from service.cli import main as regard

    store = make_store(tmp_path)
    store.close()
    with sqlite3.connect(tmp_path / "store" / "store.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    assert regard(["stats", "--store", str(tmp_path / "store")]) == 1
    error = capsys.readouterr().err
    assert "written by a newer Regard" in error and "upgrade Regard" in error
    assert "Traceback" not in error
