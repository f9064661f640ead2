"""The map's tables in the store: items' places, clusters, landmarks, and what made them.

A new map replaces the old one in one transaction: a crash while it is written leaves
the old map whole. Items placed later are added beside it. Only items searchable now
are read back: a removed item leaves the map without it being rewritten.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .store import Store
from .store_terms import StoredConcept

ON_MAP = "FROM map_points p JOIN items i ON i.key = p.item_key WHERE i.state = 'indexed'"
# The same, read in the points' order: "+i.state" keeps SQLite from starting at the index
# on state and sorting a million rows for each page (16 s cold, 0.2-0.7 s warm, at a
# million); it walks the points in key order and looks each item up.
ON_MAP_IN_ORDER = "FROM map_points p JOIN items i ON i.key = p.item_key WHERE +i.state = 'indexed'"


@dataclass
class ClusterName:
    """What names a cluster: its name per language, and the terms it is made of."""

    names: dict[str, str] = field(default_factory=dict)  # {language: "fauteuil · chaise"}
    terms: list[StoredConcept] = field(default_factory=list)


@dataclass(frozen=True)
class Cluster:
    id: int
    x: float
    y: float
    size: int  # searchable items in it now
    centroid: np.ndarray
    names: dict[str, str]
    terms: list[dict[str, Any]]  # {id, vocabulary, labels}
    central: list[int]  # keys of its items nearest its centroid, nearest first


@dataclass(frozen=True)
class MapPoints:
    ids: list[str]
    x: list[float]
    y: list[float]
    cluster: list[int]
    last_key: int | None  # the last point's item key: the next page starts after it


class MapStore:
    def __init__(self, store: Store):
        self.store = store

    def info(self) -> dict[str, Any] | None:
        """What the map was made from and how (None: no map yet)."""
        row = self.store.reader().execute("SELECT value FROM meta WHERE key = 'map'").fetchone()
        return None if row is None else json.loads(row[0])

    def replace(
        self,
        keys: np.ndarray,
        places: np.ndarray,
        clusters: np.ndarray,
        landmarks: np.ndarray,
        centroids: np.ndarray,
        central: Sequence[Sequence[int]],
        names: Sequence[ClusterName],
        info: dict[str, Any],
    ) -> None:
        """The whole map anew; `central` lists each cluster's items nearest its centroid."""
        is_landmark = np.isin(keys, landmarks)
        with self.store.writing() as conn:
            conn.execute("DELETE FROM map_points")
            conn.execute("DELETE FROM map_clusters")
            _insert_points(conn, keys, places, clusters, is_landmark)
            where = {int(key): place for key, place in zip(keys.tolist(), places, strict=True)}
            for cluster, (centroid, name) in enumerate(zip(centroids, names, strict=True)):
                # Its name goes where its most central item lies: on its main clump, where
                # the mean of its places may fall in the gap between two clumps.
                x, y = where[central[cluster][0]] if central[cluster] else (0.5, 0.5)
                conn.execute(
                    "INSERT INTO map_clusters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cluster,
                        float(x),
                        float(y),
                        int(np.count_nonzero(clusters == cluster)),
                        np.asarray(centroid, dtype=np.float32).tobytes(),
                        json.dumps(name.names, ensure_ascii=False),
                        json.dumps([_term(c) for c in name.terms], ensure_ascii=False),
                        json.dumps([int(key) for key in central[cluster]]),
                    ),
                )
            _save_info(conn, info)

    def add(
        self, keys: np.ndarray, places: np.ndarray, clusters: np.ndarray, info: dict[str, Any]
    ) -> None:
        """Items placed among the map's landmarks, the rest left where it is."""
        with self.store.writing() as conn:
            conn.execute(
                "DELETE FROM map_points WHERE item_key IN (SELECT value FROM json_each(?))",
                (json.dumps(keys.tolist()),),
            )
            _insert_points(conn, keys, places, clusters, np.zeros(len(keys), dtype=bool))
            _save_info(conn, info)

    def rename(
        self,
        names: Sequence[ClusterName],
        info: dict[str, Any],
    ) -> None:
        """New names for the clusters, in their order."""
        with self.store.writing() as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM map_clusters ORDER BY id")]
            for cluster, name in zip(ids, names, strict=True):
                conn.execute(
                    "UPDATE map_clusters SET names = ?, terms = ? WHERE id = ?",
                    (
                        json.dumps(name.names, ensure_ascii=False),
                        json.dumps([_term(c) for c in name.terms], ensure_ascii=False),
                        cluster,
                    ),
                )
            _save_info(conn, info)

    def summary(self, generation: int) -> dict[str, Any] | None:
        """For `regard stats` and /api/stats: None when there is no map."""
        info = self.info()
        if info is None:
            return None
        clusters = self.store.reader().execute("SELECT COUNT(*) FROM map_clusters").fetchone()[0]
        return {
            "items": self.count(),
            "clusters": clusters,
            "stale": info["generation"] != generation,
            "updated_at": info["updated_at"],
        }

    def landmarks(self) -> tuple[np.ndarray, np.ndarray]:
        """The landmarks' keys and places (removed ones too: they still place items)."""
        rows = (
            self.store.reader()
            .execute("SELECT item_key, x, y FROM map_points WHERE landmark ORDER BY item_key")
            .fetchall()
        )
        keys = np.array([row[0] for row in rows], dtype=np.int64)
        places = np.array([(row[1], row[2]) for row in rows], dtype=np.float32).reshape(-1, 2)
        return keys, places

    def placed_keys(self) -> np.ndarray:
        rows = self.store.reader().execute("SELECT item_key FROM map_points")
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def count(self) -> int:
        return int(self.store.reader().execute(f"SELECT COUNT(*) {ON_MAP}").fetchone()[0])

    def points(self, limit: int, after: int = 0, offset: int = 0) -> MapPoints:
        """A page of points in their items' key order: those after the item key `after`
        (each page as fast as the first), or past the first `offset` (slower deep in)."""
        rows = (
            self.store.reader()
            .execute(
                f"SELECT p.item_key, i.id, p.x, p.y, p.cluster {ON_MAP_IN_ORDER} "
                "AND p.item_key > ? ORDER BY p.item_key LIMIT ? OFFSET ?",
                (after, limit, offset),
            )
            .fetchall()
        )
        return MapPoints(
            ids=[row[1] for row in rows],
            x=[round(row[2], 5) for row in rows],
            y=[round(row[3], 5) for row in rows],
            cluster=[row[4] for row in rows],
            last_key=rows[-1][0] if rows else None,
        )

    def sizes(self) -> dict[int, int]:
        """Each cluster's searchable items."""
        conn = self.store.reader()
        return dict(conn.execute(f"SELECT p.cluster, COUNT(*) {ON_MAP} GROUP BY p.cluster"))

    def clusters(self, sizes: dict[int, int] | None = None) -> list[Cluster]:
        """The clusters, with their sizes now (`sizes`, when the caller has them)."""
        conn = self.store.reader()
        sizes = self.sizes() if sizes is None else sizes
        rows = conn.execute("SELECT * FROM map_clusters ORDER BY id").fetchall()
        return [
            Cluster(
                id=row["id"],
                x=row["x"],
                y=row["y"],
                size=sizes.get(row["id"], 0),
                centroid=np.frombuffer(row["centroid"], dtype=np.float32),
                names=json.loads(row["names"]),
                terms=json.loads(row["terms"]),
                central=json.loads(row["central"]),
            )
            for row in rows
        ]

    def members(self, cluster: int) -> np.ndarray:
        rows = self.store.reader().execute(
            f"SELECT p.item_key {ON_MAP_IN_ORDER} AND p.cluster = ? ORDER BY p.item_key",
            (cluster,),
        )
        return np.fromiter((row[0] for row in rows), dtype=np.int64)


