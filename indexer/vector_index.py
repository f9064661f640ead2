"""The FAISS index: a cache derived from the store's vectors, never trusted when stale.

`index.faiss` holds the index and `index.json` the store generation it was built from
and the plan it follows (exact or IVF, with its parameters: see `index_plan.py`). A pair
built at an earlier generation is grown with the vectors written since, when the store
records that every change since only made new items searchable (its generations table)
and the plan still fits the size; a missing, unreadable, otherwise stale or differently
planned pair is rebuilt from SQLite, in chunks, after checking that it fits in memory.
Files are written to a temporary name and renamed, so a reader never meets a
half-written index; index.json names its index file by size and time of writing, so
that a pair mixed by two writers (an indexer and a server) is rebuilt.

An index another thread may be searching is never changed: adding vectors makes a new
one (`with_added`), so threads still searching the previous one are never disturbed.
The new one shares the faiss index and keeps the vectors added since apart (`_Recent`,
scanned exactly beside it), up to RECENT_LIMIT of them: a server's refresh after each
batch an indexer writes then copies no index of hundreds of MB, and does not hold two.
Past the limit they are folded into a copy of the faiss index, once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import faiss
import numpy as np

from .exact_top import ExactTop
from .index_memory import BUILD_CHUNK_ROWS, check_fits, estimate
from .index_plan import IndexPlan, IndexSettings, plan_index
from .index_tuning import PROBES_PER_KIND, Probes, tune
from .ivf_lists import cell_ids, ivf_params
from .store import Store
from .store_vectors import Snapshot, StoreVectors

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
INDEX_META_FILE = "index.json"

# Where a query vector came from: an IVF index scans more cells for a text's vector.
Modality = Literal["image", "text"]

# An exact scan for one query runs on one core in faiss; split in key ranges, it runs on
# all of them (100,000 vectors on 2 cores: 17 ms -> 8.5 ms). A part smaller than this
# scans faster than threads hand it over.
MIN_VECTORS_PER_PART = 25_000


@dataclass(frozen=True)
class Neighbour:
    key: int
    score: float


class RerankSource(Protocol):
    """Where the IVF index finds the exact vectors of its candidates."""

    def vectors_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class ArrayVectors:
    """Vectors held in memory, for indexes built from arrays (tests, scripts)."""

    def __init__(self, keys: np.ndarray, vectors: np.ndarray):
        order = np.argsort(keys)
        self._keys = np.asarray(keys, dtype=np.int64)[order]
        self._vectors = np.asarray(vectors, dtype=np.float16)[order]

    def with_added(self, keys: np.ndarray, vectors: np.ndarray) -> ArrayVectors:
        return ArrayVectors(
            np.concatenate([self._keys, keys]), np.concatenate([self._vectors, vectors])
        )

    def vectors_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        where = np.searchsorted(self._keys, keys).clip(max=max(len(self._keys) - 1, 0))
        found = self._keys[where] == keys if len(self._keys) else np.zeros(len(keys), bool)
        return np.asarray(keys)[found], self._vectors[where[found]]


# The most vectors kept beside a shared faiss index (see `with_chunks_added`): each query
# scans them exactly (16,384 x 768 floats: 50 MB, about 1 ms a query on 2 cores); past it
# they are folded into a copy of the index, once per that many additions.
RECENT_LIMIT = 16_384


@dataclass(frozen=True)
class _Recent:
    """Vectors added since the faiss index beside them was made: scanned exactly."""

    keys: np.ndarray  # int64
    vectors: np.ndarray  # float32, one unit vector a row

    @property
    def count(self) -> int:
        return len(self.keys)

    @staticmethod
    def joined(recent: _Recent | None, keys: np.ndarray, vectors: np.ndarray) -> _Recent:
        if recent is None:
            return _Recent(keys, vectors)
        return _Recent(
            np.concatenate([recent.keys, keys]), np.concatenate([recent.vectors, vectors])
        )

    def best(self, queries: np.ndarray, k: int) -> list[list[Neighbour]]:
        """The k best of them for each query, best first."""
        scores = queries @ self.vectors.T
        best = []
        for row in scores:
            top = np.argpartition(-row, k)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.argsort(-row[top], kind="stable")]
            best.append(_neighbours(self.keys[top], row[top]))
        return best


def _best_of(first: list[Neighbour], second: list[Neighbour], k: int) -> list[Neighbour]:
    """The k best of two lists of neighbours, best first."""
    return sorted([*first, *second], key=lambda n: -n.score)[:k]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class VectorIndex:
    """Inner-product search over unit vectors (cosine similarity), exact or IVF."""

    def __init__(
        self,
        index: faiss.Index,
        plan: IndexPlan,
        generation: int,
        dim: int,
        keys: np.ndarray,
        source: RerankSource | None = None,
        origin: str = "built",
        built_at: str | None = None,
        mapped: bool = False,
        recent: _Recent | None = None,
    ):
        self._index = index
        self._recent = recent  # added since `index` was made, searched beside it
        self.mapped = mapped  # read from its file memory-mapped: read-only
        self.plan = plan
        self.generation = generation
        self.dim = dim
        self.keys = keys  # sorted: the items this index can return
        self._source = source
        self.origin = origin  # built | loaded (from the cache files) | added (incrementally)
        self.built_at = built_at or _now()
        self._parts: list[_KeyRange] = []  # exact: the key ranges one query is split in
        if plan.kind == "ivf":
            self._params: dict[Modality, faiss.SearchParametersIVF] = {
                "image": ivf_params(plan.nprobe),
                "text": ivf_params(plan.text_nprobe or plan.nprobe),
            }
            # One query's cells are scanned by all the cores, not only by one: the
            # service asks one query at a time (1.5 to 1.9 times faster on 2 cores).
            faiss.extract_index_ivf(index).parallel_mode = 1
        else:
            self._parts = _key_ranges(keys, _cores())

    @property
    def size(self) -> int:
        return int(self._index.ntotal) + (self._recent.count if self._recent else 0)

    @property
    def scan_parts(self) -> int:
        """How many threads scan an exact index for one query (IVF: faiss splits it)."""
        return len(self._parts) or 1

    def describe(self) -> dict[str, Any]:
        """The index as the service reports it: kind, why, parameters, size, memory."""
        return {
            **self.plan.to_dict(),
            "count": self.size,
            "dim": self.dim,
            "generation": self.generation,
            "origin": self.origin,
            "built_at": self.built_at,
            "memory_bytes": estimate(self.plan, self.size, self.dim).resident
            + (self._recent.vectors.nbytes if self._recent else 0),
        }

    def with_plan(self, plan: IndexPlan) -> VectorIndex:
        """This index searched with another plan's cells and candidates (the faiss index
        is shared, not copied): for measuring what other settings would give."""
        return self._with(self._index, plan, self._recent)

    def _with(self, index: faiss.Index, plan: IndexPlan, recent: _Recent | None) -> VectorIndex:
        """This index with another faiss index, plan or vectors beside it; all else kept."""
        return VectorIndex(
            index,
            plan,
            self.generation,
            self.dim,
            self.keys,
            self._source,
            self.origin,
            self.built_at,
            self.mapped,
            recent,
        )

    # -- searching -----------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, modality: Modality = "image"
    ) -> list[list[Neighbour]]:
        """The k best items for each query (unit vectors), best first."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.size == 0 or k < 1:
            return [[] for _ in range(len(queries))]
        if queries.shape[1] != self.dim:
            raise ValueError(f"query of dimension {queries.shape[1]}, index of {self.dim}")
        found = self._search_faiss(queries, k, modality)
        if self._recent is None:
            return found
        recent = self._recent.best(queries, k)
        return [_best_of(*pair, k) for pair in zip(found, recent, strict=True)]

    def _search_faiss(
        self, queries: np.ndarray, k: int, modality: Modality
    ) -> list[list[Neighbour]]:
        """The k best of the vectors in the faiss index, for each query."""
        held = int(self._index.ntotal)
        if held == 0:
            return [[] for _ in range(len(queries))]
        if self.plan.kind == "ivf":
            return [self._search_ivf(query, k, self._params[modality]) for query in queries]
        if len(queries) == 1 and self._parts:
            return [self._search_in_parts(queries, min(k, held))]
        scores, keys = self._index.search(queries, min(k, held))
        return [
            _neighbours(row_keys, row_scores)
            for row_keys, row_scores in zip(keys, scores, strict=True)
        ]

    def _search_in_parts(self, query: np.ndarray, k: int) -> list[Neighbour]:
        """One query's exact scan, its key ranges scanned at once on all the cores."""
        answers = list(
            _scan_threads().map(
                lambda part: self._index.search(query, k, params=part.params), self._parts
            )
        )
        scores = np.concatenate([part_scores[0] for part_scores, _ in answers])
        keys = np.concatenate([part_keys[0] for _, part_keys in answers])
        best = np.argsort(-scores, kind="stable")[:k]
        return _neighbours(keys[best], scores[best])

    def _search_ivf(
        self, query: np.ndarray, k: int, params: faiss.SearchParametersIVF
    ) -> list[Neighbour]:
        """Candidates from the compressed lists, scored again with the exact vectors."""
        wanted = min(max(self.plan.rerank, k), int(self._index.ntotal))
        scores, keys = self._index.search(query[None, :], wanted, params=params)
        candidates = keys[0][keys[0] >= 0]
        if self._source is None:
            return _neighbours(candidates, scores[0][: len(candidates)])[:k]
        # Items no longer searchable are not returned by the source: they drop out here.
        found, vectors = self._source.vectors_of(candidates)
        if not len(found):
            return []
        exact = vectors.astype(np.float32) @ query
        top = np.argsort(-exact, kind="stable")[:k]
        return _neighbours(found[top], exact[top])

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        keys: np.ndarray,
        vectors: np.ndarray,
        generation: int,
        settings: IndexSettings | None = None,
    ) -> VectorIndex:
        """An index over vectors already in memory (they also serve the re-ranking)."""
        settings = settings or IndexSettings()
        keys = np.asarray(keys, dtype=np.int64)
        dim = vectors.shape[1] if vectors.size else 0
        plan = plan_index(len(keys), settings)
        check_fits(plan, len(keys), dim, settings.memory_limit, building=True)
        sample = None
        if plan.kind == "ivf":
            wanted = min(len(keys), plan.train_size + PROBES_PER_KIND)
            rows = np.sort(np.random.default_rng(0).choice(len(keys), wanted, replace=False))
            sample = keys[rows], vectors[rows]
        chunks = (
            (keys[start : start + BUILD_CHUNK_ROWS], vectors[start : start + BUILD_CHUNK_ROWS])
            for start in range(0, len(keys), BUILD_CHUNK_ROWS)
        )
        index, plan, _ = _build(plan, settings, dim, sample, chunks)
        source = ArrayVectors(keys, vectors) if plan.kind == "ivf" else None
        return cls(index, plan, generation, dim, np.sort(keys), source)

    @classmethod
    def build_from(
        cls,
        snapshot: Snapshot,
        settings: IndexSettings,
        source: RerankSource | None = None,
        held: int = 0,
    ) -> VectorIndex:
        """An index over a store snapshot, read in chunks: never all of it as float32."""
        count, dim = snapshot.count_and_dim()
        plan = plan_index(count, settings)
        check_fits(plan, count, dim, settings.memory_limit, building=True, held=held)
        sample = None
        if plan.kind == "ivf":
            sample = snapshot.sample(plan.train_size + PROBES_PER_KIND)
        index, plan, keys = _build(plan, settings, dim, sample, snapshot.chunks(BUILD_CHUNK_ROWS))
        source = source if plan.kind == "ivf" else None  # exact scores need no re-ranking
        return cls(index, plan, snapshot.generation, dim, keys, source)

    def with_added(
        self,
        keys: np.ndarray,
        vectors: np.ndarray,
        generation: int,
        copy: bool = True,
    ) -> VectorIndex | None:
        """A new index with these vectors added; with `copy`, this one is left as it was
        (threads may be searching it). Without, it is grown where it lies, and must no
        longer be used: for an index nobody else holds yet.

        None where the index cannot take them: a memory-mapped one is read-only, so it
        is never grown where it lies, and past RECENT_LIMIT never copied either.
        """
        return self.with_chunks_added([(keys, vectors)], generation, copy)

    def with_chunks_added(
        self,
        chunks: Iterable[tuple[np.ndarray, np.ndarray]],
        generation: int,
        copy: bool = True,
    ) -> VectorIndex | None:
        """`with_added`, the vectors given a chunk at a time (read from the store so).

        With `copy`, the faiss index is shared and the vectors are kept beside it, up to
        RECENT_LIMIT in all; past it, they go into a copy of it. Without, into it."""
        if self.mapped and not copy:
            return None
        index, recent = self._index, self._recent
        shared = copy  # still this index's faiss index, not to be changed
        if not shared and recent is not None:
            _add(index, recent.keys, recent.vectors)
            recent = None
        source = self._source
        added: list[np.ndarray] = []
        for chunk_keys, chunk_vectors in chunks:
            keys = np.asarray(chunk_keys, dtype=np.int64)
            vectors = np.asarray(chunk_vectors, dtype=np.float32)
            if shared and (recent.count if recent else 0) + len(keys) > RECENT_LIMIT:
                if self.mapped:
                    return None  # read into memory from its file instead (load_or_build)
                index, shared = faiss.clone_index(self._index), False  # the one copy
                if recent is not None:
                    _add(index, recent.keys, recent.vectors)
                    recent = None
            if shared:
                recent = _Recent.joined(recent, keys, vectors)
            else:
                _add(index, keys, vectors)
            added.append(keys)
            if isinstance(source, ArrayVectors):  # the store's source sees them by itself
                source = source.with_added(keys, chunk_vectors)
        merged = np.sort(np.concatenate([self.keys, *added]))
        if len(merged) and (merged[1:] == merged[:-1]).any():
            # An item it holds was given another vector: the store's account of what
            # changed was wrong. Never served with two vectors for one item: rebuilt.
            log.warning("an index addition repeats items it holds: it is built anew")
            return None
        mapped = self.mapped and shared  # its file's, still shared
        return VectorIndex(
            index, self.plan, generation, self.dim, merged, source, "added", None, mapped, recent
        )

    def folded(self) -> VectorIndex:
        """This index with the vectors kept beside its faiss index added to a copy of it:
        one faiss index, to measure or to save. Not for a memory-mapped one (`remeasured`
        turns those down, and they are saved only as built or read into memory)."""
        if self._recent is None:
            return self
        assert not self.mapped, "a memory-mapped index is read into memory to be folded"
        index = faiss.clone_index(self._index)
        _add(index, self._recent.keys, self._recent.vectors)
        return self._with(index, self.plan, None)

    # -- the cache files -----------------------------------------------------------------

    @classmethod
    def load_or_build(
        cls,
        store: Store,
        settings: IndexSettings | None = None,
        source: StoreVectors | None = None,
        held: int = 0,
    ) -> VectorIndex:
        """The cached index when it matches the store and the plan; the cached index with
        the vectors added since, when the store only gained vectors; else a fresh one.
        `held`: bytes of an index kept in memory meanwhile (see check_fits)."""
        settings = settings or IndexSettings()
        source = source or StoreVectors(store.db_path)
        with source.snapshot() as snapshot:
            cached = cls._load_cached(store.path, snapshot, settings, source, held)
            if cached is not None and cached.generation == snapshot.generation:
                return cached
            index = None
            if cached is not None:  # stale, read into memory: grown in place, not copied
                index = _grown(cached, snapshot, settings, held, copy=False)
                del cached  # a stale one is not kept in memory through the build
            if index is None:
                index = cls.build_from(snapshot, settings, source, held)
        index.save(store.path)
        if index.plan.mmap:
            # Made in memory; served from the file, so that memory goes back now.
            meta = _read_meta(store.path)
            if meta is not None and meta["generation"] == index.generation:
                reloaded = cls._from_files(store.path, meta, index.plan, settings, source, True)
                if reloaded is not None:
                    reloaded.origin = index.origin
                    return reloaded
        return index

    @classmethod
    def _load_cached(
        cls,
        folder: Path,
        snapshot: Snapshot,
        settings: IndexSettings,
        source: RerankSource,
        held: int = 0,
    ) -> VectorIndex | None:
        """The index of the cache files when it holds the store as it is now, or as it
        was at an earlier generation since which the store only gained vectors (to be
        grown with them), else None."""
        meta = _read_meta(folder)
        if meta is None:
            return None
        built_for = meta["generation"]
        if built_for == snapshot.generation:
            count = meta["count"]
        elif built_for < snapshot.generation and snapshot.only_added_since(built_for):
            count = meta["count"] + snapshot.count_and_dim_since(built_for)[0]
        else:
            return None
        current = built_for == snapshot.generation
        plan = plan_index(count, settings)
        return cls._from_files(folder, meta, plan, settings, source, current, held)

    @classmethod
    def _from_files(
        cls,
        folder: Path,
        meta: dict[str, Any],
        plan: IndexPlan,
        settings: IndexSettings,
        source: RerankSource,
        current: bool,
        held: int = 0,
    ) -> VectorIndex | None:
        """The index of the cache files, read as `meta` describes it, when its plan serves
        `plan`; else None. Memory-mapped where the plan says so, unless not `current`: a
        stale one is read only to be grown, which a mapped (read-only) index cannot be."""
        try:
            # Indexes written before plans were recorded (exact, float32) are rebuilt.
            recorded = IndexPlan.from_dict(meta.get("plan") or {"kind": "exact", "chosen_by": ""})
            if not recorded.serves(plan):
                return None
            dim = int(meta["dim"])
        except (ValueError, KeyError, TypeError):
            return None
        count, built_for = meta["count"], meta["generation"]
        plan = recorded.with_search_settings(settings)
        mapped = plan.mmap and current
        check_fits(
            plan if mapped else replace(plan, mmap=False),
            count,
            dim,
            settings.memory_limit,
            building=False,
            held=held,
        )
        # The two files are replaced one after the other: two writers (an indexer and a
        # server) may interleave and leave one's index under the other's meta. The meta
        # names its own file by size and time of writing; a file replaced while it is
        # read is caught too.
        path = folder / INDEX_FILE
        before = _file_identity(path)
        if "file" in meta and meta["file"] != before:
            return None
        try:
            index = faiss.read_index(str(path), _read_flags(plan) if mapped else 0)
        except (RuntimeError, ValueError):
            return None
        is_ivf = faiss.try_extract_index_ivf(index) is not None
        if index.ntotal != count or is_ivf != (plan.kind == "ivf"):
            return None
        if _file_identity(path) != before:
            return None
        return cls(
            index,
            plan,
            built_for,
            dim,
            _index_keys(index),
            source if plan.kind == "ivf" else None,
            origin="loaded",
            built_at=meta.get("built_at"),
            mapped=mapped,
        )

    def save(self, folder: Path) -> None:
        """Write the index, then its meta; readers check both, so order makes it safe."""
        _remove_orphans(folder)
        # The process id says whose file it is (see _remove_orphans); the token keeps two
        # writers apart that share a pid (an indexer and a server, each in a container).
        writer = f"{os.getpid()}-{secrets.token_hex(4)}"
        tmp_index = folder / f".{INDEX_FILE}.{writer}.tmp"
        tmp_meta = folder / f".{INDEX_META_FILE}.{writer}.tmp"
        meta = {
            "generation": self.generation,
            "count": self.size,
            "dim": self.dim,
            "plan": self.plan.to_dict(),
            "built_at": self.built_at,
        }
        try:
            faiss.write_index(self.folded()._index, str(tmp_index))
            meta["file"] = _file_identity(tmp_index)  # a rename keeps both
            tmp_meta.write_text(json.dumps(meta, indent=1))
            os.replace(tmp_index, folder / INDEX_FILE)
            os.replace(tmp_meta, folder / INDEX_META_FILE)
        except (OSError, RuntimeError):
            # A read-only store still serves: the index simply lives in memory only.
            for tmp in (tmp_index, tmp_meta):
                tmp.unlink(missing_ok=True)


