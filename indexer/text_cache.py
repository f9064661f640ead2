"""A small LRU cache of text embeddings: a repeated query skips the text tower.

On 2 CPU cores the text tower of the default model costs around 100 ms a query, far
more than the index; curators page through results and share links, so the same query
string comes back often. Keyed by the model fingerprint too, so that two models never
share an entry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

DEFAULT_SIZE = 1024  # 1,024 vectors of 768 float32: 3 MB


class TextEmbeddingCache:
    def __init__(self, size: int = DEFAULT_SIZE):
        if size < 0:
            raise ValueError(f"text cache size must be 0 or more, not {size}")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str, text: str, embed: Callable[[str], np.ndarray]) -> np.ndarray:
        """The embedding of `text` by `model`, from the cache or from `embed(text)`."""
        key = (model, text)
        with self._lock:
            vector = self._entries.get(key)
            if vector is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return vector
            self.misses += 1
        # Encoding runs outside the lock: other queries need not wait for this one.
        vector = np.array(embed(text), dtype=np.float32)
        vector.flags.writeable = False  # shared between requests: nobody may change it
        if self.size:
            with self._lock:
                self._entries[key] = vector
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return vector

    def describe(self) -> dict[str, int]:
        with self._lock:
            return {
                "size": self.size,
                "entries": len(self._entries),
                "hits": self.hits,
                "misses": self.misses,
            }
