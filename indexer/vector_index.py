"""The FAISS index: a cache derived from the store's vectors, never trusted when stale.

`index.faiss` holds the index and `index.json` the store generation it was built
from. A missing, unreadable or stale pair is rebuilt from SQLite. Files are written
to a temporary name and renamed, so a reader never meets a half-written index.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .store import Store

INDEX_FILE = "index.faiss"
INDEX_META_FILE = "index.json"


@dataclass(frozen=True)
class Neighbour:
    key: int
    score: float


class VectorIndex:
    """Exact inner-product search over unit vectors (cosine similarity)."""

    def __init__(self, index: faiss.Index, generation: int, dim: int):
        self._index = index
        self.generation = generation
        self.dim = dim

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> list[list[Neighbour]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.size == 0:
            return [[] for _ in range(len(queries))]
        if queries.shape[1] != self.dim:
            raise ValueError(f"query of dimension {queries.shape[1]}, index of {self.dim}")
        scores, keys = self._index.search(queries, min(k, self.size))
        return [
            [
                Neighbour(int(key), float(score))
                for key, score in zip(row_keys, row_scores, strict=True)
                if key >= 0
            ]
            for row_keys, row_scores in zip(keys, scores, strict=True)
        ]

    # -- building and caching ------------------------------------------------------------

    @classmethod
    def build(cls, keys: np.ndarray, vectors: np.ndarray, generation: int) -> VectorIndex:
        dim = vectors.shape[1] if vectors.size else 0
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(max(dim, 1)))
        if len(keys):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), keys)
        return cls(index, generation, dim)

    @classmethod
    def load_or_build(cls, store: Store) -> VectorIndex:
        """The cached index when it matches the store's generation, else a fresh one."""
        cached = cls._load_cached(store.path, store.generation)
        if cached is not None:
            return cached
        keys, vectors, generation = store.searchable_vectors()
        index = cls.build(keys, vectors, generation)
        index.save(store.path)
        return index

    @classmethod
    def _load_cached(cls, folder: Path, generation: int) -> VectorIndex | None:
        try:
            meta = json.loads((folder / INDEX_META_FILE).read_text())
            if meta.get("generation") != generation:
                return None
            index = faiss.read_index(str(folder / INDEX_FILE))
        except (OSError, ValueError, RuntimeError):
            return None  # missing or unreadable: rebuilt by the caller
        if index.ntotal != meta.get("count"):
            return None
        return cls(index, generation, int(meta.get("dim", index.d)))

    def save(self, folder: Path) -> None:
        """Write the index, then its meta; readers check both, so order makes it safe."""
        pid = os.getpid()
        tmp_index = folder / f".{INDEX_FILE}.{pid}.tmp"
        tmp_meta = folder / f".{INDEX_META_FILE}.{pid}.tmp"
        try:
            faiss.write_index(self._index, str(tmp_index))
            tmp_meta.write_text(
                json.dumps({"generation": self.generation, "count": self.size, "dim": self.dim})
            )
            os.replace(tmp_index, folder / INDEX_FILE)
            os.replace(tmp_meta, folder / INDEX_META_FILE)
        except OSError:
            # A read-only store still serves: the index simply lives in memory only.
            for tmp in (tmp_index, tmp_meta):
                tmp.unlink(missing_ok=True)
