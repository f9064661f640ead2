"""`regard map`: the map of a store made, brought up to date, or left as it is.

A store that only gained items since its map keeps the map: the new items are placed
among its landmarks and join their nearest cluster, in seconds. Anything else (items
re-embedded or removed and back, or asked with --rebuild or other settings) makes the
map anew. Clusters are named again whenever the store's vocabularies changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import map_clusters, map_layout
from .errors import IndexerError
from .store import Store, now
from .store_map import ClusterName, MapStore
from .store_terms import TermStore
from .store_vectors import Snapshot, StoreVectors
from .terms import ModelScoring, TermScorer

ROWS_PER_CHUNK = 8192
CENTRAL = 48  # items kept per cluster, nearest its centroid: its pictures in the viewer
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class MapReport:
    made: str  # "new" | "added" | "current"
    items: int  # on the map now
    placed: int  # by this run
    landmarks: int
    clusters: int
    named: bool  # clusters named from vocabularies
    seconds: float


@dataclass(frozen=True)
class MapSettings:
    clusters: int | None = None  # None: from the number of items
    landmarks: int = map_layout.LANDMARKS
    seed: int = 0
    rebuild: bool = False


def make_map(store: Store, settings: MapSettings, progress: Progress | None = None) -> MapReport:
    started = time.perf_counter()
    maps = MapStore(store)
    info = maps.info()
    vectors = StoreVectors(store.db_path)
    with vectors.snapshot() as snapshot:
        if snapshot.count_and_dim()[0] == 0:
            raise IndexerError(
                f"the store in {store.path} has no searchable image to map: index some first "
                "(regard index SOURCE --store DIR)"
            )
        if info is not None and _can_keep(info, settings, snapshot):
            made, placed = _add_new(maps, info, snapshot, progress)
        else:
            made, placed = "new", _make_new(maps, settings, snapshot, progress)
    named = _name_if_changed(store, maps)
    info = maps.info() or {}
    return MapReport(
        made=made,
        items=maps.count(),
        placed=placed,
        landmarks=int(info.get("landmarks", 0)),
        clusters=len(maps.clusters()),
        named=named,
        seconds=round(time.perf_counter() - started, 1),
    )


def _can_keep(info: dict[str, Any], settings: MapSettings, snapshot: Snapshot) -> bool:
    asked = settings.clusters is None or settings.clusters == info.get("clusters_asked")
    same = asked and settings.landmarks == info["landmarks_asked"] and settings.seed == info["seed"]
    return same and not settings.rebuild and snapshot.only_added_since(info["generation"])


def _make_new(
    maps: MapStore,
    settings: MapSettings,
    snapshot: Snapshot,
    progress: Progress | None,
) -> int:
    keys = snapshot.keys()
    landmark_keys, landmark_vectors = _vectors(
        snapshot, map_layout.choose_landmarks(keys, settings.landmarks, settings.seed)
    )
    if progress:
        progress("layout", 0, len(landmark_keys))
    landmark_places = map_layout.fit(landmark_vectors, settings.seed)
    count = settings.clusters or map_clusters.cluster_count(len(keys))
    centroids = map_clusters.centroids_of(landmark_vectors, count, settings.seed)
    placer = map_layout.Placer(landmark_vectors, landmark_places)
    all_keys, places, clusters, cosines = _place_all(
        snapshot, placer, centroids, len(keys), progress
    )
    # Landmarks keep the places UMAP gave them: later items are placed among those.
    at = np.searchsorted(all_keys, landmark_keys)
    places[at] = landmark_places
    stamp = now()
    info = {
        "generation": snapshot.generation,
        "made_at": stamp,
        "updated_at": stamp,
        "landmarks": len(landmark_keys),
        "landmarks_asked": settings.landmarks,
        "clusters_asked": settings.clusters,
        "seed": settings.seed,
        "vocabularies": None,  # named below
    }
    unnamed = [ClusterName() for _ in centroids]
    central = _central(all_keys, clusters, cosines, len(centroids))
    maps.replace(all_keys, places, clusters, landmark_keys, centroids, central, unnamed, info)
    return len(all_keys)


def _add_new(
    maps: MapStore,
    info: dict[str, Any],
    snapshot: Snapshot,
    progress: Progress | None,
) -> tuple[str, int]:
    new_keys = np.setdiff1d(snapshot.keys(), maps.placed_keys())
    if len(new_keys) == 0:
        return "current", 0
    landmark_keys, landmark_places = maps.landmarks()
    found, landmark_vectors = _vectors(snapshot, landmark_keys)
    placer = map_layout.Placer(
        landmark_vectors, landmark_places[np.searchsorted(landmark_keys, found)]
    )
    centroids = np.stack([cluster.centroid for cluster in maps.clusters()])
    added = 0
    for start in range(0, len(new_keys), ROWS_PER_CHUNK):
        keys, vectors = _vectors(snapshot, new_keys[start : start + ROWS_PER_CHUNK])
        clusters, _ = map_clusters.assign(vectors, centroids)
        maps.add(
            keys,
            placer.place(vectors),
            clusters,
            {**info, "updated_at": now(), "generation": snapshot.generation},
        )
        added += len(keys)
        if progress:
            progress("placing", added, len(new_keys))
    return "added", added


def _place_all(
    snapshot: Snapshot,
    placer: map_layout.Placer,
    centroids: np.ndarray,
    total: int,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every searchable item's key, place, cluster and cosine to its cluster's centroid."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    done = 0
    if progress:
        progress("placing", 0, total)
    for keys, vectors in snapshot.chunks(ROWS_PER_CHUNK):
        vectors = vectors.astype(np.float32)
        clusters, cosines = map_clusters.assign(vectors, centroids)
        parts.append((keys, placer.place(vectors), clusters, cosines))
        done += len(keys)
        if progress:
            progress("placing", done, total)
    keys, places, clusters, cosines = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    return keys, places, clusters, cosines


def _central(
    keys: np.ndarray, clusters: np.ndarray, cosines: np.ndarray, count: int
) -> list[list[int]]:
    """Each cluster's CENTRAL items nearest its centroid, nearest first."""
    order = np.lexsort((-cosines, clusters))  # by cluster, then nearest first
    starts = np.searchsorted(clusters[order], np.arange(count + 1))
    return [keys[order[starts[c] : starts[c + 1]][:CENTRAL]].tolist() for c in range(count)]


