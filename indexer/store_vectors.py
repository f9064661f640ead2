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
from itertools import chain
from pathlib import Path

import numpy as np

SEARCHABLE = "FROM vectors v JOIN items i ON i.key = v.item_key WHERE i.state = 'indexed'"
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

    def stamps(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted keys of the searchable vectors, and the generation each was written at
        (those up to a generation are what an index built then must hold)."""
        cursor = self._conn.execute(
            f"SELECT v.item_key, v.generation {SEARCHABLE} ORDER BY v.item_key"
        )
        pairs = np.fromiter(chain.from_iterable(cursor), dtype=np.int64).reshape(-1, 2)
        return pairs[:, 0].copy(), pairs[:, 1].copy()

    def chunks(
        self, rows: int, after_generation: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All searchable (keys, float16 vectors), or those written after a generation,
        `rows` at a time, in key order: never all of them in memory at once."""
        last = -(2**63)
        newer = "" if after_generation is None else " AND v.generation > ?"
        extra = () if after_generation is None else (after_generation,)
        while True:
            batch = self._conn.execute(
                f"SELECT v.item_key, v.vector {SEARCHABLE}{newer} AND v.item_key > ? "
                "ORDER BY v.item_key LIMIT ?",
                (*extra, last, rows),
            ).fetchall()
            if not batch:
                return
            yield rows_to_arrays(batch)
            last = batch[-1][0]

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
