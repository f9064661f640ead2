"""Searching a store: text queries and "more like this", over an index kept fresh.

The index is refreshed when the store's generation moves (an indexer wrote new
vectors, or items left the collection): new vectors are added to the index (kept
beside the one answering, which is never changed: see vector_index), anything else
rebuilds it. A background thread refreshes while every query
goes on answering from the previous index, so a query never meets a half-built one
and never waits for a rebuild (only the very first build is waited for). While an
indexer writes a batch every second or so, a refresh starts at most every
REFRESH_INTERVAL_S seconds: new images appear a few seconds late, and the server does
not spend its cores on refreshes (each one reads the store and copies the vectors kept
beside the index since it was made: see vector_index).
Items that are no longer searchable (removed, failed) are never returned, even by
an index built before they left.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .index_memory import IndexTooLargeError
from .index_plan import IndexSettings
from .store import ItemRecord, Store
from .store_vectors import StoreVectors
from .text_cache import TextEmbeddingCache
from .vector_index import Modality, Neighbour, VectorIndex, refreshed

log = logging.getLogger(__name__)

SEARCHABLE_STATE = "indexed"
OVERFETCH = 8  # at most 8 times the results asked for, to make up for items that left
REFRESH_INTERVAL_S = 5.0  # the least time between the end of a refresh and the next


def clean_query(text: str) -> str:
    """A text query as searched: composed Unicode (NFC), single spaces, trimmed.

    "é" typed as e + U+0301 (some keyboards and pasted text) is the same query as "é":
    the same length against the service's limit, and the same text cache entry.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


class QueryCancelsOut(ValueError):
    """The examples of a combined query sum to (nearly) nothing: e.g. the same picture
    twice, once liked and once not."""


def combined_query(plus: Sequence[np.ndarray], minus: Sequence[np.ndarray]) -> np.ndarray:
    """One unit vector for several examples: the sum of the unit vectors to look like,
    less those to look unlike, normalised (as rclip combines its queries). Each example
    weighs the same, whatever its length."""
    total = np.zeros_like(np.asarray(plus[0], dtype=np.float32))
    for sign, vectors in ((1.0, plus), (-1.0, minus)):
        for vector in vectors:
            vector = np.asarray(vector, dtype=np.float32)
            total += sign * vector / max(float(np.linalg.norm(vector)), 1e-12)
    norm = float(np.linalg.norm(total))
    if norm < 1e-3:
        raise QueryCancelsOut(
            "the examples cancel each other out: what the query should look like and what "
            "it should not are the same; take one of them away"
        )
    return total / norm


class TextEncoder(Protocol):
    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


class VectorsOnly:
    """The text encoder of a searcher that only searches with stored vectors (a report
    over the store): no model is loaded, and a text query is a programming error."""

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("this searcher searches with stored vectors only, not with words")


@dataclass(frozen=True)
class Hit:
    item: ItemRecord
    score: float


