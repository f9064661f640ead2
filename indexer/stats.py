"""What a store holds, all told: items, vocabularies and decisions, the map."""

from __future__ import annotations

from typing import Any

from .store import Store
from .store_map import MapStore
from .store_terms import TermStore


def store_stats(store: Store) -> dict[str, Any]:
    """Store.stats() with the terms' counts and the map's state added."""
    stats = store.stats()
    return {
        **stats,
        "terms": TermStore(store).summary(),
        "map": MapStore(store).summary(stats["generation"]),
    }
