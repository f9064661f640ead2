"""Real store folders of generated vectors, for the benchmarks (search, map): written
through the Store API as an indexer writes them, and reused by later runs that ask for
the same ones."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from generated import CENTRES, DIM, Mixture

if TYPE_CHECKING:
    from indexer.store import Store

MODEL = "ViT-B-32-SigLIP2-256"
PRETRAINED = "random"
IMAGES_PER_MANIFEST = 1000
STORE_FORMAT = 2  # bump when the generated store changes


def fingerprint_record() -> dict:
    from models import Fingerprint

    fingerprint = Fingerprint(model=MODEL, pretrained=PRETRAINED, dim=DIM)
    return {**fingerprint.to_dict(), "key": fingerprint.key}


def make_store(folder: Path, count: int, mixture: Mixture) -> float:
    """A store of `count` indexed items through the Store API; returns seconds taken.

    A store left by an earlier run with the same parameters is reused, and the seconds
    it took then are returned.
    """
    from indexer.store import Store

    marker = folder / "bench.json"
    wanted = {"format": STORE_FORMAT, "count": count, "centres": CENTRES, "dim": DIM}
    if marker.exists():
        earlier = json.loads(marker.read_text())
        if {key: earlier.get(key) for key in wanted} == wanted:
            return float(earlier.get("seconds", 0.0))
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    store = Store.open(folder, create=True)
    store.bind_model(MODEL, PRETRAINED, fingerprint_record())
    written = 0
    for chunk in mixture.chunks(count):
        keys: list[int] = []
        for start in range(0, len(chunk), IMAGES_PER_MANIFEST):
            first = written + start
            url = f"https://museum.example/iiif/{first:07d}/manifest"
            images = min(IMAGES_PER_MANIFEST, len(chunk) - start)
            keys += write_manifest(store, url, f"Fonds {first}", images, first)
        # Keys follow the order of writing: the benchmark's exact search relies on it.
        assert keys == list(range(written + 1, written + len(chunk) + 1)), "unexpected keys"
        # One transaction for the whole chunk's vectors, as a big indexing batch would be.
        save_vectors(store, keys, chunk)
        written += len(chunk)
        print(f"  store: {written:,} items", end="\r", file=sys.stderr, flush=True)
    store.close()
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({**wanted, "seconds": seconds}))
    print(file=sys.stderr)
    return seconds


def write_manifest(store: Store, url: str, label: str, images: int, first: int) -> list[int]:
    """A manifest of `images` single-image canvases, saved as the harvest would save it;
    returns its items' keys."""
    from indexer.store import ImageRow, ManifestRow

    store.save_manifest(
        ManifestRow(
            id=url,
            source=url,
            version=3,
            label={"fr": [label]},
            summary=None,
            metadata=[],
            rights=None,
            required_statement=None,
            content_hash=None,
        ),
        [
            ImageRow(
                id=f"{url}#{i:04d}",
                manifest_id=url,
                canvas_id=f"{url}/canvas/{i}",
                canvas_index=i,
                image_index=0,
                canvas_label={"none": [f"f. {i}"]},
                image_url=f"https://museum.example/iiif/image/{first + i}",
                service=None,
                width=2000,
                height=1500,
                format="image/jpeg",
            )
            for i in range(images)
        ],
    )
    return [p.key for p in store.pending_items([url])]


def save_vectors(store: Store, keys: list[int], vectors: np.ndarray) -> None:
    from indexer.store import EmbeddedImage

    store.save_vectors(
        [
            EmbeddedImage(key, vector, "bench", 256, 256)
            for key, vector in zip(keys, vectors, strict=True)
        ],
        fingerprint_record()["key"],
    )