def refreshed(
    previous: VectorIndex,
    store: Store,
    settings: IndexSettings,
    source: StoreVectors,
) -> VectorIndex:
    """The index for the store as it is now, built on `previous` where only items were added.

    Additions are applied to a copy of the previous index; anything else (items removed,
    failed or embedded again, a plan that no longer fits the size) rebuilds it.
    """
    with source.snapshot() as snapshot:
        if snapshot.generation == previous.generation:
            return previous
        # The additions go to a copy: the previous index and the copy are both in memory.
        added = _grown(previous, snapshot, settings, held=_resident(previous), copy=True)
        if added is not None:
            # Saved only when its cells were measured again (tens of seconds of work):
            # while an indexer writes, a refresh follows each batch, and writing the
            # whole index (hundreds of MB) each time would cost more than whoever loads
            # the saved one next pays to grow it again from the store.
            if added.plan != previous.plan:
                added.save(store.path)
            return added
    # The previous index answers until the new one is whole: both are in memory then.
    return VectorIndex.load_or_build(store, settings, source, held=_resident(previous))


def _grown(
    previous: VectorIndex, snapshot: Snapshot, settings: IndexSettings, held: int, copy: bool
) -> VectorIndex | None:
    """`previous` (an index of an earlier generation) with the vectors written since, read
    a chunk at a time, when the store only gained vectors; None when it must be rebuilt.
    `copy`: see with_added (an index another thread searches is copied)."""
    if not _may_grow(previous, snapshot, settings, held):
        return None
    grown = previous.with_chunks_added(
        snapshot.chunks_since(previous.generation, BUILD_CHUNK_ROWS), snapshot.generation, copy
    )
    return None if grown is None else remeasured(grown, snapshot, settings)


