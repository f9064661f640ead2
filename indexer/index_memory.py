"""How much memory an index will take, checked before it is built or loaded.

A store too large for the machine must be refused with a message a person can act on,
not end with the service killed by the kernel halfway through a build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import IndexerError
from .index_plan import (
    EXACT_CODE_BYTES_PER_DIM,
    IVF_CODE_BYTES_PER_DIM,
    SETTING_KIND,
    SETTING_MEMORY_LIMIT,
    SETTING_MMAP,
    IndexPlan,
    IndexSettings,
    plan_index,
)

MEMINFO = Path("/proc/meminfo")

# Rows read from SQLite at a time while building: bounds the build's working memory.
BUILD_CHUNK_ROWS = 50_000
ID_BYTES = 8


class IndexTooLargeError(IndexerError):
    """The index would not fit in the memory allowed; the message names the way out."""


@dataclass(frozen=True)
class MemoryEstimate:
    resident: int  # held while serving
    build_peak: int  # held at the worst moment of a build


def estimate(plan: IndexPlan, count: int, dim: int) -> MemoryEstimate:
    """Bytes an index of `count` vectors of `dim` floats needs, by kind and storage."""
    chunk = min(count, BUILD_CHUNK_ROWS) * dim * (4 + 2)  # float16 rows and their float32
    if plan.kind == "exact":
        vectors = count * dim * EXACT_CODE_BYTES_PER_DIM
        ids = count * ID_BYTES
        # Memory-mapped, the vectors live in the page cache, which the kernel can reclaim.
        resident = ids if plan.mmap else vectors + ids
        return MemoryEstimate(resident, vectors + ids + chunk)
    centroids = plan.nlist * dim * 4 * 2  # the coarse quantizer, and a copy while training
    lists = int(count * (dim * IVF_CODE_BYTES_PER_DIM + ID_BYTES))
    training = plan.train_size * dim * 4
    resident = centroids + (0 if plan.mmap else lists)
    return MemoryEstimate(resident, centroids + lists + max(training, chunk))


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes; None where the system does not say."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def check_fits(
    plan: IndexPlan, count: int, dim: int, limit: int | None, building: bool, held: int = 0
) -> MemoryEstimate:
    """The estimate, or IndexTooLargeError when it exceeds `limit` (default MemAvailable).

    `held`: bytes of another index that stays in memory meanwhile (the one answering
    while a refresh makes the next). They count against a limit the operator set;
    MemAvailable leaves them out already."""
    needed = estimate(plan, count, dim)
    source = f"the limit set by {SETTING_MEMORY_LIMIT}"
    if limit is not None and held:
        source += f" less the {human(held)} of the index answering meanwhile"
        limit = max(limit - held, 0)
    if limit is None:
        limit = available_memory()
        source = "available now (MemAvailable)"
    if limit is None:
        return needed
    need = needed.build_peak if building else needed.resident
    if need <= limit:
        return needed
    what = "building" if building else "loading"
    raise IndexTooLargeError(
        f"the {plan.kind} index of {count:,} vectors of dimension {dim} needs about "
        f"{human(need)} of memory for {what}, and {human(limit)} is {source}. "
        + _ways_out(plan, count, dim, limit, building)
    )


def _ways_out(plan: IndexPlan, count: int, dim: int, limit: int, building: bool) -> str:
    """The other index choices that would fit, each with what it needs."""

    def need(candidate: IndexPlan) -> int:
        found = estimate(candidate, count, dim)
        return found.build_peak if building else found.resident

    ivf = plan if plan.kind == "ivf" else plan_index(count, IndexSettings(kind="ivf"))
    candidates = [
        (ivf, f"the compressed index, {SETTING_KIND}=ivf"),
        (replace(plan, mmap=True), f"the on-disk index, {SETTING_MMAP}=true"),
        (replace(ivf, mmap=True), f"{SETTING_KIND}=ivf with {SETTING_MMAP}=true"),
    ]
    seen = {plan}
    fitting = []
    for candidate, label in candidates:  # an IVF plan's own on-disk form comes up twice
        if candidate not in seen and need(candidate) <= limit:
            fitting.append(f"{label} (about {human(need(candidate))})")
        seen.add(candidate)
    if not fitting:
        return (
            "No index of this collection fits: give the service more memory, or raise "
            f"{SETTING_MEMORY_LIMIT} if the machine has more to give."
        )
    return "Choose " + ", or ".join(fitting) + f"; or raise {SETTING_MEMORY_LIMIT}."
