"""Searching a store: text queries and "more like this", over an index kept fresh.

The index is rebuilt when the store's generation moves (an indexer wrote new
vectors). One thread rebuilds while the others go on answering from the previous
index, so a query never meets a half-built one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .store import ItemRecord, Store
from .vector_index import VectorIndex


class TextEncoder(Protocol):
    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    item: ItemRecord
    score: float


class Searcher:
    def __init__(self, store: Store, encoder: TextEncoder):
        self.store = store
        self.encoder = encoder
        self._index: VectorIndex | None = None
        self._rebuild_lock = threading.Lock()

    def index(self) -> VectorIndex:
        """The current index; rebuilt here when the store has moved on."""
        current = self._index
        if current is not None and current.generation == self.store.generation:
            return current
        if current is not None and not self._rebuild_lock.acquire(blocking=False):
            return current  # another thread is rebuilding: answer from the previous index
        if current is None:
            self._rebuild_lock.acquire()
        try:
            if self._index is None or self._index.generation != self.store.generation:
                self._index = VectorIndex.load_or_build(self.store)
            return self._index
        finally:
            self._rebuild_lock.release()

    def search_text(self, query: str, k: int) -> list[Hit]:
        vector = self.encoder.embed_texts([query])[0]
        return self.search_vector(vector, k)

    def search_vector(self, vector: np.ndarray, k: int, exclude: int | None = None) -> list[Hit]:
        extra = 1 if exclude is not None else 0
        neighbours = self.index().search(vector[None, :], k + extra)[0]
        neighbours = [n for n in neighbours if n.key != exclude][:k]
        records = self.store.items_by_key([n.key for n in neighbours])
        # An item removed since the index was built is simply left out.
        return [Hit(records[n.key], n.score) for n in neighbours if n.key in records]

    def similar(self, item: ItemRecord, k: int) -> list[Hit] | None:
        """Nearest neighbours of an item's own vector; None when it has no vector."""
        vector = self.store.vector_of(item.key)
        if vector is None:
            return None
        return self.search_vector(vector, k, exclude=item.key)