# An IVF index grown by this much since its cells were measured measures them again: the
# images added may lie otherwise than those it was measured on (another fonds, another
# medium), and need more cells for the same recall. A pass over every stored vector for
# the probes' exact answers: about 40 s at 1,000,000 (2 cores), where a build takes 90.
# An index saved before the count was recorded measures again at its first growth.
REMEASURE_GROWTH = 1.25


def remeasured(
    index: VectorIndex, snapshot: Snapshot, settings: IndexSettings
) -> VectorIndex | None:
    """`index` (grown from a saved or served one) with its cells measured again on the
    store as it is now, when it holds REMEASURE_GROWTH times what they were measured on;
    None for a memory-mapped one that needs it (read into memory by the caller)."""
    plan = index.plan
    if plan.kind != "ivf" or index.size < REMEASURE_GROWTH * plan.measured_count:
        return index
    if index.mapped:
        return None  # read into memory from its file, grown there and measured (the caller)
    probes = Probes.draw(*snapshot.sample(PROBES_PER_KIND))
    exact = probes.exact_top()
    for chunk_keys, chunk_vectors in snapshot.chunks(BUILD_CHUNK_ROWS):
        exact.add(chunk_keys, np.ascontiguousarray(chunk_vectors, dtype=np.float32))
    index = index.folded()  # measured as it is searched: every vector in its cells
    return index.with_plan(_tuned(plan, index._index, probes, exact, settings))


