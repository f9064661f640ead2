"""Reading a store's vectors for the index: in chunks, by generation, and by key.

The index is built from the `vectors` table of `store.sqlite` without ever holding all
of it as float32 (1,000,000 vectors of 768 floats would be 3 GB), and the IVF index
re-ranks its candidates with the stored float16 vectors read here by key. Only the
vectors of items in state 'indexed' are searchable: removed and failed items are not.

Its own read connections (one per thread, query-only), so that a long read
transaction here never shares a connection with the store's writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

SEARCHABLE = "FROM vectors v JOIN items i ON i.key = v.item_key WHERE i.state = 'indexed'"
# The same, for the few vectors of recent generations: CROSS JOIN makes SQLite go from
# the vectors (through their generation's index) to their items, not from every indexed
# item to its vector.
SEARCHABLE_RECENT = (
    "FROM vectors v CROSS JOIN items i ON i.key = v.item_key WHERE i.state = 'indexed'"
)
# SQLite binds at most 32,766 parameters (999 in old builds): key lists go in batches.
KEYS_PER_QUERY = 900


def rows_to_arrays(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """(keys as int64, vectors as a float16 matrix) from (key, blob) rows."""
    keys = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return keys, np.zeros((0, 0), dtype=np.float16)
    blob = b"".join(row[1] for row in rows)
    return keys, np.frombuffer(blob, dtype=np.float16).reshape(len(rows), -1)


class Snapshot:
    """One read transaction: everything read through it belongs to `generation`."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        self.generation = int(row[0]) if row else 0

    def count_and_dim(self) -> tuple[int, int]:
        count = self._conn.execute(f"SELECT COUNT(*) {SEARCHABLE}").fetchone()[0]
        row = self._conn.execute(f"SELECT length(v.vector) {SEARCHABLE} LIMIT 1").fetchone()
        return int(count), (int(row[0]) // 2 if row else 0)

    def keys(self) -> np.ndarray:
        """Sorted keys of the searchable vectors."""
        cursor = self._conn.execute(f"SELECT v.item_key {SEARCHABLE} ORDER BY v.item_key")
        return np.fromiter((row[0] for row in cursor), dtype=np.int64)

    def only_added_since(self, generation: int) -> bool:
        """Whether every change since `generation` only made new items searchable: an
        index built at it then holds exactly the store's vectors but those written
        since. False where the store never was at `generation`: restored from a backup
        taken before it (the same keys may hold older vectors), or migrated since."""
        was_there = self._conn.execute(
            "SELECT 1 FROM generations WHERE generation = ?", (generation,)
        ).fetchone()
        other_change = self._conn.execute(
            "SELECT 1 FROM generations WHERE generation > ? AND NOT only_added LIMIT 1",
            (generation,),
        ).fetchone()
        return was_there is not None and other_change is None

    def count_and_dim_since(self, generation: int) -> tuple[int, int]:
        """How many searchable vectors were written after `generation`, and their dimension."""
        count = self._conn.execute(
            f"SELECT COUNT(*) {SEARCHABLE_RECENT} AND v.generation > ?", (generation,)
        ).fetchone()[0]
        row = self._conn.execute(
            f"SELECT length(v.vector) {SEARCHABLE_RECENT} AND v.generation > ? LIMIT 1",
            (generation,),
        ).fetchone()
        return int(count), (int(row[0]) // 2 if row else 0)

    def vectors_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The searchable ones among `keys` (see vectors_by_key), in this snapshot."""
        return vectors_by_key(self._conn, keys)

    def chunks(self, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All searchable (keys, float16 vectors), `rows` at a time, in key order: never
        all of them in memory at once."""
        last = -(2**63)
        while True:
            batch = self._conn.execute(
                f"SELECT v.item_key, v.vector {SEARCHABLE} AND v.item_key > ? "
                "ORDER BY v.item_key LIMIT ?",
                (last, rows),
            ).fetchall()
            if not batch:
                return
            yield rows_to_arrays(batch)
            last = batch[-1][0]

    def chunks_since(self, generation: int, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The searchable (keys, float16 vectors) written after `generation`, `rows` at a
        time, in the order they were written: read through the generation's index, not
        by a pass over every vector (a refresh while an indexer writes comes often)."""
        last = (generation, 2**63 - 1)
        while True:
            batch = self._conn.execute(
                f"SELECT v.item_key, v.vector, v.generation {SEARCHABLE_RECENT} "
                "AND (v.generation, v.item_key) > (?, ?) "
                "ORDER BY v.generation, v.item_key LIMIT ?",
                (*last, rows),
            ).fetchall()
            if not batch:
                return
            yield rows_to_arrays([(key, vector) for key, vector, _ in batch])
            last = (batch[-1][2], batch[-1][0])

    def sample(self, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """`size` searchable items drawn at random (all of them if fewer): their keys and
        float16 vectors."""
        keys = self.keys()
        if size < len(keys):
            keys = np.sort(np.random.default_rng(seed).choice(keys, size, replace=False))
        return vectors_by_key(self._conn, keys)


def vectors_by_key(conn: sqlite3.Connection, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The searchable ones among `keys`: (keys, float16 vectors), in no particular order."""
    rows: list[tuple[int, bytes]] = []
    wanted = [int(key) for key in keys]
    for start in range(0, len(wanted), KEYS_PER_QUERY):
        part = wanted[start : start + KEYS_PER_QUERY]
        rows += conn.execute(
            f"SELECT v.item_key, v.vector {SEARCHABLE} "
            f"AND v.item_key IN ({','.join('?' * len(part))})",
            part,
        ).fetchall()
    return rows_to_arrays(rows)


class StoreVectors:
    """The searchable vectors of one store: snapshots for building, look-ups for re-ranking."""

    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        conn = self._conn()
        if conn.in_transaction:  # already inside one on this thread: the same view
            yield Snapshot(conn)
            return
        conn.execute("BEGIN")  # WAL: a consistent view, and writers are not blocked
        try:
            yield Snapshot(conn)
        finally:
            conn.execute("COMMIT")

    def vectors_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return vectors_by_key(self._conn(), keys)
