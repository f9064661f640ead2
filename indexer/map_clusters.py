"""The map's clusters: spherical k-means on the vectors, named from the store's thesauri.

A cluster is named by the terms that tell it from the rest of the collection: those
whose cosine to the cluster's centroid most exceeds their cosine to the collection's
mean. Without that contrast an archive of drawings would see "dessin" name every
cluster. A store without a vocabulary gets unnamed clusters (the viewer shows their
pictures); `regard vocab add` then `regard map` names them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import faiss
import numpy as np

from .store_map import ClusterName
from .store_terms import StoredConcept
from .terms import TermScorer

MAX_CLUSTERS = 40  # more names than this are not read on a map
NAMING_TERMS = 2
SHORTLIST = 50  # terms closest to a centroid, among which the contrast chooses


def cluster_count(items: int) -> int:
    """About sqrt(n / 4), between 2 and MAX_CLUSTERS: 5 for 100 items, 16 for 1,000."""
    if items < 4:
        return 1
    return max(2, min(MAX_CLUSTERS, round(math.sqrt(items / 4))))


def centroids_of(vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` unit centroids (fewer if there are fewer distinct vectors)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    count = max(1, min(count, len(vectors)))
    if count == 1:
        return _unit(vectors.mean(axis=0, keepdims=True))
    kmeans = faiss.Kmeans(
        vectors.shape[1], count, niter=25, seed=seed, spherical=True, verbose=False
    )
    # faiss warns, and samples, below 39 points a centroid: small stores are fine as they are.
    kmeans.cp.min_points_per_centroid = 1
    kmeans.train(vectors)
    assert kmeans.centroids is not None
    return _unit(kmeans.centroids)


def assign(vectors: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's nearest centroid, and its cosine to it."""
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    cosines, nearest = index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    return nearest[:, 0].astype(np.int64), cosines[:, 0]


def name_clusters(
    centroids: np.ndarray,
    collection_mean: np.ndarray,
    scorer: TermScorer | None,
    vocabularies: Sequence[str],
) -> list[ClusterName]:
    """A name per centroid from the vocabularies' terms, in each language they have."""
    names = [ClusterName() for _ in centroids]
    if scorer is None or not vocabularies:
        return names
    shortlists = [scorer.suggest_many(centroids, name, SHORTLIST) for name in vocabularies]
    overall = [
        scorer.suggest_many(collection_mean[None, :], name, 10**9)[0] for name in vocabularies
    ]
    baseline = {s.concept.key: s.cosine for ranked in overall for s in ranked}
    taken: set[frozenset[int]] = set()
    for row, named in enumerate(names):
        candidates = [s for shortlist in shortlists for s in shortlist[row]]
        candidates.sort(key=lambda s: (baseline[s.concept.key] - s.cosine, s.rank))
        named.terms = _unused_pair([s.concept for s in candidates], taken)
        taken.add(frozenset(c.key for c in named.terms))
        languages = {lang for concept in named.terms for lang in concept.labels}
        for lang in sorted(languages):
            named.names[lang] = " · ".join(_label(c, lang) for c in named.terms)
    return names


def _unused_pair(ranked: list[StoredConcept], taken: set[frozenset[int]]) -> list[StoredConcept]:
    """The best term, with the next best that gives a name no cluster has yet: two
    clusters that read alike on the map cannot be told apart. The best pair when every
    one is taken."""
    best = ranked[:NAMING_TERMS]
    if len(best) < NAMING_TERMS:
        return best
    for other in ranked[1:]:
        if frozenset((ranked[0].key, other.key)) not in taken:
            return [ranked[0], other]
    return best


def _label(concept: StoredConcept, language: str) -> str:
    return concept.labels.get(language) or next(iter(concept.labels.values()))


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
