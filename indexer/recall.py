"""How close a store's index comes to exact search, on the store's own vectors and model.

scripts/bench_search measures recall on generated vectors, with text-like queries drawn
from a guess at how far a text's vector lies from the images'. A museum's collection and
model are what count: `regard recall` asks the index the two kinds of questions curators
ask (texts, and items' own vectors for "more like this") and compares each answer with
an exact scan of every stored vector, read in chunks as the index build reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .exact_top import best_of_chunks
from .index_memory import BUILD_CHUNK_ROWS
from .index_tuning import RECALL_TARGET, ladder
from .store_vectors import StoreVectors
from .vector_index import Modality, VectorIndex

Answer = list[tuple[int, float]]  # one query's (key, score) pairs, best first

# Scores of one vector pair computed by two routes (faiss, numpy) differ by rounding only.
TIE = 1e-5

# Generic curator queries, in English and French, for a store with none given.
DEFAULT_QUERIES = (
    "a chair",
    "une chaise",
    "an armchair in wrought iron",
    "un fauteuil en fer forgé",
    "a lamp",
    "une lampe",
    "a drawing of an interior",
    "dessin d'un intérieur",
    "a table",
    "une table basse",
    "a portrait",
    "un portrait",
    "a landscape",
    "un paysage",
    "flowers",
    "des fleurs",
    "a building",
    "un bâtiment",
    "a red object",
    "un objet bleu",
)


@dataclass(frozen=True)
class Recall:
    """recall@k of one kind of query: the mean share of the exact top k found, and the worst.

    `cells_needed`: for an IVF index, the fewest cells (of the build's ladder, then half and
    all of them) with which these queries' mean reaches RECALL_TARGET, as the build aims
    for its probes; None for an exact index, or where even every cell falls short.
    """

    queries: int
    mean: float
    worst: float
    cells_needed: int | None = None

    @classmethod
    def of(cls, found: list[Answer], exact: list[Answer], k: int) -> Recall:
        """`found` and `exact`: each query's (key, score), best first (the first k count).
        A found item scoring as high as the exact k-th counts too: among items tied at
        the k-th place, which ones an exact answer lists is chance."""
        shares = [_share(f[:k], e[:k], k) for f, e in zip(found, exact, strict=True)]
        return cls(len(shares), float(np.mean(shares)), float(min(shares)))


def _share(found: Answer, exact: Answer, k: int) -> float:
    if not exact:
        return 1.0
    keys, kth = {key for key, _ in exact}, exact[-1][1]
    return sum(key in keys or score >= kth - TIE for key, score in found) / k


@dataclass(frozen=True)
class RecallReport:
    k: int
    index: dict[str, Any]
    text: Recall | None
    image: Recall | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_recall(
    index: VectorIndex,
    vectors: StoreVectors,
    text_vectors: np.ndarray,
    items: int,
    k: int = 10,
    seed: int = 0,
) -> RecallReport:
    """recall@k of `index` for these texts' vectors and for `items` items drawn at random.

    An item's own vector finds the item itself first: it is left out of both answers,
    as "more like this" leaves it out.
    """
    k = min(k, max(index.size - 1, 1))
    drawn = np.random.default_rng(seed).choice(index.keys, min(items, index.size), replace=False)
    item_keys, item_vectors = vectors.vectors_of(np.sort(drawn))
    queries = np.concatenate(
        [np.reshape(text_vectors, (-1, index.dim)), np.reshape(item_vectors, (-1, index.dim))]
    ).astype(np.float32)
    exact = exact_top(vectors, queries, k + 1)

    texts = len(text_vectors)
    text = image = None
    if texts:
        text = _recall(index, queries[:texts], exact[:texts], None, k, "text")
    if len(item_keys):
        own = [int(key) for key in item_keys]
        image = _recall(index, queries[texts:], exact[texts:], own, k, "image")
    return RecallReport(k, index.describe(), text, image)


def _recall(
    index: VectorIndex,
    queries: np.ndarray,
    exact: list[Answer],
    own: list[int] | None,
    k: int,
    modality: Modality,
) -> Recall:
    """recall@k of these queries as the index answers them, and the cells they need.
    `own`: the item each query is the vector of, left out of both answers."""

    def measured(asked: VectorIndex) -> Recall:
        if own is None:
            return Recall.of(_answers(asked, queries, k, modality), exact, k)
        found = _answers(asked, queries, k + 1, modality)
        return Recall.of(
            [_without(row, key, k) for row, key in zip(found, own, strict=True)],
            [_without(row, key, k) for row, key in zip(exact, own, strict=True)],
            k,
        )

    recall = measured(index)
    if index.plan.kind != "ivf":
        return recall
    nlist = index.plan.nlist
    # The cells scanned now are a candidate too: a setting below the ladder's first step
    # that already reaches the target must not be told to scan more.
    scanned = index.plan.text_nprobe if modality == "text" else index.plan.nprobe
    for cells in sorted(set(ladder(nlist)) | {max(nlist // 2, 1), nlist, scanned}):
        with_cells = index.with_plan(replace(index.plan, nprobe=cells, text_nprobe=cells))
        if measured(with_cells).mean >= RECALL_TARGET:
            return replace(recall, cells_needed=cells)
    return recall


def _answers(index: VectorIndex, queries: np.ndarray, k: int, modality: Modality) -> list[Answer]:
    return [[(n.key, n.score) for n in index.search(query, k, modality)[0]] for query in queries]


def _without(answer: Answer, key: int, k: int) -> Answer:
    return [pair for pair in answer if pair[0] != key][:k]


def exact_top(vectors: StoreVectors, queries: np.ndarray, k: int) -> list[Answer]:
    """Each query's k best stored vectors (key, score), best first, by a scan of them all."""
    with vectors.snapshot() as snapshot:
        keys, scores = best_of_chunks(queries, snapshot.chunks(BUILD_CHUNK_ROWS), k)
    return [
        [(int(key), float(score)) for key, score in zip(row, row_scores, strict=True) if key >= 0]
        for row, row_scores in zip(keys, scores, strict=True)
    ]