def _name_if_changed(store: Store, maps: MapStore) -> bool:
    """Name the clusters from the store's vocabularies, unless they are named from them
    as they are now. Returns whether the clusters have names."""
    info = maps.info()
    if info is None:
        return False
    terms = TermStore(store)
    vocabularies = terms.vocabularies(_fingerprint(store))
    stamp = [[v.name, v.updated_at, v.embedded] for v in vocabularies]
    clusters = maps.clusters()
    if info.get("vocabularies") == stamp:
        return any(cluster.names for cluster in clusters)
    scorer = None
    if stamp and terms.scoring() is not None:
        scorer = TermScorer(terms, ModelScoring.stored(terms))
    centroids = np.stack([c.centroid for c in clusters])
    sizes = np.array([max(c.size, 1) for c in clusters], dtype=np.float32)
    # The collection's mean, from the clusters' (each weighed by its size).
    mean = (centroids * sizes[:, None]).sum(axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    names = map_clusters.name_clusters(centroids, mean, scorer, [v.name for v in vocabularies])
    maps.rename(names, {**info, "vocabularies": stamp})
    return any(name.names for name in names)


def _vectors(snapshot: Snapshot, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The searchable ones among `keys`, sorted by key, as float32."""
    found, vectors = snapshot.vectors_of(keys)
    order = np.argsort(found)
    return found[order], vectors[order].astype(np.float32)


def _fingerprint(store: Store) -> str | None:
    model = store.model
    return None if model is None else model.key