def _may_grow(
    previous: VectorIndex, snapshot: Snapshot, settings: IndexSettings, held: int
) -> bool:
    """Whether `previous` with the vectors written since is the index of the store now:
    the store only gained vectors since (its generations say so: no scan of every
    vector), the plan still fits the size, and the grown index fits in memory (`held`:
    see check_fits; a memory-mapped one only keeps the few new vectors beside its file,
    and is read into memory by load_or_build, which checks that, when they are many)."""
    if not snapshot.only_added_since(previous.generation):
        return False
    added, dim = snapshot.count_and_dim_since(previous.generation)
    count = previous.size + added
    plan = plan_index(count, settings)
    if not previous.plan.serves(plan) or (added and dim != previous.dim):
        return False
    if not previous.mapped:
        # Grown in memory, even where it is then served memory-mapped.
        in_memory = replace(plan, mmap=False)
        limit = settings.memory_limit
        check_fits(in_memory, count, previous.dim, limit, building=False, held=held)
    return True


def _read_meta(folder: Path) -> dict[str, Any] | None:
    """index.json, with its generation and count as ints; None if missing or unreadable
    (the caller builds the index anew)."""
    try:
        meta = json.loads((folder / INDEX_META_FILE).read_text())
        if not isinstance(meta, dict):
            return None
        return {**meta, "generation": int(meta["generation"]), "count": int(meta["count"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _file_identity(path: Path) -> list[int] | None:
    """A file's size and time of last writing (ns), as JSON keeps them; None if missing."""
    try:
        status = path.stat()
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def _remove_orphans(folder: Path) -> None:
    """Temporary files of saves whose process died in the middle (kill -9, a power cut):
    nothing else would ever remove them, and an index file can be gigabytes."""
    for tmp in folder.glob(".index.*.tmp"):
        pid = tmp.name.split(".")[-2].split("-")[0]  # "<pid>-<token>", or "<pid>" before
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _resident(index: VectorIndex) -> int:
    return estimate(index.plan, index.size, index.dim).resident


# -- faiss helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _KeyRange:
    selector: faiss.IDSelectorRange  # kept here: the parameters only point to it
    params: faiss.SearchParameters


def _key_ranges(keys: np.ndarray, cores: int) -> list[_KeyRange]:
    """Selectors that split an exact scan into ranges of keys of about equal counts
    (`keys` sorted, as a VectorIndex keeps them)."""
    parts = min(cores, len(keys) // MIN_VECTORS_PER_PART)
    if parts < 2:
        return []
    bounds = [int(keys[len(keys) * i // parts]) for i in range(parts)]
    bounds.append(int(keys[-1]) + 1)
    ranges = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        selector = faiss.IDSelectorRange(low, high)
        params = faiss.SearchParameters()
        params.sel = selector
        ranges.append(_KeyRange(selector, params))
    return ranges


@cache
def _cores() -> int:
    """The cores the model's threads are counted on (affinity, cgroup quota): a scan is
    bound by memory bandwidth, which hyper-threads share."""
    from models.runtime import cpu_threads  # imports torch: only once an index is made

    return cpu_threads()


@cache
def _scan_threads() -> ThreadPoolExecutor:
    """Threads for the parts of exact scans (faiss lets go of the GIL while it scans).

    Each is one OpenMP thread: a team of its own would add threads to the process's
    OpenMP runtime, which torch shares, and slow the model (models.encoder_thread).
    """
    return ThreadPoolExecutor(
        max_workers=_cores(),
        thread_name_prefix="regard-scan",
        initializer=faiss.omp_set_num_threads,
        initargs=(1,),
    )


def _build(
    plan: IndexPlan,
    settings: IndexSettings,
    dim: int,
    sample: tuple[np.ndarray, np.ndarray] | None,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
) -> tuple[faiss.Index, IndexPlan, np.ndarray]:
    """A faiss index holding every chunk, the plan with the cells measured on the way
    (index_tuning.py), and the keys added.

    An IVF index is trained on `sample` (keys, vectors drawn at random), except the
    PROBES_PER_KIND it leaves over where it can: the probes. A vector the cells were
    trained on sits well inside its cell, and would promise more than new vectors get.
    """
    training = probes = None
    if sample is not None:
        sample_keys, sample_vectors = sample
        order = np.random.default_rng(0).permutation(len(sample_keys))
        train_rows, spare_rows = order[: plan.train_size], order[plan.train_size :]
        training = sample_vectors[np.sort(train_rows)]
        # Measured even where the operator set the cells: the index outlives the setting,
        # and without it would fall back to a guess rather than to what was measured.
        probe_rows = spare_rows if len(spare_rows) else train_rows
        probes = Probes.draw(sample_keys[probe_rows], sample_vectors[probe_rows])
    del sample
    index = _new_faiss_index(plan, dim, training)
    del training
    exact = probes.exact_top() if probes is not None else None
    keys: list[np.ndarray] = []
    for chunk_keys, chunk_vectors in chunks:
        as_float32 = np.ascontiguousarray(chunk_vectors, dtype=np.float32)
        _add(index, chunk_keys, as_float32)
        if exact is not None:
            exact.add(chunk_keys, as_float32)  # the probes' answers, in the same pass
        keys.append(chunk_keys)
        del as_float32
    if probes is not None and exact is not None:
        faiss.extract_index_ivf(index).parallel_mode = 1  # as it will be searched
        plan = _tuned(plan, index, probes, exact, settings)
    return index, plan, np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)


def _tuned(
    plan: IndexPlan, index: faiss.Index, probes: Probes, exact: ExactTop, settings: IndexSettings
) -> IndexPlan:
    """`plan` with the cells measured on `index` (index_tuning.py)."""
    tuning = tune(index, probes, exact, plan.rerank)
    return replace(
        plan,
        measured_nprobe=tuning.nprobe,
        measured_text_nprobe=tuning.text_nprobe,
        measured_recall=tuning.recall,
        measured_text_recall=tuning.text_recall,
        measured_count=int(index.ntotal),
    ).with_search_settings(settings)


def _new_faiss_index(plan: IndexPlan, dim: int, sample: np.ndarray | None) -> faiss.Index:
    # An exact index gets IDMap, not IDMap2: the reverse map would cost ~50 bytes a vector.
    index = faiss.index_factory(max(dim, 1), plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind == "ivf":
        assert sample is not None
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def _add(index: faiss.Index, keys: np.ndarray, vectors: np.ndarray) -> None:
    for start in range(0, len(keys), BUILD_CHUNK_ROWS):
        part = slice(start, start + BUILD_CHUNK_ROWS)
        index.add_with_ids(
            np.ascontiguousarray(vectors[part], dtype=np.float32),
            np.ascontiguousarray(keys[part], dtype=np.int64),
        )


def _read_flags(plan: IndexPlan) -> int:
    if not plan.mmap:
        return 0
    # Exact: the flat vectors are mapped; IVF: the inverted lists become on-disk lists.
    return faiss.IO_FLAG_MMAP_IFC if plan.kind == "exact" else faiss.IO_FLAG_MMAP


def _index_keys(index: faiss.Index) -> np.ndarray:
    """The sorted ids an index holds, read back from it."""
    if hasattr(index, "id_map"):  # IndexIDMap, IndexIDMap2
        return np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
    parts = [ids for _, ids in cell_ids(faiss.extract_index_ivf(index))]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def _neighbours(keys: Iterable[int], scores: Iterable[float]) -> list[Neighbour]:
    return [
        Neighbour(int(key), float(score))
        for key, score in zip(keys, scores, strict=True)
        if key >= 0
    ]
