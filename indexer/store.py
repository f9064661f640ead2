"""The collection store: one folder, `store.sqlite` as the source of truth.

Everything the indexer learns is written here in transactions, so that a crash at any
point leaves a store that opens and resumes. The FAISS index beside it is a cache
(see `vector_index.py`): the `generation` counter, bumped by every change to the set
of searchable vectors, tells a reader whether its cache is stale.

One writer at a time (the indexer); any number of readers (the service), each thread
with its own connection, in WAL mode so that reading never waits for a write.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexerError
from .schema import migrate
from .store_records import refresh_manifest_records
from .store_takeover import ItemName, kept_searchable, take_over
from .validators import Validators

DB_FILE = "store.sqlite"

LanguageMap = dict[str, list[str]]


class StoreError(IndexerError):
    """The store cannot be opened or does not fit the request."""


class StoreNotFoundError(StoreError):
    pass


class ModelMismatchError(StoreError):
    pass


def _make_store_folder(path: Path) -> None:
    """A new or empty folder for a new store, never one holding other files: a store's
    files must not mix with others', and a first run that indexes nothing removes what
    it made (service.cli)."""
    if path.is_dir() and any(path.iterdir()):
        raise StoreError(
            f"{path} holds other files and no Regard store ({DB_FILE}): "
            "give --store a new or empty folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(
            f"cannot make the store folder {path}: {error.strerror or error}"
        ) from None


def _check_writable(path: Path) -> None:
    """Even reading writes beside store.sqlite (SQLite's WAL journal, the index cache):
    say so plainly rather than let SQLite fail with 'unable to open database file'."""
    if not all(os.access(p, os.W_OK) for p in (path, path / DB_FILE) if p.exists()):
        raise StoreError(
            f"the store {path} is read-only here: Regard writes beside {DB_FILE} even to "
            "read it (its journal, the search index cache); make the folder and its files "
            "writable, or copy the store to a writable place"
        )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StoredModel:
    """The model a store's vectors come from: enough to load it again, and to check it."""

    name: str
    pretrained: str
    fingerprint: dict[str, Any]

    @property
    def key(self) -> str:
        return self.fingerprint["key"]


@dataclass(frozen=True)
class ItemRecord:
    key: int
    id: str
    manifest_id: str
    manifest_label: LanguageMap
    canvas_id: str
    canvas_index: int
    image_index: int
    canvas_label: LanguageMap
    canvas_metadata: list[dict[str, LanguageMap]]
    image_url: str | None
    service: dict[str, Any] | None
    width: int | None
    height: int | None
    alternatives: list[str]
    state: str
    failure_reason: str | None
    fetched_url: str | None
    metadata: list[dict[str, LanguageMap]]
    rights: list[str]
    required_statement: LanguageMap | None
    # The manifest's record: its summary, and the links back to its source.
    summary: LanguageMap
    required_label: LanguageMap | None
    homepage: list[dict[str, Any]]
    provider: list[dict[str, Any]]
    region: str | None = None  # "x,y,w,h" when only part of the image is painted
    # The service as its info.json describes it, when the indexer read that (see
    # `EmbeddedImage.described_service`); None when the manifest's word was enough.
    described_service: dict[str, Any] | None = None
    # Its manifest was read from a local file the operator named (see ManifestRow).
    from_local_file: bool = False

    @property
    def best_service(self) -> dict[str, Any] | None:
        """The Image API service as best known: its info.json's word, else the manifest's."""
        return self.described_service or self.service


@dataclass(frozen=True)
class PendingItem:
    """What the pipeline needs to fetch and embed one image."""

    key: int
    id: str
    image_url: str | None
    service: dict[str, Any] | None
    width: int | None
    height: int | None
    region: str | None = None


@dataclass(frozen=True)
class EmbeddedImage:
    """A vector to store, with what was fetched to make it. `described_service` is the
    item's service as its info.json describes it, when the pipeline had to read that (a
    level 0 service the manifest describes briefly): kept, so that the links to the
    item's pictures can ask for the sizes it lists."""

    key: int
    vector: np.ndarray
    fetched_url: str
    fetched_width: int
    fetched_height: int
    described_service: dict[str, Any] | None = None


@dataclass(frozen=True)
class SourceRead:
    """The URL a manifest was read from, and how to ask it again conditionally."""

    url: str
    validators: Validators


@dataclass(frozen=True)
class ManifestRow:
    id: str
    source: str
    version: int
    label: LanguageMap
    summary: LanguageMap | None
    metadata: list[dict[str, LanguageMap]]
    rights: list[str] | None
    required_statement: LanguageMap | None
    content_hash: str | None
    required_label: LanguageMap | None = None
    homepage: Sequence[Mapping[str, Any]] = field(default_factory=list)
    provider: Sequence[Mapping[str, Any]] = field(default_factory=list)
    # Read from a local file (or a folder) the operator named: its file:// images may
    # be read and served. Never a document fetched over HTTP.
    local_file: bool = False


@dataclass(frozen=True)
class ImageRow:
    """One painted image as the IIIF reader found it, ready to be stored."""

    id: str
    manifest_id: str
    canvas_id: str
    canvas_index: int
    image_index: int
    canvas_label: LanguageMap
    image_url: str | None
    service: dict[str, Any] | None
    width: int | None
    height: int | None
    format: str | None
    region: str | None = None
    canvas_metadata: list[dict[str, LanguageMap]] = field(default_factory=list)
    version: str | None = None
    alternatives: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Skip:
    canvas_id: str
    reason: str


@dataclass(frozen=True)
class ManifestSave:
    """A manifest to save (Store.save_manifests): its rows, and the `source` it was read
    from, with how to ask it again conditionally."""

    manifest: ManifestRow
    images: Sequence[ImageRow]
    skips: Sequence[Skip] = ()
    source: SourceRead | None = None


@dataclass(frozen=True)
class FolderSaved:
    removed: int  # images marked removed now (as save_manifest counts them)
    # Per folder taken over: how many of its items are still searchable, with the
    # vectors they had (not embedded again).
    kept: dict[str, int] = field(default_factory=dict)


_UPSERT_ITEM = """
    INSERT INTO items(id, manifest_id, canvas_id, canvas_index, image_index, canvas_label,
                      canvas_metadata, image_url, service, width, height, format, region,
                      version, alternatives, added_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET
        manifest_id = excluded.manifest_id, canvas_id = excluded.canvas_id,
        image_url = excluded.image_url, canvas_index = excluded.canvas_index,
        image_index = excluded.image_index,
        canvas_label = excluded.canvas_label, canvas_metadata = excluded.canvas_metadata,
        service = excluded.service, width = excluded.width, height = excluded.height,
        format = excluded.format, region = excluded.region,
        alternatives = excluded.alternatives,
        -- What the service's info.json said still holds while the image and the
        -- manifest's whole description of its service are the same: a manifest re-read
        -- describes the service as briefly as before. One that now lists its sizes, or
        -- moved to another level at the same id, is described by the manifest again.
        described_service = CASE
            WHEN items.version IS excluded.version AND items.service IS excluded.service
            THEN items.described_service
        END,
        state = CASE
            WHEN items.version IS NOT excluded.version THEN 'pending'
            WHEN items.state != 'removed' THEN items.state
            WHEN EXISTS (SELECT 1 FROM vectors v WHERE v.item_key = items.key) THEN 'indexed'
            ELSE 'pending'
        END,
        version = excluded.version,
        updated_at = excluded.updated_at
"""


def _item_params(image: ImageRow, stamp: str) -> tuple:
    return (
        image.id,
        image.manifest_id,
        image.canvas_id,
        image.canvas_index,
        image.image_index,
        _dumps(image.canvas_label),
        _dumps(image.canvas_metadata),
        image.image_url,
        _dumps(image.service),
        image.width,
        image.height,
        image.format,
        image.region,
        image.version,
        _dumps(image.alternatives or None),
        stamp,
        stamp,
    )


def _upsert_source(
    conn: sqlite3.Connection, url: str, manifest_id: str, validators: Validators, stamp: str
) -> None:
    conn.execute(
        """
        INSERT INTO sources(url, manifest_id, etag, last_modified, content_hash, fetched_at)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(url) DO UPDATE SET
            manifest_id = excluded.manifest_id, etag = excluded.etag,
            last_modified = excluded.last_modified,
            content_hash = excluded.content_hash, fetched_at = excluded.fetched_at
        """,
        (
            url,
            manifest_id,
            validators.etag,
            validators.last_modified,
            validators.content_hash,
            stamp,
        ),
    )


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _without_placeholders(lmap: LanguageMap) -> LanguageMap:
    """A label without the values that say nothing ("-", " - ", as BL, Wellcome and
    Leipzig publish for unnamed canvases), so that the manifest's label stands in."""
    said = {lang: [v for v in vs if any(c.isalnum() for c in v)] for lang, vs in lmap.items()}
    return {lang: values for lang, values in said.items() if values}


# A file's image size as last read: (image URL, version) -> (width, height).
KnownSizes = dict[tuple[str, str], tuple[int | None, int | None]]

# How long a write waits for another process's (SQLite's busy timeout, in seconds).
BUSY_TIMEOUT = 30.0


def _begin_writing(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write in steps of a fraction of a
    millisecond. SQLite's own wait sleeps 1, 2, 5, 10 ms and more at a time: beside the
    process that saves manifests hundreds of times a second (indexer.harvest_process),
    the main process's writes of vectors waited 3 ms each on average, up to 100 ms, on
    locks held for a fraction of a millisecond."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT
        pause = 50e-6
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, 0.002)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.db_path = self.path / DB_FILE
        self._local = threading.local()
        self._write_lock = threading.Lock()

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, create: bool = False) -> Store:
        """Open the store in `path`; with create=True make it when it does not exist."""
        path = Path(path)
        if path.is_file():
            raise StoreError(
                f"{path} is a file, not a store folder: give --store a folder "
                "(a new one, or one holding a Regard store)"
            )
        if not (path / DB_FILE).exists():
            if not create:
                raise StoreNotFoundError(
                    f"no Regard store in {path} (no {DB_FILE}): build one with "
                    f"`regard index SOURCE --store {path}`"
                )
            _make_store_folder(path)
        _check_writable(path)
        store = cls(path)
        migrate(store._conn())
        return store

    @staticmethod
    def exists(path: Path | str) -> bool:
        return (Path(path) / DB_FILE).exists()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=BUSY_TIMEOUT)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            _begin_writing(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # Modules that keep their own tables in the store (terms, reviewers) read and write
    # through these: the same per-thread connection and the one writer lock.

    def reader(self) -> sqlite3.Connection:
        return self._conn()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        with self._transaction() as conn:
            yield conn

    # -- meta and model ------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @property
    def generation(self) -> int:
        """Bumped by every change to the set of searchable vectors (see _bump_generation:
        it only grows, by jumps)."""
        return int(self._meta("generation") or 0)

    @property
    def model(self) -> StoredModel | None:
        text = self._meta("model")
        return None if text is None else StoredModel(**json.loads(text))

    def bind_model(self, name: str, pretrained: str, fingerprint: dict[str, Any]) -> None:
        """Record the store's model, or check that it is the one already recorded."""
        requested = StoredModel(name=name, pretrained=pretrained, fingerprint=fingerprint)
        with self._transaction() as conn:
            text = conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
            if text is None:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('model', ?)",
                    (json.dumps(requested.__dict__),),
                )
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('created_at', ?)", (now(),)
                )
                return
        current = self.model
        assert current is not None
        if current.key != requested.key:
            raise ModelMismatchError(
                f"the store in {self.path} holds vectors of {current.name} "
                f"({current.key}), not of {name} ({requested.key}); a store never mixes "
                f"two models: index into a new store (`regard index --from-store "
                f"{self.path} --store NEW_DIR --model {name} …` indexes the same sources and "
                f"carries over the vocabularies, reviewers and decisions), or leave out "
                f"--model/--pretrained to use the store's own"
            )

    # -- runs and failures ---------------------------------------------------------------

    def begin_run(self, sources: Sequence[str]) -> int:
        """A new run, "running" until finish_run. Runs still "running" are earlier ones
        whose process ended without a word (kill -9, a power cut): one indexer at a time
        (store_lock), so none of them runs now."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = 'aborted' WHERE status = 'running'",
            )
            cursor = conn.execute(
                "INSERT INTO runs(started_at, sources, status) VALUES (?, ?, 'running')",
                (now(), json.dumps(list(sources))),
            )
            run_id = cursor.lastrowid
            assert run_id is not None  # an INSERT always sets it
            return run_id

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (now(), status, json.dumps(summary), run_id),
            )

    def record_source_failure(self, run_id: int | None, url: str, reason: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO failures(run_id, item_id, url, stage, reason, at) "
                "VALUES (?, NULL, ?, 'source', ?, ?)",
                (run_id, url, reason, now()),
            )

    def record_item_failure(
        self, run_id: int | None, item: PendingItem, url: str, stage: str, reason: str
    ) -> None:
        with self._transaction() as conn:
            was_searchable = conn.execute(
                "SELECT 1 FROM items WHERE key = ? AND state = 'indexed'", (item.key,)
            ).fetchone()
            conn.execute(
                "UPDATE items SET state = 'failed', failure_reason = ?, updated_at = ? "
                "WHERE key = ?",
                (reason, now(), item.key),
            )
            if was_searchable:  # it leaves search: an index holding it is stale
                self._bump_generation(conn)
            conn.execute(
                "INSERT INTO failures(run_id, item_id, url, stage, reason, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, item.id, url, stage, reason, now()),
            )

    def failures(self) -> list[dict[str, Any]]:
        """The standing failures: items that are failed now, and sources that failed last run."""
        rows = self._conn().execute(
            """
            SELECT f.item_id, f.url, f.stage, f.reason, f.at FROM failures f
            JOIN items i ON i.id = f.item_id AND i.state = 'failed'
            WHERE f.id = (SELECT MAX(id) FROM failures WHERE item_id = f.item_id)
            UNION ALL
            SELECT NULL, url, stage, reason, at FROM failures
            WHERE item_id IS NULL
              AND run_id = (SELECT MAX(id) FROM runs)
            ORDER BY 5
            """
        )
        return [dict(row) for row in rows]

    # -- manifests and items -------------------------------------------------------------

    def save_manifest(
        self,
        manifest: ManifestRow,
        images: Sequence[ImageRow],
        skips: Sequence[Skip] = (),
        source: SourceRead | None = None,
    ) -> int:
        """Store a manifest as it is now, in one transaction, with the `source` it was
        read from; returns how many of its images were marked removed now.

        Known images keep their vectors unless their `version` changed (then they are
        embedded again); images no longer in the manifest are marked removed (kept,
        hidden from search); removed images that come back are searchable again.
        """
        return self.save_manifests([ManifestSave(manifest, images, skips, source)])

    def save_manifests(self, saves: Sequence[ManifestSave]) -> int:
        """`save_manifest` for each, all in one transaction; returns how many images
        were marked removed now. One commit for several manifests: for a collection of
        a manifest per object, a commit (and the full-text records' new segment) cost
        as much as the rest of a small manifest's saving."""
        stamp = now()
        removed = 0
        changed = False
        with self._transaction() as conn:
            for save in saves:
                before = self._searchable_signature(conn, save.manifest.id)
                removed += self._write_manifest(conn, save, stamp)
                changed = changed or self._searchable_signature(conn, save.manifest.id) != before
            if changed:
                self._bump_generation(conn)
        return removed

    def save_folder(
        self,
        manifest: ManifestRow,
        images: Sequence[ImageRow],
        skips: Sequence[Skip],
        taking_over: Mapping[str, Sequence[ItemName]],
        source: SourceRead | None = None,
    ) -> FolderSaved:
        """`save_manifest`, for a folder that first takes over the items of the folders
        of the store inside it, all in one transaction: a crash leaves the store as it
        was before, or as it is after.

        `taking_over`: for each folder inside (its manifest id), its items named as this
        folder's (see `folders.renamed_into`). They keep their keys, states and vectors,
        so the saving below finds them known: unchanged files are not embedded again,
        changed ones are, gone ones are marked removed. Items of those folders not named
        here are deleted, and so are the folders' own records: they are no longer
        sources of the store.
        """
        save = ManifestSave(manifest, images, skips, source)
        with self._transaction() as conn:
            before = self._searchable_signature(conn, manifest.id)
            removed = self._write_manifest(conn, save, now(), taking_over)
            kept: dict[str, int] = {}
            if taking_over:
                kept = {folder: 0 for folder in taking_over} | kept_searchable(conn)
            # A take-over keeps every key and vector, but searchable items change hands
            # and stale ones may be deleted: the index is built anew, once (a folder is
            # taken over once), rather than trusted on a finer account of the change.
            if taking_over or self._searchable_signature(conn, manifest.id) != before:
                self._bump_generation(conn)
        return FolderSaved(removed, kept)

    def _write_manifest(
        self,
        conn: sqlite3.Connection,
        save: ManifestSave,
        stamp: str,
        taking_over: Mapping[str, Sequence[ItemName]] | None = None,
    ) -> int:
        """A manifest's rows as `save` gives them, within the caller's transaction, after
        taking over the items of the folders in `taking_over` (see save_folder); how
        many of its images were marked removed now."""
        manifest, images = save.manifest, save.images
        ids = [image.id for image in images]
        self._upsert_manifest(conn, manifest, len(images), stamp)  # its items point at it
        removed = take_over(conn, manifest.id, ids, taking_over, stamp) if taking_over else 0
        conn.executemany(_UPSERT_ITEM, [_item_params(image, stamp) for image in images])
        # Few statements: in the harvest process (indexer.harvest_process) each one
        # lets the walker threads take the interpreter lock, and waits to get it back.
        removed += conn.execute(
            "UPDATE items SET state = 'removed', updated_at = ? WHERE manifest_id = ? "
            "AND state != 'removed' AND id NOT IN (SELECT value FROM json_each(?))",
            (stamp, manifest.id, json.dumps(ids)),
        ).rowcount
        conn.execute("DELETE FROM skips WHERE manifest_id = ?", (manifest.id,))
        if save.skips:
            conn.executemany(
                "INSERT INTO skips(manifest_id, canvas_id, reason) VALUES (?, ?, ?)",
                [(manifest.id, skip.canvas_id, skip.reason) for skip in save.skips],
            )
        refresh_manifest_records(conn, manifest.id)
        if save.source is not None:  # in the same transaction: one commit, not two
            _upsert_source(conn, save.source.url, manifest.id, save.source.validators, stamp)
        return removed

    @staticmethod
    def _upsert_manifest(
        conn: sqlite3.Connection, manifest: ManifestRow, image_count: int, stamp: str
    ) -> None:
        conn.execute(
            """
            INSERT INTO manifests(id, source, version, label, summary, metadata, rights,
                                  required_statement, image_count, content_hash, fetched_at,
                                  required_label, homepage, provider, local_file)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                source = excluded.source, version = excluded.version,
                label = excluded.label, summary = excluded.summary,
                metadata = excluded.metadata, rights = excluded.rights,
                required_statement = excluded.required_statement,
                required_label = excluded.required_label,
                homepage = excluded.homepage, provider = excluded.provider,
                local_file = excluded.local_file,
                image_count = excluded.image_count, content_hash = excluded.content_hash,
                fetched_at = excluded.fetched_at
            """,
            (
                manifest.id,
                manifest.source,
                manifest.version,
                _dumps(manifest.label),
                _dumps(manifest.summary),
                _dumps(manifest.metadata),
                _dumps(manifest.rights or None),
                _dumps(manifest.required_statement),
                image_count,
                manifest.content_hash,
                stamp,
                _dumps(manifest.required_label),
                _dumps(manifest.homepage or None),
                _dumps(manifest.provider or None),
                int(manifest.local_file),
            ),
        )

    @staticmethod
    def _searchable_signature(conn: sqlite3.Connection, manifest_id: str) -> list[int]:
        """The manifest's searchable items (their keys, in order): it changes whenever
        they do. Exact, not a count and a sum, which a swap of items can leave the same;
        a manifest holds at most some thousands of images."""
        rows = conn.execute(
            # "+state": look items up by manifest, not by state (which at a million
            # items would scan every indexed one, twice per manifest saved).
            "SELECT key FROM items WHERE manifest_id = ? AND +state = 'indexed' ORDER BY key",
            (manifest_id,),
        )
        return [key for (key,) in rows]

    @staticmethod
    def _bump_generation(conn: sqlite3.Connection, only_added: bool = False) -> int:
        """A new generation: greater than the last, and a stamp of the time (in
        microseconds) rather than the next number. A store restored from a backup then
        never meets again a generation that it reached before the restore, so an index
        file built then (index.json records its generation) is never taken for current.

        `only_added`: the change only made new items searchable, each with a vector
        written at this generation. Recorded (the generations table), so that an index
        of an earlier generation can be grown with the vectors written since."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = max(int(row[0]) + 1 if row else 1, time.time_ns() // 1000)
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('generation', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(generation),),
        )
        conn.execute("INSERT INTO generations VALUES (?, ?)", (generation, int(only_added)))
        return generation

    def remove_manifests(self, manifest_ids: Iterable[str]) -> int:
        """Mark every item of these manifests removed; returns how many were marked now
        (failed and pending ones too, as `stats()` counts them)."""
        ids = list(manifest_ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._transaction() as conn:
            searchable = conn.execute(
                f"SELECT COUNT(*) FROM items WHERE state = 'indexed' AND manifest_id IN ({marks})",
                ids,
            ).fetchone()[0]
            removed = conn.execute(
                f"UPDATE items SET state = 'removed', updated_at = ? "
                f"WHERE state != 'removed' AND manifest_id IN ({marks})",
                [now(), *ids],
            ).rowcount
            # Forget what their sources gave: one that comes back, unchanged, is read and
            # saved again, and its items searchable again, rather than found unchanged.
            conn.execute(
                f"UPDATE sources SET etag = NULL, last_modified = NULL, content_hash = NULL "
                f"WHERE manifest_id IN ({marks})",
                ids,
            )
            if searchable:
                self._bump_generation(conn)
        return removed

    # -- folders: one file, one item ------------------------------------------------------

    def live_folders(self, but: str) -> set[str]:
        """The folder manifests (version 0) other than `but` with items not removed."""
        rows = self._conn().execute(
            "SELECT m.id FROM manifests m WHERE m.version = 0 AND m.id != ? AND EXISTS "
            "(SELECT 1 FROM items i WHERE i.manifest_id = m.id AND i.state != 'removed')",
            (but,),
        )
        return {row[0] for row in rows}

    def live_owners(self, item_ids: Sequence[str], but: str) -> dict[str, str]:
        """Item id -> manifest id, for the items of `item_ids` not removed that belong to
        a manifest other than `but`."""
        owners: dict[str, str] = {}
        for start in range(0, len(item_ids), 500):  # under SQLite's limit on parameters
            chunk = item_ids[start : start + 500]
            rows = self._conn().execute(
                f"SELECT id, manifest_id FROM items WHERE id IN ({','.join('?' * len(chunk))}) "
                "AND state != 'removed' AND manifest_id != ?",
                [*chunk, but],
            )
            owners.update((row[0], row[1]) for row in rows)
        return owners

    def item_names(self, manifest_id: str) -> list[ItemName]:
        """Every item of the manifest, whatever its state, with its id and canvas label."""
        rows = self._conn().execute(
            "SELECT key, id, canvas_label FROM items WHERE manifest_id = ? ORDER BY key",
            (manifest_id,),
        )
        return [ItemName(key, item_id, _loads(label)) for key, item_id, label in rows]

    # -- sources: what each URL gave last time --------------------------------------------

    def manifest_validators(self, url: str) -> Validators | None:
        """What a manifest URL gave when last read, to ask for it conditionally; None for
        a URL never read as a manifest (a collection page is always read again: its
        members may have changed when it has not)."""
        row = (
            self._conn()
            .execute(
                "SELECT etag, last_modified, content_hash FROM sources "
                "WHERE url = ? AND manifest_id IS NOT NULL",
                (url,),
            )
            .fetchone()
        )
        return None if row is None else Validators(row[0], row[1], row[2])

    def folder_sizes(self, manifest_id: str) -> KnownSizes:
        """The image size of each file of a folder as last listed, by (image URL, version):
        for `folders.read_folder`, which then opens only the files that changed."""
        rows = self._conn().execute(
            "SELECT image_url, version, width, height FROM items WHERE manifest_id = ?",
            (manifest_id,),
        )
        return {(url, version): (width, height) for url, version, width, height in rows}

    def note_local_file(self, manifest_id: str, local_file: bool) -> None:
        """Whether a manifest found unchanged was read from a local file this time (see
        ManifestRow.local_file): a store indexed before this was kept learns it so."""
        row = (
            self._conn()
            .execute("SELECT local_file FROM manifests WHERE id = ?", (manifest_id,))
            .fetchone()
        )
        if row is None or row[0] == int(local_file):
            return  # as it was: no write for each of a run's unchanged manifests
        with self._transaction() as conn:
            conn.execute(
                "UPDATE manifests SET local_file = ? WHERE id = ?", (int(local_file), manifest_id)
            )

    def source_manifest(self, url: str) -> str | None:
        """The id of the manifest a URL gave when last read; None for a collection page
        or a URL never read."""
        row = (
            self._conn().execute("SELECT manifest_id FROM sources WHERE url = ?", (url,)).fetchone()
        )
        return None if row is None else row[0]

    def roots(self) -> list[str]:
        rows = self._conn().execute("SELECT DISTINCT root FROM source_manifests")
        return [row[0] for row in rows]

    def root_manifests(self, root: str) -> set[str]:
        rows = self._conn().execute(
            "SELECT manifest_id FROM source_manifests WHERE root = ?", (root,)
        )
        return {row[0] for row in rows}

    def set_root_manifests(self, root: str, manifest_ids: Iterable[str]) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM source_manifests WHERE root = ?", (root,))
            conn.executemany(
                "INSERT OR IGNORE INTO source_manifests(root, manifest_id) VALUES (?, ?)",
                [(root, manifest_id) for manifest_id in manifest_ids],
            )

    def pending_items(self, manifest_ids: Iterable[str] | None = None) -> list[PendingItem]:
        """Items still without a vector (new, or failed last time), in collection order."""
        sql = (
            "SELECT key, id, image_url, service, width, height, region FROM items "
            "WHERE state IN ('pending', 'failed')"
        )
        params: list[Any] = []
        if manifest_ids is not None:
            ids = list(manifest_ids)
            sql += f" AND manifest_id IN ({','.join('?' * len(ids))})"
            params = ids
        sql += " ORDER BY key"
        return [
            PendingItem(
                key=row["key"],
                id=row["id"],
                image_url=row["image_url"],
                service=_loads(row["service"]),
                width=row["width"],
                height=row["height"],
                region=row["region"],
            )
            for row in self._conn().execute(sql, params)
        ]

    def save_vectors(self, embedded: Sequence[EmbeddedImage], fingerprint_key: str) -> None:
        """Write a batch of vectors and mark their items indexed, in one transaction."""
        if not embedded:
            return
        stamp = now()
        with self._transaction() as conn:
            # A searchable item's vector written again replaces one an index may hold.
            replaced = conn.execute(
                "SELECT COUNT(*) FROM items WHERE state = 'indexed' "
                "AND key IN (SELECT value FROM json_each(?))",
                (json.dumps([int(e.key) for e in embedded]),),
            ).fetchone()[0]
            generation = self._bump_generation(conn, only_added=not replaced)
            conn.executemany(
                "INSERT OR REPLACE INTO vectors(item_key, vector, fingerprint, generation, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        e.key,
                        np.asarray(e.vector, dtype=np.float16).tobytes(),
                        fingerprint_key,
                        generation,
                        stamp,
                    )
                    for e in embedded
                ],
            )
            conn.executemany(
                "UPDATE items SET state = 'indexed', failure_reason = NULL, fetched_url = ?, "
                "fetched_width = ?, fetched_height = ?, described_service = ?, updated_at = ? "
                "WHERE key = ?",
                [
                    (
                        e.fetched_url,
                        e.fetched_width,
                        e.fetched_height,
                        _dumps(e.described_service),
                        stamp,
                        e.key,
                    )
                    for e in embedded
                ],
            )

    # -- reading -------------------------------------------------------------------------

    _ITEM_SELECT = """
        SELECT i.*, m.label AS manifest_label, m.metadata AS metadata, m.rights AS rights,
               m.required_statement AS required_statement, m.summary AS summary,
               m.required_label AS required_label, m.homepage AS homepage,
               m.provider AS provider, m.local_file AS local_file
        FROM items i JOIN manifests m ON m.id = i.manifest_id
    """

    @staticmethod
    def _item(row: sqlite3.Row) -> ItemRecord:
        return ItemRecord(
            key=row["key"],
            id=row["id"],
            manifest_id=row["manifest_id"],
            manifest_label=_loads(row["manifest_label"]),
            canvas_id=row["canvas_id"],
            canvas_index=row["canvas_index"],
            image_index=row["image_index"],
            canvas_label=_without_placeholders(_loads(row["canvas_label"])),
            canvas_metadata=_loads(row["canvas_metadata"]) or [],
            image_url=row["image_url"],
            service=_loads(row["service"]),
            width=row["width"],
            height=row["height"],
            alternatives=_loads(row["alternatives"]) or [],
            state=row["state"],
            failure_reason=row["failure_reason"],
            fetched_url=row["fetched_url"],
            metadata=_loads(row["metadata"]) or [],
            rights=_loads(row["rights"]) or [],
            required_statement=_loads(row["required_statement"]),
            summary=_loads(row["summary"]) or {},
            required_label=_loads(row["required_label"]),
            homepage=_loads(row["homepage"]) or [],
            provider=_loads(row["provider"]) or [],
            region=row["region"],
            described_service=_loads(row["described_service"]),
            from_local_file=bool(row["local_file"]),
        )

    def get_item(self, item_id: str) -> ItemRecord | None:
        row = self._conn().execute(self._ITEM_SELECT + " WHERE i.id = ?", (item_id,)).fetchone()
        return None if row is None else self._item(row)

    def items_by_key(self, keys: Sequence[int]) -> dict[int, ItemRecord]:
        return {item.key: item for item in self._items_where("i.key", keys)}

    def items_by_ids(self, item_ids: Sequence[str]) -> dict[str, ItemRecord]:
        return {item.id: item for item in self._items_where("i.id", item_ids)}

    def _items_where(self, column: str, values: Sequence[Any]) -> Iterator[ItemRecord]:
        """The items whose `column` is one of `values`, asked 500 at a time (SQLite's
        limit on parameters is 999 in older builds)."""
        for start in range(0, len(values), 500):
            part = list(values[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self._conn().execute(self._ITEM_SELECT + f" WHERE {column} IN ({marks})", part)
            yield from (self._item(row) for row in rows)

    def vector_of(self, item_key: int) -> np.ndarray | None:
        row = (
            self._conn()
            .execute("SELECT vector FROM vectors WHERE item_key = ?", (item_key,))
            .fetchone()
        )
        return None if row is None else np.frombuffer(row[0], dtype=np.float16).astype(np.float32)

    def searchable_count(self) -> int:
        row = self._conn().execute("SELECT COUNT(*) FROM items WHERE state = 'indexed'")
        return int(row.fetchone()[0])

    def stats(self) -> dict[str, Any]:
        conn = self._conn()
        states = dict(conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
        failed_by_reason = dict(
            conn.execute(
                "SELECT failure_reason, COUNT(*) FROM items WHERE state = 'failed' "
                "GROUP BY failure_reason ORDER BY 2 DESC"
            ).fetchall()
        )
        skipped_by_reason = dict(
            conn.execute(
                "SELECT reason, COUNT(*) FROM skips GROUP BY reason ORDER BY 2 DESC"
            ).fetchall()
        )
        manifests = conn.execute("SELECT COUNT(*) FROM manifests").fetchone()[0]
        last_run = conn.execute(
            "SELECT id, started_at, finished_at, status, summary FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        model = self.model
        return {
            "items": states.get("indexed", 0),
            "pending": states.get("pending", 0),
            "failed": states.get("failed", 0),
            "failed_by_reason": failed_by_reason,
            "removed": states.get("removed", 0),
            "skipped": sum(skipped_by_reason.values()),
            "skipped_by_reason": skipped_by_reason,
            "manifests": manifests,
            "model": None
            if model is None
            else {
                "name": model.name,
                "pretrained": model.pretrained,
                "fingerprint": model.key,
                "dim": model.fingerprint.get("dim"),
            },
            "generation": self.generation,
            "last_run": None
            if last_run is None
            else {
                "id": last_run["id"],
                "started_at": last_run["started_at"],
                "finished_at": last_run["finished_at"],
                "status": last_run["status"],
                "summary": _loads(last_run["summary"]),
            },
        }
