"""How close a fast runtime's vectors are to float32: the bar a runtime must pass to be used.

The bar (issue 4): cosine of each vector to its float32 counterpart at least 0.99, and
top-10 neighbour overlap at least 0.9 over a few hundred images. Neighbours need hundreds
of images, too many to embed at every load: scripts/bench_embed measures them per
architecture (models.runtime.INT8_MEASURED), and each load checks the cosine on a few
probe pictures with the real weights, against a stricter bar that stands in for the
neighbours (random-weight ViT-B-32 in int8: worst cosine 0.9997 and an overlap of 0.95
over 512 pictures whose vectors are much closer together than a trained model's).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageFilter

from models.shapes import collection, render

MIN_COSINE = 0.99
MIN_NEIGHBOUR_OVERLAP = 0.9
LOAD_CHECK_MIN_COSINE = 0.995
PROBE_COUNT = 8


def probe_pictures(count: int = PROBE_COUNT, size: int = 320) -> list[Image.Image]:
    """Varied, deterministic pictures: generated shapes, some blurred, some not square."""
    specs = collection(per_pair=1, seed=900_001)[:count]
    pictures = []
    for index, spec in enumerate(specs):
        picture = render(spec, size)
        if index % 3 == 1:
            picture = picture.filter(ImageFilter.GaussianBlur(6))
        if index % 2 == 1:
            picture = picture.resize((size, size * 3 // 4))
        pictures.append(picture)
    return pictures


def probe_batch(
    preprocess: Callable[[Image.Image], torch.Tensor], count: int = PROBE_COUNT
) -> torch.Tensor:
    return torch.stack([preprocess(picture) for picture in probe_pictures(count)])


def unit_rows(vectors: np.ndarray | torch.Tensor) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Row by row cosine between two sets of vectors of the same items."""
    return np.sum(unit_rows(reference) * unit_rows(candidate), axis=1)


def neighbour_overlap(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> float:
    """Mean share of each item's k nearest neighbours (itself excluded) found by both."""
    if len(reference) <= k:
        raise ValueError(f"need more than {k} items to compare {k} neighbours")
    return _shared(_neighbours(unit_rows(reference), k), _neighbours(unit_rows(candidate), k))


def query_overlap(
    queries: np.ndarray, reference: np.ndarray, candidate: np.ndarray, k: int = 10
) -> float:
    """Mean share of each query's k best items found by both sets of item vectors.

    For text queries against image vectors: a runtime can keep images close to each
    other yet reorder what a text finds (USERS.md: quantised indexes that ruined
    text-to-image search while image-to-image looked fine).
    """
    if len(reference) < k:
        raise ValueError(f"need at least {k} items to compare {k} results")
    q = unit_rows(queries)
    ours = np.argsort(-(q @ unit_rows(reference).T), axis=1, kind="stable")[:, :k]
    theirs = np.argsort(-(q @ unit_rows(candidate).T), axis=1, kind="stable")[:, :k]
    return _shared(ours, theirs)


def _shared(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Mean share of each row's indices found in both (rows of k indices each)."""
    shared = [len(set(a) & set(b)) for a, b in zip(ours, theirs, strict=True)]
    return float(np.mean(shared)) / ours.shape[1]


def _neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]
