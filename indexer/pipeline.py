"""The indexing run: sources → manifests → images → vectors → store.

Manifests are read first and their images recorded as pending; then every pending
image is fetched, decoded and preprocessed by a pool of threads while the model
embeds the previous batch. Each batch is committed on its own, so an interrupted
run keeps all finished work and the next run starts where this one stopped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from .errors import SourceError
from .fetch import Fetcher, FetchError, FetchSettings
from .iiif import Collection, ImageRef, Manifest, parse_document
from .imageapi import ImageService, image_request_url
from .images import DEFAULT_MAX_PIXELS, DecodeError, decode_image
from .store import EmbeddedImage, ImageRow, ManifestRow, PendingItem, Store
from .vector_index import VectorIndex


class ImageEncoder(Protocol):
    image_size: int

    def preprocess(self, image: Any) -> torch.Tensor: ...

    def embed_tensors(self, batch: torch.Tensor) -> np.ndarray: ...


@dataclass
class IndexOptions:
    batch_size: int = 32
    workers: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS
    fetch: FetchSettings = field(default_factory=FetchSettings)


@dataclass
class IndexReport:
    sources: int = 0
    source_failures: list[tuple[str, str]] = field(default_factory=list)
    manifests: int = 0
    images_found: int = 0
    embedded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    skipped_canvases: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "source_failures": [{"source": s, "reason": r} for s, r in self.source_failures],
            "manifests": self.manifests,
            "images_found": self.images_found,
            "embedded": self.embedded,
            "failed": dict(self.failed),
            "skipped_canvases": dict(self.skipped_canvases),
            "interrupted": self.interrupted,
        }


Progress = Callable[[int], None]


# -- reading sources -----------------------------------------------------------------------


def read_manifests(sources: Sequence[str], fetcher: Fetcher) -> Iterator[tuple[str, Any]]:
    """(source, Manifest) for each manifest; (source, SourceError) for each failure."""
    for source in sources:
        try:
            document = fetcher.document(source)
            parsed = parse_document(document.data, source)
            if isinstance(parsed, Collection):
                raise SourceError(
                    source,
                    "is a IIIF collection; this version of Regard indexes manifests: "
                    "give the manifest URLs it lists",
                )
            yield source, (parsed, document.content_hash)
        except SourceError as error:
            yield source, error


def manifest_row(manifest: Manifest, source: str, content_hash: str | None) -> ManifestRow:
    return ManifestRow(
        id=manifest.id,
        source=source,
        version=manifest.version,
        label=manifest.label,
        summary=manifest.summary,
        metadata=manifest.metadata,
        rights=manifest.rights,
        required_statement=manifest.required_statement,
        content_hash=content_hash,
    )


def image_row(ref: ImageRef) -> ImageRow:
    return ImageRow(
        id=ref.item_id,
        manifest_id=ref.manifest_id,
        canvas_id=ref.canvas_id,
        canvas_index=ref.canvas_index,
        image_index=ref.image_index,
        canvas_label=ref.canvas_label,
        image_url=ref.image_url,
        service=dataclasses.asdict(ref.service) if ref.service else None,
        width=ref.width,
        height=ref.height,
        format=ref.format,
        region=ref.region,
        canvas_metadata=ref.canvas_metadata,
    )


# -- fetching and embedding ----------------------------------------------------------------


def request_url(item: PendingItem, target: int) -> str:
    """The URL of the smallest picture that covers the model's input."""
    if item.service:
        service = ImageService.from_dict(item.service)
        return image_request_url(service, item.width, item.height, target, region=item.region)
    if item.image_url:
        return item.image_url
    raise FetchError("the image has neither an Image API service nor a URL")


@dataclass(frozen=True)
class Prepared:
    item: PendingItem
    url: str
    tensor: torch.Tensor | None = None
    size: tuple[int, int] = (0, 0)
    stage: str = ""
    error: str = ""


