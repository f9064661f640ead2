"""Generated collections of unit vectors for the search benchmarks: shapes that real
image embeddings may take, since no museum's vectors can ship with the project.

- `Mixture`: well-separated clusters of different sizes (scripts/bench_search).
- `Themes`: one archive's vectors: a direction all items share (one medium, one hand),
  themes, and motifs within each theme, close to one another.
- `PowerLaw`: no clusters at all: a Gaussian whose variances fall off as a power law,
  as the eigenvalues of real CLIP embeddings do, around a shared direction.

Every class draws `sample(n, stream)` (the same stream gives the same vectors) and
`chunks(n)` (the collection as stored, float16); `text_like(n)` turns new draws into
queries as far from the data as a text's vector is from its best images.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from indexer.index_tuning import text_like

DIM = 768
CENTRES = 3000
# How close a text-like query comes to its best items (cosine): about what CLIP models
# give a text and its best images, against 0.6 to 0.9 between similar images.
TEXT_SIMILARITY = 0.3


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


class Collection:
    seed = 0

    def sample(self, n: int, stream: int) -> np.ndarray:
        raise NotImplementedError

    def chunks(self, n: int, size: int = 100_000) -> Iterator[np.ndarray]:
        """The collection, as stored: float16, in fixed chunks (the same at every size)."""
        for number, start in enumerate(range(0, n, size)):
            yield self.sample(min(size, n - start), 1 + number).astype(np.float16)

    def queries(self, n: int) -> np.ndarray:
        """New draws from the same distribution: near the data, not from it, as an
        image's vector is near those of the images like it."""
        return self.sample(n, 10**9)

    def text_like(self, n: int, similarity: float = TEXT_SIMILARITY) -> np.ndarray:
        """New draws moved far from the data, as the index build's text-like probes are
        (indexer.index_tuning.text_like)."""
        rng = np.random.default_rng([self.seed, 10**9 + 3])
        return text_like(self.sample(n, 10**9 + 2), similarity, rng)


class Mixture(Collection):
    """Unit vectors from a Gaussian mixture: clusters of different sizes and spreads.

    Members of a cluster have cosine 0.5 to 0.8 with each other and about 0 with the
    rest, and the ten nearest neighbours of a query lie within a few hundredths of each
    other: close to what image embeddings look like, and hard for a compressed index.
    """

    def __init__(self, centres: int = CENTRES, dim: int = DIM, seed: int = 0):
        rng = np.random.default_rng(seed)
        middles = rng.standard_normal((centres, dim), dtype=np.float32)
        self.centres = middles / np.linalg.norm(middles, axis=1, keepdims=True)
        self.spread = rng.uniform(0.5, 1.0, centres).astype(np.float32)
        weights = np.minimum(rng.zipf(1.5, centres), 50).astype(np.float64)
        self.weights = weights / weights.sum()
        self.seed = seed

    def sample(self, n: int, stream: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, stream])
        labels = rng.choice(len(self.centres), n, p=self.weights)
        noise = rng.standard_normal((n, self.centres.shape[1]), dtype=np.float32)
        vectors = self.centres[labels] + self.spread[labels, None] * noise / np.sqrt(DIM)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def text_like_queries(self, n: int, similarity: float = TEXT_SIMILARITY) -> np.ndarray:
        """Far from the data, as a text's vector is from every image's (CLIP's "modality
        gap"): a cluster's centre at cosine `similarity`, the rest a random direction
        orthogonal to it. Every cell of an IVF index then scores nearly alike, which is
        what makes these queries hard for it (big-ann-benchmarks' Text2Image set)."""
        rng = np.random.default_rng([self.seed, 10**9 + 1])
        centres = self.centres[rng.choice(len(self.centres), n, p=self.weights)]
        return text_like(centres, similarity, rng)


class Themes(Collection):
    """One archive: all items share a direction (cosine about 0.2 between any two),
    `themes` themes of `motifs` motifs each (motifs of a theme close to one another),
    items around their motif."""

    def __init__(self, themes: int = 300, motifs: int = 40, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.shared = unit(rng.standard_normal(DIM, dtype=np.float32))
        theme = unit(rng.standard_normal((themes, DIM), dtype=np.float32))
        nudge = unit(rng.standard_normal((themes * motifs, DIM), dtype=np.float32))
        self.motifs = unit(np.repeat(theme, motifs, axis=0) + 0.9 * nudge)
        weights = np.minimum(rng.zipf(1.5, len(self.motifs)), 50).astype(np.float64)
        self.weights = weights / weights.sum()
        self.seed = seed

    def sample(self, n: int, stream: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, stream])
        labels = rng.choice(len(self.motifs), n, p=self.weights)
        noise = unit(rng.standard_normal((n, DIM), dtype=np.float32))
        return unit(0.6 * self.shared + self.motifs[labels] + 0.8 * noise)


class PowerLaw(Collection):
    """No clusters: variances falling as 1 / rank (`exponent` 1) in random directions,
    around a shared direction (cosine about 0.2 between any two items)."""

    def __init__(self, exponent: float = 1.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
        self.rotation = rotation.astype(np.float32)
        deviation = np.arange(1, DIM + 1, dtype=np.float32) ** (-exponent / 2)
        self.deviation = deviation / np.linalg.norm(deviation)
        self.shared = unit(rng.standard_normal(DIM, dtype=np.float32))
        self.seed = seed

    def sample(self, n: int, stream: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, stream])
        spread = rng.standard_normal((n, DIM), dtype=np.float32) * self.deviation
        return unit(0.5 * self.shared + spread @ self.rotation)