def _insert_points(
    conn: sqlite3.Connection,
    keys: np.ndarray,
    places: np.ndarray,
    clusters: np.ndarray,
    is_landmark: np.ndarray,
) -> None:
    conn.executemany(
        "INSERT INTO map_points VALUES (?, ?, ?, ?, ?)",
        zip(
            keys.tolist(),
            places[:, 0].tolist(),
            places[:, 1].tolist(),
            clusters.tolist(),
            is_landmark.astype(int).tolist(),
            strict=True,
        ),
    )


def _save_info(conn: sqlite3.Connection, info: dict[str, Any]) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('map', ?)", (json.dumps(info),))


def _term(concept: StoredConcept) -> dict[str, Any]:
    return {"id": concept.id, "vocabulary": concept.vocabulary, "labels": concept.labels}


class MapCounts:
    """The clusters' sizes, counted once for a map and a state of the store: at a million
    items a count takes a third of a second, and the viewer asks for it with /api/map and
    every page of points. Counted again when the store's generation moves (items became
    searchable or left) or the map was made or grown since."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counted: tuple[tuple[Any, ...], dict[int, int]] | None = None

    def sizes(self, maps: MapStore, info: dict[str, Any]) -> dict[int, int]:
        state = (maps.store.generation, info.get("made_at"), info.get("updated_at"))
        with self._lock:
            if self._counted is not None and self._counted[0] == state:
                return self._counted[1]
        sizes = maps.sizes()
        with self._lock:
            self._counted = (state, sizes)
        return sizes