def prepare(
    item: PendingItem, fetcher: Fetcher, encoder: ImageEncoder, max_pixels: int
) -> Prepared:
    """Fetch, decode and preprocess one image (runs in a worker thread)."""
    url = item.image_url or ""
    try:
        url = request_url(item, encoder.image_size)
        data = fetcher.image(url)
    except FetchError as error:
        return Prepared(item, url, stage="fetch", error=str(error))
    try:
        image = decode_image(data, encoder.image_size, max_pixels)
    except DecodeError as error:
        return Prepared(item, url, stage="decode", error=str(error))
    return Prepared(item, url, tensor=encoder.preprocess(image), size=image.size)


def prepared_in_order(
    items: Sequence[PendingItem],
    fetcher: Fetcher,
    encoder: ImageEncoder,
    options: IndexOptions,
) -> Iterator[Prepared]:
    """Prepared images in order, keeping a bounded window of work in flight."""
    window = max(options.batch_size * 2, options.workers * 2)
    with ThreadPoolExecutor(options.workers, thread_name_prefix="regard-fetch") as pool:
        pending: deque[Future[Prepared]] = deque()
        queue = iter(items)
        try:
            for item in queue:
                pending.append(pool.submit(prepare, item, fetcher, encoder, options.max_pixels))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def embed_pending(
    store: Store,
    encoder: Any,
    fingerprint_key: str,
    items: Sequence[PendingItem],
    fetcher: Fetcher,
    options: IndexOptions,
    report: IndexReport,
    run_id: int,
    progress: Progress,
) -> None:
    batch: list[Prepared] = []

    def flush() -> None:
        if not batch:
            return
        vectors = encoder.embed_tensors(torch.stack([p.tensor for p in batch]))
        store.save_vectors(
            [
                EmbeddedImage(p.item.key, vector, p.url, p.size[0], p.size[1])
                for p, vector in zip(batch, vectors, strict=True)
            ],
            fingerprint_key,
        )
        report.embedded += len(batch)
        progress(len(batch))
        batch.clear()

    for prepared in prepared_in_order(items, fetcher, encoder, options):
        if prepared.error:
            store.record_item_failure(
                run_id, prepared.item, prepared.url, prepared.stage, prepared.error
            )
            report.failed[prepared.error] += 1
            progress(1)
            continue
        batch.append(prepared)
        if len(batch) >= options.batch_size:
            flush()
    flush()


# -- the run -------------------------------------------------------------------------------


def run_index(
    sources: Sequence[str],
    store: Store,
    encoder: Any,
    options: IndexOptions | None = None,
    progress_factory: Callable[[int], Progress] | None = None,
) -> IndexReport:
    """Index `sources` into `store` with `encoder`; resumable, and never does work twice.

    The store must already be bound to the encoder's model (Store.bind_model).
    """
    options = options or IndexOptions()
    report = IndexReport(sources=len(sources))
    fingerprint_key = encoder.fingerprint.key
    run_id = store.begin_run(sources)
    status = "failed"
    try:
        with Fetcher(options.fetch) as fetcher:
            manifest_ids: list[str] = []
            for source, result in read_manifests(sources, fetcher):
                if isinstance(result, SourceError):
                    report.source_failures.append((source, result.problem))
                    store.record_source_failure(run_id, source, result.problem)
                    continue
                manifest, content_hash = result
                images = [image_row(ref) for ref in manifest.images]
                store.save_manifest(manifest_row(manifest, source, content_hash), images)
                manifest_ids.append(manifest.id)
                report.manifests += 1
                report.images_found += len(images)
                report.skipped_canvases.update(skip.reason for skip in manifest.skipped)

            pending = store.pending_items(manifest_ids) if manifest_ids else []
            progress = progress_factory(len(pending)) if progress_factory else (lambda n: None)
            embed_pending(
                store, encoder, fingerprint_key, pending, fetcher, options, report, run_id, progress
            )
        VectorIndex.load_or_build(store)
        status = "finished"
    except KeyboardInterrupt:
        report.interrupted = True
        status = "interrupted"
        raise
    finally:
        store.finish_run(run_id, status, report.as_dict())
    return report
