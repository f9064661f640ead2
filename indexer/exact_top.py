"""Exact top-k by inner product over vectors read in chunks: never all of them as float32.

Recall is measured against it (`regard recall`, scripts/bench_search) and an IVF index
chooses how many cells to scan with it (index_tuning.py), in the same pass that adds the
vectors to the index.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUERIES_PER_BLOCK = 100


class ExactTop:
    """Each query's k best (keys, inner products) among the chunks added so far."""

    def __init__(self, queries: np.ndarray, k: int):
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.k = k
        self.scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self.keys = np.full((len(queries), k), -1, dtype=np.int64)  # -1: fewer than k seen

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys) or not len(self.queries):
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        keys = np.asarray(keys, dtype=np.int64)
        take = min(self.k, len(keys))
        # A block of queries at a time: a few tens of MB of scores, not every query's.
        for start in range(0, len(self.queries), QUERIES_PER_BLOCK):
            block = slice(start, start + QUERIES_PER_BLOCK)
            scores = self.queries[block] @ vectors.T
            top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            all_scores = np.concatenate([self.scores[block], np.take_along_axis(scores, top, 1)], 1)
            all_keys = np.concatenate([self.keys[block], keys[top]], 1)
            order = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]
            self.scores[block] = np.take_along_axis(all_scores, order, 1)
            self.keys[block] = np.take_along_axis(all_keys, order, 1)


def best_of_chunks(
    queries: np.ndarray, chunks: Iterable[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's k best (keys, inner products), best first, over (keys, vectors) chunks
    read one at a time. Rows with fewer than k vectors seen are padded with key -1."""
    top = ExactTop(queries, k)
    for keys, vectors in chunks:
        top.add(keys, vectors)
    return top.keys, top.scores