class Searcher:
    """Answers queries from the store's index.

    `run_search` is where index searches run (by default, on the calling thread): the
    service gives the model's thread, so that all the work that uses OpenMP stays on one
    thread (see models.encoder_thread).
    """

    def __init__(
        self,
        store: Store,
        encoder: TextEncoder,
        settings: IndexSettings | None = None,
        text_cache: TextEmbeddingCache | None = None,
        run_search: Callable[..., list[list[Neighbour]]] | None = None,
    ):
        self.store = store
        self.encoder = encoder
        self.settings = settings or IndexSettings()
        self.text_cache = text_cache if text_cache is not None else TextEmbeddingCache()
        self._model_key = _model_key(encoder)
        self._run_search = run_search or (lambda search, *args: search(*args))
        self._vectors = StoreVectors(store.db_path)
        self._index: VectorIndex | None = None
        self._refresh_lock = threading.Lock()
        self._refreshed_at = -float("inf")  # time.monotonic() when the last one ended
        # A generation whose refresh failed (e.g. too large for memory): not retried per query.
        self._refused: tuple[int, str] | None = None

    def index(self) -> VectorIndex:
        """The index to answer from now; a refresh starts behind it when the store moved.

        Only the very first build is waited for: there is nothing to answer from before it.
        """
        current = self._index
        if current is None:
            return self.refresh()
        due = time.monotonic() - self._refreshed_at >= REFRESH_INTERVAL_S
        if due and self._is_stale(current) and self._refresh_lock.acquire(blocking=False):
            threading.Thread(
                target=self._refresh_in_background, name="regard-index-refresh", daemon=True
            ).start()
        return current

    def refresh(self) -> VectorIndex:
        """Bring the index up to the store's generation now, waiting for any refresh."""
        with self._refresh_lock:
            self._refresh_locked()
            assert self._index is not None
            return self._index

    def _is_stale(self, index: VectorIndex) -> bool:
        generation = self.store.generation
        refused = self._refused is not None and self._refused[0] == generation
        return index.generation != generation and not refused

    def _refresh_in_background(self) -> None:
        try:
            self._refresh_locked()
        finally:
            self._refreshed_at = time.monotonic()
            self._refresh_lock.release()

    def _refresh_locked(self) -> None:
        """Swap in an index for the store as it is now; the caller holds the lock."""
        current = self._index
        if current is None:
            self._index = VectorIndex.load_or_build(self.store, self.settings, self._vectors)
            return
        if not self._is_stale(current):
            return
        generation = self.store.generation
        try:
            # The previous index stays in use until the new one is whole: one assignment.
            self._index = refreshed(current, self.store, self.settings, self._vectors)
        except Exception as error:
            # Serving the previous index beats serving nothing; said in describe(), and
            # not tried again until the store moves on.
            if not isinstance(error, IndexTooLargeError):
                log.exception("index refresh to generation %s failed", generation)
            else:
                log.error("index not refreshed to generation %s: %s", generation, error)
            self._refused = (generation, str(error))

    def describe(self) -> dict[str, Any]:
        """The index in use and the text cache, for the service's status endpoints;
        `refreshing`: a newer index is being made while this one answers."""
        description = {**self.index().describe(), "text_cache": self.text_cache.describe()}
        description["refreshing"] = self._refresh_lock.locked()
        if self._refused is not None and self._refused[0] == self.store.generation:
            description["stale"] = self._refused[1]
        return description

    # -- searching -----------------------------------------------------------------------

    def embed_text(self, query: str) -> np.ndarray:
        """The query's vector, from the cache when the same query (however spelt in
        Unicode or spaced) came before."""
        return self.text_cache.get(
            self._model_key, clean_query(query), lambda text: self.encoder.embed_texts([text])[0]
        )

    def search_text(self, query: str, k: int) -> list[Hit]:
        return self.search_vector(self.embed_text(query), k, modality="text")

    def search_combined(
        self,
        query: str,
        like: Sequence[np.ndarray],
        unlike: Sequence[np.ndarray],
        k: int,
        exclude: Collection[int] = (),
    ) -> list[Hit]:
        """Images like the query's words and the `like` vectors together, and unlike the
        `unlike` ones (see combined_query); `exclude`: keys never returned (the items
        given as examples). Raises QueryCancelsOut."""
        plus = [self.embed_text(query), *like] if query else list(like)
        # The words set how far the index looks (a text query sits further from the
        # pictures than a picture does: see vector_index's probes per modality).
        modality: Modality = "text" if query else "image"
        return self.search_vector(combined_query(plus, unlike), k, exclude, modality)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        exclude: Collection[int] = (),
        modality: Modality = "image",
    ) -> list[Hit]:
        index = self.index()
        excluded = frozenset(exclude)
        wanted = k + len(excluded)
        # Items that left since the index was built take places: ask for more, within
        # reason (after a large removal, the rebuild under way will set it right).
        most = min(index.size, max(OVERFETCH * wanted, 256))
        while True:
            neighbours = self._run_search(index.search, vector[None, :], wanted, modality)[0]
            hits = self._searchable_hits(neighbours, excluded)
            if len(hits) >= k or len(neighbours) < wanted or wanted >= most:
                return hits[:k]
            wanted = min(2 * wanted, most)

    def _searchable_hits(self, neighbours: list[Neighbour], exclude: frozenset[int]) -> list[Hit]:
        keys = [n.key for n in neighbours if n.key not in exclude]
        records = self.store.items_by_key(keys)
        return [
            Hit(records[n.key], n.score)
            for n in neighbours
            if n.key in records and records[n.key].state == SEARCHABLE_STATE
        ]

    def similar(self, item: ItemRecord, k: int) -> list[Hit] | None:
        """Nearest neighbours of an item's own vector; None when it has no vector."""
        vector = self.store.vector_of(item.key)
        if vector is None:
            return None
        return self.search_vector(vector, k, exclude=(item.key,))


def _model_key(encoder: TextEncoder) -> str:
    """What tells one model's text vectors from another's: its fingerprint when it has one."""
    fingerprint = getattr(encoder, "fingerprint", None)
    key = getattr(fingerprint, "key", None)
    return str(key) if key is not None else f"{type(encoder).__name__}@{id(encoder):x}"
