"""Which FAISS index a store gets, with what parameters: exact up to a size, IVF above it.

Exact search (every vector, as the float16 the store keeps, so nothing is lost) is the
right answer for small collections: quick to build, and a scan of 100,000 vectors costs
about 17 ms on one core (it is bound by memory bandwidth: float16 halves it), half that
split over two (VectorIndex scans one query's key ranges on all the cores). Above
`exact_limit` vectors the scan grows with the collection, so an inverted file takes
over: the vectors are grouped into `nlist` cells around k-means centroids, a query
scans only the `nprobe` nearest cells, over 4-bit codes (SQ4, an eighth of float32),
and the best `rerank` candidates are scored again exactly with the store's own float16
vectors. Measured on 1,000,000 clustered 768-d vectors (docs/benchmarks.md): recall@10
about 0.98 against exact search, a few milliseconds per query, 0.4 GB of memory.

Text queries scan more cells (`text_nprobe`) than image queries. A picture's vector lies
among the collection's vectors, near the centroid of the cell that holds its neighbours;
a text's vector lies far from all of them (CLIP's "modality gap": its best images have a
cosine of 0.2 to 0.35 with it, against 0.6 to 0.9 between similar images), every
centroid scores nearly alike, and the cell that holds a true neighbour is often not
among the nearest few. Each query's cells are scanned by all the cores (VectorIndex).

How many cells each kind needs depends on the collection's shape, not only its size:
the build measures it on the collection (index_tuning.py) and records it in the plan
(`measured_*`). `nprobe` and `text_nprobe` are what an operator set, else what was
measured, else (an index built before that) nlist / 32 and four times that.

The plan is recorded in `index.json` beside the index and reported by `describe()`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from .errors import IndexerError

Kind = Literal["exact", "ivf"]
KIND_CHOICES = ("auto", "exact", "ivf")

# The code of the IVF lists: 4-bit scalar quantisation. Chosen over PQ (8-bit PQ96 needed
# 400 candidates for 0.95 recall and trained for minutes; 4-bit fast-scan PQ cannot be
# memory-mapped) and over SQ8 (twice the memory for the same recall after re-ranking).
IVF_CODE = "SQ4"
IVF_CODE_BYTES_PER_DIM = 0.5

# The exact index keeps the stored float16 values: lossless, half the memory of float32.
EXACT_CODE = "SQfp16"
EXACT_CODE_BYTES_PER_DIM = 2

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class IndexSettingError(IndexerError, ValueError):
    """A REGARD_INDEX_* value that means nothing; the message names the variable."""


# Where the settings are documented for operators: named in error messages.
SETTING_KIND = "REGARD_INDEX_KIND"
SETTING_MMAP = "REGARD_INDEX_MMAP"
SETTING_MEMORY_LIMIT = "REGARD_INDEX_MEMORY_LIMIT"


@dataclass(frozen=True)
class IndexSettings:
    """What an operator may choose; the defaults suit collections up to millions of images."""

    kind: str = "auto"  # auto | exact | ivf
    exact_limit: int = 100_000  # auto: exact search up to this many vectors
    nprobe: int | None = None  # ivf: cells scanned per image query (default: nlist / 32)
    text_nprobe: int | None = None  # ivf: cells scanned per text query (default: 4 x nprobe)
    rerank: int | None = None  # ivf: candidates scored again exactly (default: 200)
    mmap: bool = False  # memory-map the index file instead of reading it into memory
    memory_limit: int | None = None  # bytes the index may use (default: MemAvailable)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IndexSettings:
        """The settings from the REGARD_INDEX_* variables: the one reading of them, for
        `regard index`, `regard recall` and the service alike, so that the index one
        builds is the one the other loads. An empty variable is an unset one; a value
        that means nothing raises IndexSettingError naming the variable."""
        env = os.environ if environ is None else environ

        def given(name: str) -> str | None:
            value = env.get(f"REGARD_INDEX_{name}", "").strip()
            return value or None

        def number(name: str) -> int | None:
            value = given(name)
            try:
                return None if value is None else int(value.replace("_", ""))
            except ValueError:
                raise IndexSettingError(
                    f"REGARD_INDEX_{name}={value!r} is not a whole number"
                ) from None

        mmap = (given("MMAP") or "false").lower()
        if mmap not in TRUE + FALSE:
            raise IndexSettingError(f"{SETTING_MMAP}={mmap!r} is not true or false")
        exact_limit = number("EXACT_LIMIT")
        return cls(
            kind=(given("KIND") or "auto").lower(),
            exact_limit=cls.exact_limit if exact_limit is None else exact_limit,
            nprobe=number("NPROBE"),
            text_nprobe=number("TEXT_NPROBE"),
            rerank=number("RERANK"),
            mmap=mmap in TRUE,
            memory_limit=number("MEMORY_LIMIT"),
        )

    def __post_init__(self) -> None:
        if self.kind not in KIND_CHOICES:
            raise IndexSettingError(
                f"{SETTING_KIND}={self.kind!r} is not one of {', '.join(KIND_CHOICES)}"
            )
        if self.exact_limit < 0:
            raise IndexSettingError(
                f"REGARD_INDEX_EXACT_LIMIT must be 0 or more, not {self.exact_limit}"
            )
        for name in ("nprobe", "text_nprobe", "rerank", "memory_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise IndexSettingError(
                    f"REGARD_INDEX_{name.upper()} must be at least 1, not {value}"
                )


@dataclass(frozen=True)
class IndexPlan:
    """The index chosen for a collection: its kind, why, and its parameters."""

    kind: Kind
    chosen_by: str  # "size" (auto) or "setting"
    mmap: bool = False
    nlist: int = 0  # ivf only, from here down
    code: str = ""
    train_size: int = 0
    nprobe: int = 0  # cells scanned for an image's vector
    text_nprobe: int = 0  # cells scanned for a text's vector (see the module's docstring)
    rerank: int = 0
    # What the build measured on the collection (index_tuning.py); 0 where not measured.
    measured_nprobe: int = 0
    measured_text_nprobe: int = 0
    measured_recall: float = 0.0  # the probes' recall@10 with measured_nprobe cells
    measured_text_recall: float = 0.0
    measured_count: int = 0  # the vectors it held then (0: not recorded, before growth)

    @property
    def factory(self) -> str:
        """The faiss index_factory string (an IVF index keeps the ids itself)."""
        return f"IDMap,{self.code}" if self.kind == "exact" else f"IVF{self.nlist},{self.code}"

    def serves(self, wanted: IndexPlan) -> bool:
        """Whether an index built to this plan may serve `wanted` (search-time knobs aside).

        The cells of an IVF index stay good while the collection grows or shrinks a
        little: it is rebuilt when the ideal number of cells is twice as many, or half.
        """
        if (self.kind, self.code) != (wanted.kind, wanted.code):
            return False
        return self.kind == "exact" or wanted.nlist / 2 < self.nlist < wanted.nlist * 2

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "factory": self.factory}
        if self.kind == "exact":  # the IVF parameters mean nothing here
            for name in _IVF_ONLY:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexPlan:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def with_search_settings(self, settings: IndexSettings) -> IndexPlan:
        """This plan with the knobs that apply at load time taken from `settings`: cells
        an operator sets, else those measured at build, else a share of them all."""
        if self.kind == "exact":
            return replace(self, mmap=settings.mmap)
        nprobe = settings.nprobe or self.measured_nprobe or default_nprobe(self.nlist)
        nprobe = min(nprobe, self.nlist)
        text_nprobe = (
            settings.text_nprobe or self.measured_text_nprobe or TEXT_NPROBE_FACTOR * nprobe
        )
        return replace(
            self,
            mmap=settings.mmap,
            nprobe=nprobe,
            text_nprobe=min(text_nprobe, self.nlist),
            rerank=settings.rerank or DEFAULT_RERANK,
        )


_IVF_ONLY = (
    "nlist",
    "train_size",
    "nprobe",
    "text_nprobe",
    "rerank",
    "measured_nprobe",
    "measured_text_nprobe",
    "measured_recall",
    "measured_text_recall",
    "measured_count",
)

DEFAULT_RERANK = 200
TEXT_NPROBE_FACTOR = 4  # text queries lie far from the data: see the module's docstring


def default_nlist(count: int) -> int:
    """About sqrt(count) cells, as a power of two: 1,000,000 vectors -> 1,024 cells."""
    # k-means wants at least ~39 points per centroid: tiny collections get fewer cells.
    return max(1, min(2 ** round(math.log2(math.sqrt(max(count, 1)))), count // 39))


def default_nprobe(nlist: int) -> int:
    # On clustered data, 1/64 of the cells already finds ~98% of the true neighbours;
    # 1/32 leaves room for collections less neatly clustered, for about 2 ms more.
    return max(8, nlist // 32)


def train_size(count: int, nlist: int) -> int:
    # k-means needs ~40 points per centroid; 64 gives stable cells without training on all.
    return min(count, 64 * nlist)


def plan_index(count: int, settings: IndexSettings) -> IndexPlan:
    """The index for `count` vectors under `settings`."""
    if settings.kind == "auto" or count == 0:
        # An empty collection has nothing to train cells on: exact, whatever was asked.
        kind: Kind = "exact" if count <= settings.exact_limit or count == 0 else "ivf"
        chosen_by = "size"
    else:
        kind = "exact" if settings.kind == "exact" else "ivf"
        chosen_by = "setting"
    if kind == "exact":
        return IndexPlan(kind="exact", chosen_by=chosen_by, mmap=settings.mmap, code=EXACT_CODE)
    nlist = default_nlist(count)
    plan = IndexPlan(
        kind="ivf",
        chosen_by=chosen_by,
        nlist=nlist,
        code=IVF_CODE,
        train_size=train_size(count, nlist),
    )
    return plan.with_search_settings(settings)
