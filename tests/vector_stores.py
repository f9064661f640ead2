"""Stores filled with generated vectors, through the Store API: for index and search tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.store import EmbeddedImage, ImageRow, ManifestRow, Store

DIM = 32


def fingerprint(dim: int = DIM) -> dict:
    return {"key": f"toy|sha256:0|{dim}", "model": "toy", "pretrained": "x", "dim": dim}


def clustered(n: int, draw: int = 0, dim: int = DIM, centres: int = 12) -> np.ndarray:
    """Unit vectors around a few fixed random centres, like embeddings of a collection.

    Each `draw` gives other vectors around the same centres: queries near the data.
    """
    middles = np.random.default_rng(0).standard_normal((centres, dim)).astype(np.float32)
    middles /= np.linalg.norm(middles, axis=1, keepdims=True)
    rng = np.random.default_rng(1 + draw)
    labels = rng.integers(0, centres, n)
    vectors = middles[labels] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(
        dim
    )
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def vector_store(path: Path, vectors: np.ndarray, manifest_id: str = "m1") -> Store:
    """A store whose one manifest has one indexed item per vector."""
    store = Store.open(path, create=True)
    store.bind_model("toy", "x", fingerprint(vectors.shape[1]))
    add_manifest(store, vectors, manifest_id)
    return store


def image_rows(manifest_id: str, count: int) -> list[ImageRow]:
    """`count` single-image canvases of a manifest, as the harvest would save them."""
    return [
        ImageRow(
            id=f"{manifest_id}#{i}",
            manifest_id=manifest_id,
            canvas_id=f"{manifest_id}/canvas/{i}",
            canvas_index=i,
            image_index=0,
            canvas_label={"none": [f"f. {i}"]},
            image_url=f"{manifest_id}/image/{i}.jpg",
            service=None,
            width=100,
            height=80,
            format="image/jpeg",
        )
        for i in range(count)
    ]


def add_manifest(store: Store, vectors: np.ndarray, manifest_id: str) -> np.ndarray:
    """Another manifest with these vectors, embedded; returns the new items' keys."""
    url = manifest_url(manifest_id)
    store.save_manifest(manifest_row(manifest_id), image_rows(url, len(vectors)))
    pending = store.pending_items([url])
    store.save_vectors(
        [EmbeddedImage(p.key, v, "u", 10, 8) for p, v in zip(pending, vectors, strict=True)],
        fingerprint(vectors.shape[1])["key"],
    )
    return np.array([p.key for p in pending], dtype=np.int64)


def manifest_row(manifest_id: str) -> ManifestRow:
    url = manifest_url(manifest_id)
    return ManifestRow(
        id=url,
        source=url,
        version=3,
        label={"none": [manifest_id]},
        summary=None,
        metadata=[],
        rights=None,
        required_statement=None,
        content_hash=None,
    )


def manifest_url(manifest_id: str) -> str:
    return f"https://example.org/{manifest_id}"
