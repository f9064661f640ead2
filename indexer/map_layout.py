"""Where each item lies on the map: UMAP fitted on landmarks, every item placed among them.

UMAP on a million vectors would take hours on an ordinary server, and its `transform`
is slower still (about 80 items a second on two cores). So the layout is fitted on a
sample of landmarks (20,000 by default: about a minute), and every item, landmarks
included, is placed at the similarity-weighted mean of its nearest landmarks' places,
found with FAISS: minutes for a million, and an item added later is placed the same way
without moving the others. Coordinates are scaled into 0..1 (the same scale across and
down, so that distances keep their meaning).
"""

from __future__ import annotations

import warnings

import numpy as np

LANDMARKS = 20_000
NEIGHBOURS = 15  # UMAP's n_neighbors: how local the layout's structure is
PLACE_AMONG = 8  # landmarks whose places place an item
# How sharply the nearest landmark wins: weights are exp(SHARPNESS * (cosine - best)).
SHARPNESS = 40.0
MARGIN = 0.02  # kept empty around the map's edge


def choose_landmarks(keys: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to `count` of the keys, drawn at random (sorted)."""
    if len(keys) <= count:
        return np.sort(keys)
    chosen = np.random.default_rng(seed).choice(keys, size=count, replace=False)
    return np.sort(chosen)


def fit(vectors: np.ndarray, seed: int) -> np.ndarray:
    """2-D places for the landmarks' vectors, scaled into 0..1. The same vector twice
    (the same picture in two manifests) gets one place: UMAP would part them."""
    if len(vectors) == 0:
        return np.zeros((0, 2), dtype=np.float32)
    distinct, inverse = np.unique(np.asarray(vectors), axis=0, return_inverse=True)
    return _fit_distinct(distinct, seed)[inverse.reshape(-1)]


def _fit_distinct(vectors: np.ndarray, seed: int) -> np.ndarray:
    n = len(vectors)
    if n <= NEIGHBOURS:
        return _scaled(_principal_plane(vectors))
    import umap  # slow to import (numba): only when a map is made

    reducer = umap.UMAP(
        n_neighbors=min(NEIGHBOURS, n - 1),
        min_dist=0.1,
        metric="cosine",
        random_state=seed,
        low_memory=True,
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by setting random_state": wanted, a map must be repeatable.
        warnings.simplefilter("ignore", UserWarning)
        places = reducer.fit_transform(np.asarray(vectors, dtype=np.float32))
    return _scaled(places)


class Placer:
    """Places vectors among fitted landmarks (their vectors and 0..1 places)."""

    def __init__(self, landmark_vectors: np.ndarray, landmark_places: np.ndarray):
        import faiss  # not at the top: `regard --help` reads LANDMARKS from here

        vectors = np.ascontiguousarray(landmark_vectors, dtype=np.float32)
        self.places = np.asarray(landmark_places, dtype=np.float32)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def place(self, vectors: np.ndarray) -> np.ndarray:
        if len(vectors) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        among = min(PLACE_AMONG, self.index.ntotal)
        query = np.ascontiguousarray(vectors, dtype=np.float32)
        cosines, nearest = self.index.search(query, among)
        weights = np.exp(SHARPNESS * (cosines - cosines[:, :1]))
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("nk,nkc->nc", weights, self.places[nearest]).astype(np.float32)


def _principal_plane(vectors: np.ndarray) -> np.ndarray:
    """Too few items for UMAP: their first two principal components."""
    centred = vectors - vectors.mean(axis=0)
    if len(vectors) < 2 or not np.any(centred):
        return np.zeros((len(vectors), 2), dtype=np.float32)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    plane = centred @ axes[:2].T
    if plane.shape[1] < 2:
        plane = np.hstack([plane, np.zeros((len(plane), 1))])
    return plane


def _scaled(places: np.ndarray) -> np.ndarray:
    """Into 0..1 with MARGIN, one scale for both axes, centred."""
    places = np.asarray(places, dtype=np.float64)
    low, high = places.min(axis=0), places.max(axis=0)
    span = float((high - low).max())
    if span == 0:
        return np.full(places.shape, 0.5, dtype=np.float32)
    inner = 1.0 - 2 * MARGIN
    scaled = (places - low) / span * inner + MARGIN
    scaled += (inner - (high - low) / span * inner) / 2  # centre the shorter axis
    return scaled.astype(np.float32)
