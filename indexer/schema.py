"""The collection store's SQLite schema and its step-by-step migrations.

A store written by an older Regard opens in a newer one: each migration is an
idempotent step from one `user_version` to the next, run in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from .errors import SchemaError
from .store_records import fill_records

SCHEMA_VERSION = 8


def _run_statements(conn: sqlite3.Connection, script: str) -> None:
    # Not executescript(): it commits on its own, and a migration must be one transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _create_v1(conn: sqlite3.Connection) -> None:
    _run_statements(
        conn,
        """
        CREATE TABLE IF NOT EXISTS meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        -- One row per `regard index` run: what it was asked, how it ended.
        CREATE TABLE IF NOT EXISTS runs (
            id          INTEGER PRIMARY KEY,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            sources     TEXT NOT NULL,          -- JSON list
            status      TEXT NOT NULL,          -- running | finished | interrupted | failed
            summary     TEXT                    -- JSON counts
        );

        CREATE TABLE IF NOT EXISTS manifests (
            id                 TEXT PRIMARY KEY,
            source             TEXT NOT NULL,   -- the URL or file it was read from
            version            INTEGER,
            label              TEXT NOT NULL,   -- JSON language map
            summary            TEXT,            -- JSON language map
            metadata           TEXT NOT NULL,   -- JSON list of {label, value} language maps
            rights             TEXT,
            required_statement TEXT,            -- JSON language map
            image_count        INTEGER NOT NULL,
            content_hash       TEXT,
            fetched_at         TEXT NOT NULL
        );

        -- What each source URL gave last time, to re-harvest only what changed.
        CREATE TABLE IF NOT EXISTS sources (
            url           TEXT PRIMARY KEY,
            manifest_id   TEXT,                 -- NULL for a collection
            etag          TEXT,
            last_modified TEXT,
            content_hash  TEXT,
            fetched_at    TEXT NOT NULL
        );

        -- Which manifests each source given to `regard index` led to (itself, or the
        -- members of a collection): a manifest no longer listed has its items removed.
        CREATE TABLE IF NOT EXISTS source_manifests (
            root        TEXT NOT NULL,
            manifest_id TEXT NOT NULL,
            PRIMARY KEY (root, manifest_id)
        );

        -- Canvases that hold nothing to index, with why (audio, no image, login, ...).
        CREATE TABLE IF NOT EXISTS skips (
            manifest_id TEXT NOT NULL,
            canvas_id   TEXT NOT NULL,
            reason      TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS skips_manifest ON skips(manifest_id);

        -- One row per painted image. `key` is the integer id FAISS knows the item by.
        CREATE TABLE IF NOT EXISTS items (
            key             INTEGER PRIMARY KEY,
            id              TEXT NOT NULL UNIQUE,
            manifest_id     TEXT NOT NULL REFERENCES manifests(id),
            canvas_id       TEXT NOT NULL,
            canvas_index    INTEGER NOT NULL,
            image_index     INTEGER NOT NULL,
            canvas_label    TEXT NOT NULL,      -- JSON language map
            canvas_metadata TEXT,               -- JSON list of {label, value} language maps
            image_url       TEXT,
            service         TEXT,               -- JSON: the Image API service
            width           INTEGER,
            height          INTEGER,
            format          TEXT,
            region          TEXT,               -- "x,y,w,h" of the image shown on the canvas
            version         TEXT,               -- changes when the image does (files: size+mtime)
            alternatives    TEXT,               -- JSON: ids of a Choice's other options
            state           TEXT NOT NULL DEFAULT 'pending', -- pending/indexed/failed/removed
            fetched_url     TEXT,               -- the request that gave the embedded pixels
            fetched_width   INTEGER,
            fetched_height  INTEGER,
            failure_reason  TEXT,
            added_at        TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS items_manifest ON items(manifest_id, canvas_index, image_index);
        CREATE INDEX IF NOT EXISTS items_state ON items(state);

        -- Unit vectors as float16 blobs, each with the fingerprint of the model that made it.
        CREATE TABLE IF NOT EXISTS vectors (
            item_key    INTEGER PRIMARY KEY REFERENCES items(key),
            vector      BLOB NOT NULL,
            fingerprint TEXT NOT NULL,
            generation  INTEGER NOT NULL,
            created_at  TEXT NOT NULL
        );

        -- Every failure of every run, for `regard failures`.
        CREATE TABLE IF NOT EXISTS failures (
            id      INTEGER PRIMARY KEY,
            run_id  INTEGER REFERENCES runs(id),
            item_id TEXT,                       -- NULL for a source that could not be read
            url     TEXT NOT NULL,
            stage   TEXT NOT NULL,              -- source | fetch | decode | embed
            reason  TEXT NOT NULL,
            at      TEXT NOT NULL
        );
        """,
    )


def ensure_column(conn: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    if column not in columns:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _record_links_v2(conn: sqlite3.Connection) -> None:
    """Each manifest keeps every rights value, its required statement's label, its
    record pages and its provider: the links from each result back to its source."""
    ensure_column(conn, "manifests", "required_label", "TEXT")  # JSON language map
    ensure_column(conn, "manifests", "homepage", "TEXT")  # JSON list of {url, label, language}
    ensure_column(conn, "manifests", "provider", "TEXT")  # JSON list of {label, homepage}
    # `rights` was one text; it is now a JSON list of every value.
    rows = conn.execute("SELECT id, rights FROM manifests WHERE rights IS NOT NULL").fetchall()
    for manifest_id, rights in rows:
        if not _is_json_list(rights):
            conn.execute(
                "UPDATE manifests SET rights = ? WHERE id = ?",
                (json.dumps([rights], ensure_ascii=False), manifest_id),
            )
    # Forget what each manifest URL gave, so that the next `regard index` reads every
    # manifest again (the documents, not the images) and fills in the new fields.
    conn.execute("UPDATE sources SET etag = NULL, last_modified = NULL, content_hash = NULL")


def _described_service_v3(conn: sqlite3.Connection) -> None:
    """Each item keeps its Image API service as the service's info.json describes it,
    when the indexer read that (a level 0 service often lists its sizes there only): the
    links to its pictures then ask for a listed size, not the master file. Left empty in
    a store indexed before: its links fall back on the picture the indexer fetched."""
    ensure_column(conn, "items", "described_service", "TEXT")  # JSON: the Image API service


def _generations_v4(conn: sqlite3.Connection) -> None:
    """Each generation of the searchable vectors is recorded with whether it only made
    new items searchable. An index built at an earlier generation is then grown with the
    vectors written since (found through their generation's index) on the word of a few
    rows, without reading every vector's stamp. A store migrated knows its current
    generation only: an index saved at an earlier one is built anew once."""
    _run_statements(
        conn,
        """
        CREATE TABLE IF NOT EXISTS generations (
            generation INTEGER PRIMARY KEY,
            only_added INTEGER NOT NULL         -- 1: it only made new items searchable
        );
        CREATE INDEX IF NOT EXISTS vectors_generation ON vectors(generation)
        """,
    )
    row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    if row is not None:
        conn.execute("INSERT OR IGNORE INTO generations VALUES (?, 0)", (int(row[0]),))


def _local_files_v5(conn: sqlite3.Connection) -> None:
    """Each manifest says whether it was read from a local file, as the operator named
    it: its file:// images are then served by /api/items/{id}/image, as a folder's are
    (a remote document's never are). Unknown in a store indexed before: not served until
    the next run reads the manifest again."""
    ensure_column(conn, "manifests", "local_file", "INTEGER")


def _terms_v6(conn: sqlite3.Connection) -> None:
    """Vocabularies (the museum's thesauri), their concepts with the vectors the store's
    model made of their labels, the cataloguers' decisions on draft subject terms, and
    the reviewers allowed to make them. Machine suggestions themselves are not stored:
    like the search index they follow from the stored vectors; a decision keeps the
    suggestion it judged (score, model, date), which is the provenance that matters."""
    _run_statements(
        conn,
        """
        CREATE TABLE IF NOT EXISTS vocabularies (
            name          TEXT PRIMARY KEY,     -- short name the operator gave it
            title         TEXT NOT NULL,        -- JSON language map (may be empty)
            source        TEXT NOT NULL,        -- the file it was read from
            format        TEXT NOT NULL,        -- csv | skos | joconde
            languages     TEXT NOT NULL,        -- JSON list, most labels first
            added_at      TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        );

        -- A concept dropped from its file is retired, not deleted: decisions keep it.
        CREATE TABLE IF NOT EXISTS concepts (
            key         INTEGER PRIMARY KEY,
            vocabulary  TEXT NOT NULL REFERENCES vocabularies(name),
            id          TEXT NOT NULL,          -- its URI
            labels      TEXT NOT NULL,          -- JSON {language: preferred label}
            alt_labels  TEXT NOT NULL,          -- JSON {language: [labels]}
            broader     TEXT NOT NULL,          -- JSON list of ids
            notation    TEXT,
            position    INTEGER NOT NULL,       -- order in its file
            retired     INTEGER NOT NULL DEFAULT 0,
            UNIQUE (vocabulary, id)
        );

        CREATE TABLE IF NOT EXISTS concept_vectors (
            concept_key INTEGER PRIMARY KEY REFERENCES concepts(key),
            vector      BLOB NOT NULL,          -- float32 unit vector
            fingerprint TEXT NOT NULL,
            prompts     TEXT NOT NULL           -- the prompt set that made it
        );

        -- One decision per item and concept. The suggestion's fields are NULL for a
        -- term a cataloguer added without the machine.
        CREATE TABLE IF NOT EXISTS term_decisions (
            item_key     INTEGER NOT NULL REFERENCES items(key),
            concept_key  INTEGER NOT NULL REFERENCES concepts(key),
            decision     TEXT NOT NULL,         -- accepted | rejected
            decided_by   TEXT NOT NULL,
            decided_at   TEXT NOT NULL,
            score        REAL,
            cosine       REAL,
            rank         INTEGER,
            scoring      TEXT,                  -- sigmoid | softmax
            fingerprint  TEXT,
            suggested_at TEXT,
            PRIMARY KEY (item_key, concept_key)
        );
        CREATE INDEX IF NOT EXISTS term_decisions_concept ON term_decisions(concept_key);

        -- Who may change the store through the service: a name and its token's hash.
        CREATE TABLE IF NOT EXISTS reviewers (
            name       TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            added_at   TEXT NOT NULL
        )
        """,
    )


def _map_v7(conn: sqlite3.Connection) -> None:
    """The map of the collection: each item's place and cluster, the clusters with their
    names, and the landmarks the layout was fitted on (new items are placed among
    them). Derived from the vectors, like the index: `regard map` makes it again."""
    _run_statements(
        conn,
        """
        CREATE TABLE IF NOT EXISTS map_points (
            item_key INTEGER PRIMARY KEY REFERENCES items(key),
            x        REAL NOT NULL,                -- 0..1, across
            y        REAL NOT NULL,                -- 0..1, down
            cluster  INTEGER NOT NULL,
            landmark INTEGER NOT NULL DEFAULT 0    -- 1: the layout was fitted on it
        );
        CREATE INDEX IF NOT EXISTS map_points_cluster ON map_points(cluster);

        CREATE TABLE IF NOT EXISTS map_clusters (
            id       INTEGER PRIMARY KEY,
            x        REAL NOT NULL,
            y        REAL NOT NULL,
            size     INTEGER NOT NULL,
            centroid BLOB NOT NULL,                -- float32 unit vector
            names    TEXT NOT NULL,                -- JSON {language: name}, {} when unnamed
            terms    TEXT NOT NULL,                -- JSON list of the terms that name it
            central  TEXT NOT NULL                 -- JSON keys of its items nearest its centroid
        )
        """,
    )


def _records_v8(conn: sqlite3.Connection) -> None:
    """The words of each item's catalogue record, searched beside the pictures (see
    store_records): written for every item now, then with each manifest saved."""
    try:
        conn.execute(
            """
            CREATE VIRTUAL TABLE IF NOT EXISTS item_records USING fts5(
                title, body, tokenize = 'unicode61 remove_diacritics 2'
            )
            """
        )
    except sqlite3.OperationalError as error:
        if "fts5" not in str(error):
            raise
        raise SchemaError(
            f"this Python's SQLite ({sqlite3.sqlite_version}) has no full-text search "
            "(FTS5), which Regard's stores need: run Regard with a Python whose sqlite3 "
            "has it (python.org's, Debian's and conda's do)"
        ) from error
    # Items leave the table only when a folder taken over deletes them: their records
    # go with them. (One statement holding `;`: not for _run_statements.)
    conn.execute(
        """
        CREATE TRIGGER IF NOT EXISTS item_records_deleted AFTER DELETE ON items BEGIN
            DELETE FROM item_records WHERE rowid = old.key;
        END
        """
    )
    if conn.execute("SELECT NOT EXISTS (SELECT 1 FROM item_records)").fetchone()[0]:
        fill_records(conn)


def _is_json_list(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create_v1,
    2: _record_links_v2,
    3: _described_service_v3,
    4: _generations_v4,
    5: _local_files_v5,
    6: _terms_v6,
    7: _map_v7,
    8: _records_v8,
}


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to SCHEMA_VERSION, one committed step at a time.

    `conn` is in autocommit mode (isolation_level=None): transactions are explicit.
    """
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise SchemaError(
            f"this store was written by a newer Regard (schema {current}, this one knows "
            f"{SCHEMA_VERSION}): upgrade Regard to open it"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
