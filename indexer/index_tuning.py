"""How many cells an IVF index scans: chosen on the collection itself, when it is built,
and again when it has grown by a quarter since (vector_index.REMEASURE_GROWTH).

How many cells a query must scan to find its true neighbours depends on how the
collection's vectors lie. On vectors in well-separated clusters (scripts/bench_search's
collection), 1/32 of the cells found 0.98 of an image query's exact top ten at 1,000,000
vectors; on vectors with no clusters at all, whose variances fall off as a power law,
the same share found 0.89, and 1/8 of the cells found 0.92 of a text-like query's,
against 0.98 on the clusters (scripts/bench_index_shapes). No fixed share suits every
collection, and a museum cannot be asked to measure it first.

So the build asks the new index probe questions whose exact answers it computed in the
pass that added the vectors: stored vectors, as "more like this" asks (each leaves itself
out), and text-like vectors (a stored vector at cosine 0.3, the rest a random direction
orthogonal to it: about as far as a text's vector lies from its best images). For each
kind it keeps the fewest cells, from a ladder, whose answers hold RECALL_TARGET of the
exact top ten. An item among the `rerank` best candidates of the compressed codes is
scored again exactly, so that share is the recall the service will give. At 1,000,000
vectors the measuring adds 10 to 20 s to a build of about 77 s (scripts/bench_search).

The text-like probes stand at cosine 0.3 from their item, as a text from its best images
with CLIP's models; SigLIP's matched pairs score lower. How hard a text is for the index
depends on how much of its vector lies among the images' directions, which only real
weights can tell: `regard recall` measures real texts against the store's own vectors.

An operator's REGARD_INDEX_NPROBE or REGARD_INDEX_TEXT_NPROBE wins over what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from .exact_top import ExactTop
from .index_plan import default_nprobe
from .ivf_lists import cell_ids, ivf_params

RECALL_TARGET = 0.96  # mean recall@10 of the probes; the goal is 0.95, this leaves a margin
PROBES_PER_KIND = 300  # a mean recall within about 0.01, for a few seconds at 1,000,000
TEXT_LIKE_COSINE = 0.3  # a text's vector and its best images (CLIP-family models)
K = 10


@dataclass(frozen=True)
class Tuning:
    """The cells chosen for each kind of query, and the probes' recall@10 with them
    (0 where that kind was not measured: its cells were set by the operator)."""

    nprobe: int = 0
    text_nprobe: int = 0
    recall: float = 0.0
    text_recall: float = 0.0


@dataclass(frozen=True)
class Probes:
    """The probe questions: stored vectors (image-like) and text-like ones made from them."""

    own_keys: np.ndarray  # the items whose vectors the probes are, or are made from
    image: np.ndarray
    text: np.ndarray

    @classmethod
    def draw(
        cls, keys: np.ndarray, vectors: np.ndarray, count: int = PROBES_PER_KIND, seed: int = 0
    ) -> Probes:
        """`count` of these stored vectors, and as many text-like vectors made from them."""
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(keys), min(count, len(keys)), replace=False))
        image = _unit(np.asarray(vectors[rows], dtype=np.float32))
        text = text_like(image, TEXT_LIKE_COSINE, rng)
        return cls(np.asarray(keys, dtype=np.int64)[rows], image, text)

    def exact_top(self) -> ExactTop:
        """The exact answers to fill while the vectors are added (one more: the item itself)."""
        return ExactTop(np.concatenate([self.image, self.text]), K + 1)


def text_like(vectors: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """Vectors as far from these unit vectors as a text's is from its best images: each at
    `cosine` with its own, the rest a random direction orthogonal to it."""
    away = rng.standard_normal(vectors.shape).astype(np.float32)
    away = _unit(away - np.sum(away * vectors, axis=1, keepdims=True) * vectors)
    return (cosine * vectors + np.sqrt(1 - cosine**2) * away).astype(np.float32)


def ladder(nlist: int) -> list[int]:
    """The numbers of cells tried, fewest first: powers of two and half-way steps.

    From the share scanned before the cells were measured (1/32, at least 8): the
    measurement only ever adds cells. Fewer would save a millisecond or two of a request
    that takes tens, and cost the queries the probes do not stand for: on separate
    clusters, 8 cells of 1,024 kept the mean recall of "more like this" but left twice
    as many items with under half of their true neighbours. Up to a quarter of the cells
    (or all of a small index's), where a query costs five times what 1/32 costs.
    """
    top = max(min(nlist, 16), nlist // 4)
    bottom = min(default_nprobe(nlist), top)
    steps = {size for power in range(16) for size in (2**power, 3 * 2**power // 2)}
    return sorted({size for size in steps if bottom <= size < top} | {top})


def tune(
    index: faiss.Index,
    probes: Probes,
    exact: ExactTop,
    rerank: int,
) -> Tuning:
    """The fewest cells for each kind of probe to reach RECALL_TARGET.

    Which cells a query scans is known without scanning them (the quantizer ranks the
    cells), and so is the cell of each exact answer: the recall of every step of the
    ladder comes from one ranking. Only the step chosen is then searched for real (the
    compressed codes may push an answer out of the candidates), and the next one where
    that search falls short.
    """
    # Each probe leaves out the item it was made from: "more like this" leaves it out, and
    # a text-like probe would find it first, in the cell nearest to it.
    count = len(probes.image)
    own = np.concatenate([probes.own_keys, probes.own_keys])
    answers = [_without(row, key)[:K] for row, key in zip(exact.keys, own, strict=True)]
    image_truth, text_truth = answers[:count], answers[count:]
    ivf = faiss.extract_index_ivf(index)
    cells = ladder(ivf.nlist)
    cell_of = _cells_of(ivf, np.array([key for row in answers for key in row], dtype=np.int64))

    def searched(queries: np.ndarray, truth: list[list[int]], scanned: int) -> float:
        params = ivf_params(scanned)
        _, candidates = index.search(queries, min(rerank, index.ntotal), params=params)
        return _mean_share(truth, [set(row.tolist()) for row in candidates])

    def fewest(queries: np.ndarray, truth: list[list[int]]) -> tuple[int, float]:
        _, nearest = ivf.quantizer.search(queries, cells[-1])  # nearest cells first
        truth_cells = [[cell_of[key] for key in row] for row in truth]
        estimates = [
            _mean_share(truth_cells, [set(row[:scanned].tolist()) for row in nearest])
            for scanned in cells
        ]
        step = next((i for i, e in enumerate(estimates) if e >= RECALL_TARGET), len(cells) - 1)
        measured = searched(queries, truth, cells[step])
        while measured < RECALL_TARGET and step + 1 < len(cells):
            step += 1
            measured = searched(queries, truth, cells[step])
        return cells[step], measured

    image_cells, image_recall = fewest(probes.image, image_truth)
    text_cells, text_recall = fewest(probes.text, text_truth)
    return Tuning(image_cells, text_cells, round(image_recall, 4), round(text_recall, 4))


def _mean_share(truth: list[list[int]], found: list[set[int]]) -> float:
    """The mean share of each query's exact answers in what was found (keys, or cells)."""
    shares = [
        sum(key in got for key in wanted) / len(wanted)
        for wanted, got in zip(truth, found, strict=True)
        if wanted
    ]
    return float(np.mean(shares)) if shares else 1.0


def _cells_of(ivf: faiss.IndexIVF, keys: np.ndarray) -> dict[int, int]:
    """The cell (inverted list) that holds each of these keys."""
    wanted = np.unique(keys)
    cells: dict[int, int] = {}
    for cell, ids in cell_ids(ivf):
        for key in ids[np.isin(ids, wanted)].tolist():
            cells[key] = cell
    return cells


def _without(row: np.ndarray, own: int) -> list[int]:
    return [int(key) for key in row if key >= 0 and key != own]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
