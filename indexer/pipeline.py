"""The indexing run: sources → manifests → images → vectors → store.

Manifests are walked and saved as they arrive (see harvest.py); their pending
images are fetched, decoded and preprocessed by a pool of threads (of processes on a GPU:
indexer.picture_processes) while the model embeds the previous batch. Each batch is
committed on its own, so an interrupted run keeps all finished work and the next run
starts where this one stopped.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np
import torch

from models.preprocess import stack_pixels

from .errors import IndexerError, SourceError
from .fetch import Fetcher, FetchError, FetchSettings
from .harvest import ElsewhereWalk, Harvest, HarvestProgress, HarvestReport
from .heap import collector_skips_what_lives_now
from .imageapi import (
    ImageService,
    image_request_url,
    locate_region,
    needs_info,
    parse_info,
    with_info,
)
from .imageapi_tiles import TilePlan, tile_plan
from .images import DEFAULT_MAX_PIXELS, REGION_OUTSIDE, Crop, DecodeError, decode_image
from .index_memory import IndexTooLargeError
from .index_plan import IndexSettings
from .store import EmbeddedImage, PendingItem, Store
from .tiles import fetch_tiles
from .vector_index import VectorIndex
from .vector_writer import VectorWriter

if TYPE_CHECKING:
    from .picture_processes import PicturePool, PicturePoolOnDemand

    PictureProcesses: TypeAlias = PicturePool | PicturePoolOnDemand

log = logging.getLogger(__name__)


class PictureMaker(Protocol):
    """What `prepare` needs of an encoder: the model's input size, and its preprocessing
    (a float tensor; in a worker process, uint8 pixels: indexer.picture_processes)."""

    @property
    def image_size(self) -> int: ...

    def preprocess(self, image: Any) -> torch.Tensor | np.ndarray: ...


class ImageEncoder(Protocol):
    image_size: int

    def preprocess(self, image: Any) -> torch.Tensor: ...

    def embed_tensors(self, batch: torch.Tensor | Sequence[torch.Tensor]) -> np.ndarray: ...


@dataclass
class IndexOptions:
    """`workers`: threads that fetch, decode and preprocess images. `processes`: when
    above 0, processes do that instead (indexer.picture_processes), for a model faster
    than one process can feed; `pictures`, a pool of them started by the caller and kept
    for several runs (a benchmark's), stands for `processes`."""

    batch_size: int = 32
    workers: int = 8
    manifest_workers: int = 4
    max_pixels: int = DEFAULT_MAX_PIXELS
    fetch: FetchSettings = field(default_factory=FetchSettings)
    processes: int = 0
    pictures: PicturePool | None = None
    # With picture processes, the manifests are read and saved in a process of their
    # own too (indexer.harvest_process); False keeps them in this one (to compare).
    harvest_apart: bool = True


@dataclass
class IndexReport:
    harvest: HarvestReport = field(default_factory=HarvestReport)
    embedded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    index: dict[str, Any] | None = None  # the search index built or loaded at the end
    index_refused: str | None = None  # why none could be: too large for memory
    picture_processes: int = 0  # started to prepare pictures (none: threads, or no work)

    def as_dict(self) -> dict[str, Any]:
        h = self.harvest
        return {
            "manifests": h.manifests,
            "unchanged_manifests": h.unchanged,
            "images_found": h.images_found,
            "embedded": self.embedded,
            "failed": dict(self.failed),
            "removed": h.removed,
            "taken_over": dict(h.taken_over),
            "skipped": dict(h.skipped),
            "source_failures": [{"source": s, "reason": r} for s, r in h.source_failures],
            "interrupted": self.interrupted,
            "index": self.index,
            "index_refused": self.index_refused,
            "picture_processes": self.picture_processes,
        }


class Progress(HarvestProgress, Protocol):
    def images_done(self, count: int) -> None: ...


class NoProgress:
    def manifest_read(self) -> None:
        pass

    def images_queued(self, count: int) -> None:
        pass

    def images_done(self, count: int) -> None:
        pass


# -- fetching and embedding ----------------------------------------------------------------


class ServiceInfos:
    """The info.json of each image service, read once a run.

    Several regions of one image share its service, and a level 0 service is read before
    each is asked (`needs_info`): one request serves them all. Thread-safe: a thread that
    wants an info.json another is reading waits for that answer rather than asking again.
    One that could not be read is not asked again this run either (the fetcher has
    retried it): each item that needs it fails as the first did (`read_info`). Bounded to
    the `capacity` services used last.
    """

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self._infos: OrderedDict[str, Future[ImageService | None]] = OrderedDict()
        self._lock = threading.Lock()

    def described(self, service: ImageService, fetcher: Fetcher) -> ImageService:
        """`service` as its info.json describes it; as it is when that has none to give.
        Raises FetchError when it could not be read for now (`read_info`)."""
        info = self._info(service.id, fetcher)
        return service if info is None else with_info(service, info)

    def _info(self, service_id: str, fetcher: Fetcher) -> ImageService | None:
        answer, first = self._slot(service_id)
        if first:
            try:
                answer.set_result(read_info(service_id, fetcher))
            except FetchError as error:  # kept: not asked again this run
                answer.set_exception(error)
            except BaseException as error:  # the threads waiting for it must not hang
                answer.set_exception(error)
                with self._lock:
                    self._infos.pop(service_id, None)
                raise
        try:
            return answer.result()
        except FetchError as error:  # one exception of its own for each item's thread
            raise FetchError(str(error), transient=error.transient) from None

    def _slot(self, service_id: str) -> tuple[Future[ImageService | None], bool]:
        """The answer for this service, and whether the caller is the first to ask (and
        must read it)."""
        with self._lock:
            answer = self._infos.get(service_id)
            if answer is not None:
                self._infos.move_to_end(service_id)
                return answer, False
            answer = self._infos[service_id] = Future()
            if len(self._infos) > self.capacity:
                self._infos.popitem(last=False)
            return answer, True


def read_info(service_id: str, fetcher: Fetcher) -> ImageService | None:
    """The service's info.json, or None when it has none to give (the manifest's word then
    stands): not found, not an info.json, or a path that a remote document names, which
    is never read from this machine (`Fetcher.service_refusal`).

    Raises FetchError when the server failed for now (5xx, a timeout: `transient`): the
    item fails, and the next run reads it again. Fetched from the master file instead,
    it would be stored without the sizes the service lists, and no later run would ask.
    """
    url = service_id + "/info.json"
    refusal = fetcher.service_refusal(service_id)
    if refusal:
        log.debug("%s not read: %s", url, refusal)
        return None
    try:
        info = fetcher.document(url)
        return None if info is None else parse_info(info.data, url)
    except SourceError as error:  # NotIIIFError too
        cause = error.__cause__
        if isinstance(cause, FetchError) and cause.transient:
            raise FetchError(f"info.json: {cause}", transient=True) from error
        log.debug("no usable %s: %s", url, error)
        return None


@dataclass(frozen=True)
class ImageRequest:
    """What to fetch for an item, and the part of it to keep (`crop`) when the request
    could not ask for the painted region alone. `described` is the item's service as its
    info.json describes it, when that was read and says more than the manifest. `tiles`:
    the tiles of a level 0 service to make the picture of instead, `url` being asked for
    when one of them is not there (see `indexer.tiles`)."""

    url: str
    crop: Crop | None = None
    described: ImageService | None = None
    tiles: TilePlan | None = None


def image_request(
    item: PendingItem,
    target: int,
    fetcher: Fetcher | None = None,
    infos: ServiceInfos | None = None,
) -> ImageRequest:
    """The smallest picture that covers the model's input, and the region to cut from it.

    With a `fetcher`, a level 0 service that lists no sizes, or whose size a region needs,
    is read first (its info.json, one small request, once a run with `infos`): the sizes
    it serves are often listed there only, and without them the master file is all it
    must serve, but for the tiles that a static tree lists there too (`tile_plan`).
    When that fails, the manifest's word stands.
    """
    if item.service:
        brief = ImageService.from_dict(item.service)
        service = brief
        if fetcher is not None and needs_info(brief, item.region):
            service = (infos or ServiceInfos()).described(brief, fetcher)
        url = image_request_url(service, item.width, item.height, target, region=item.region)
        described = None if service == brief else service
        tiles = tile_plan(service, target, region=item.region)
        return ImageRequest(url, region_crop(item, service), described, tiles)
    if item.image_url:
        return ImageRequest(item.image_url, region_crop(item, None))
    raise FetchError("the image has neither an Image API service nor a URL")


def region_crop(item: PendingItem, service: ImageService | None) -> Crop | None:
    """The item's region, where the request cannot ask for it alone (a level 0 service, a
    plain image URL): cut from the picture once decoded, so that the vector is the
    region's. Raises FetchError when the region lies outside the image, as far as its
    size is known: nothing of it is there to fetch.

    A service that crops is trusted with the region unless it states its own size (see
    `locate_region`)."""
    located = locate_region(service, item.region, item.width, item.height)
    if located is None:
        return None
    if located.outside:
        raise FetchError(REGION_OUTSIDE)
    if not located.cut:
        return None  # the service crops it
    return Crop(located.box, located.size)


# How long a batch that is not full waits for the next image before it is embedded:
# enough for downloads that keep up with the model, short beside a slow server's answer.
LINGER = 0.05


@dataclass(frozen=True)
class Prepared:
    item: PendingItem
    url: str
    # A float tensor, or uint8 pixels from a worker process (indexer.picture_processes).
    model_input: torch.Tensor | np.ndarray | None = None
    size: tuple[int, int] = (0, 0)
    stage: str = ""
    error: str = ""
    described: ImageService | None = None  # see ImageRequest

    def embedded(self, vector: np.ndarray) -> EmbeddedImage:
        """What the store keeps of this image once embedded."""
        described = None if self.described is None else self.described.to_dict()
        return EmbeddedImage(self.item.key, vector, self.url, *self.size, described)


def prepare(
    item: PendingItem,
    fetcher: Fetcher,
    encoder: PictureMaker,
    max_pixels: int,
    infos: ServiceInfos | None = None,
) -> Prepared:
    """Fetch, decode and preprocess one image (runs in a worker thread); `infos` holds
    the info.json documents read this run.

    Any failure is this item's failure, recorded with its stage: one bad image must
    never stop a run of 500,000. Ctrl-C and exits are not Exceptions, so still stop it.
    """
    url = item.image_url or ""
    stage = "fetch"
    try:
        request = image_request(item, encoder.image_size, fetcher, infos)
        tiles = None
        if request.tiles is not None:
            url = request.tiles.label  # what the tiles' failure or picture is recorded as
            tiles = fetch_tiles(request.tiles, fetcher)
        if tiles is None:  # no tiles to make the picture of, or one is not there
            url = request.url
            data = fetcher.image(url)
        stage = "decode"  # and preprocess: both make the picture the model takes
        if tiles is None:
            image = decode_image(data, encoder.image_size, max_pixels, request.crop)
        else:
            image = tiles.picture(max_pixels, request.crop)
        model_input = encoder.preprocess(image)
    except (FetchError, DecodeError) as error:
        return Prepared(item, url, stage=stage, error=str(error))
    except Exception as error:
        return Prepared(item, url, stage=stage, error=unexpected_failure(error))
    return Prepared(
        item, url, model_input=model_input, size=image.size, described=request.described
    )


_logged_failures: set[tuple[str, str, int]] = set()
_logged_lock = threading.Lock()


def unexpected_failure(error: Exception) -> str:
    """The reason recorded for an error nobody planned for. Its traceback is logged once
    per kind and place, so that a bug shows without a traceback per image."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    key = (type(error).__name__, frame.filename, frame.lineno or 0)
    with _logged_lock:
        first = key not in _logged_failures
        _logged_failures.add(key)
    if first:
        log.error("unexpected error preparing an image", exc_info=error)
    return f"unexpected error: {type(error).__name__}: {error}"[:200]


class OneOf:
    """One picture of several prepared in one task (indexer.picture_processes): the
    `index`th of `of`'s list, with what `prepared_in_order`'s window asks of a Future."""

    __slots__ = ("of", "index")

    def __init__(self, of: Future[list[Prepared]], index: int):
        self.of, self.index = of, index

    def done(self) -> bool:
        return self.of.done()

    def cancel(self) -> bool:
        return self.of.cancel()

    def cancelled(self) -> bool:
        return self.of.cancelled()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self.of.exception(timeout)

    def result(self, timeout: float | None = None) -> Prepared:
        return self.of.result(timeout)[self.index]


PictureFuture = Future[Prepared] | OneOf


def prepared_in_order(
    items: Iterable[PendingItem],
    fetcher: Fetcher,
    encoder: ImageEncoder,
    options: IndexOptions,
    pending: deque[PictureFuture] | None = None,
    pictures: PictureProcesses | None = None,
) -> Iterator[tuple[Prepared, bool]]:
    """Prepared images in order, each with whether the next one is ready too: by a pool
    of `options.workers` threads, or by `pictures`' processes.

    A window of two batches' downloads is kept full, topped up as each image is handed
    on, so that the next batch is in flight while the model embeds this one; finished
    images are handed on as soon as they are at the head of the window. "Ready" waits
    up to LINGER for the next image. `items` is pulled lazily (it may still be walking
    manifests); on Ctrl-C or an early close, queued work is cancelled, not waited for.
    `pending`, when given, is the window itself (futures in order), for a caller that
    keeps what had finished when the run stops (`finished_in`).
    """
    # A process takes its items in groups (`PicturePool.GROUP`): it needs a group each
    # in flight, and another ready.
    in_flight = pictures.processes * pictures.GROUP if pictures else options.workers
    window = max(options.batch_size * 2, in_flight * 2)
    pool = None if pictures else ThreadPoolExecutor(in_flight, thread_name_prefix="regard-fetch")
    infos = ServiceInfos()
    pending = deque() if pending is None else pending
    queue = iter(items)

    def next_ready(linger: float) -> bool:
        if not pending:
            return False
        # done() first: wait() builds a waiter each call, and this is asked per image.
        head = pending[0]
        if head.done() or linger <= 0:
            return head.done()
        waited: Future[Any] = head.of if isinstance(head, OneOf) else head
        return bool(wait([waited], linger).done)

    def pull() -> bool:
        """Queue the next item, or group of them; False once there are none. May wait on
        the walk."""
        if pictures is not None:
            group = list(islice(queue, pictures.GROUP))
            pending.extend(pictures.submit(group, fetcher))
            return bool(group)
        item = next(queue, None)
        if item is not None:
            assert pool is not None
            pending.append(pool.submit(prepare, item, fetcher, encoder, options.max_pixels, infos))
        return item is not None

    try:
        while True:
            # While the head is still downloading, queue more, up to the window.
            while len(pending) < window and not next_ready(0) and pull():
                pass
            if not pending:
                return
            prepared = pending.popleft().result()
            # Replace the image handed on, and one more while below the window: it
            # refills, yet a slow walk of manifests holds a finished image back for at
            # most two items (or groups).
            for _ in range(2):
                if len(pending) < window:
                    pull()
            yield prepared, next_ready(LINGER)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for future in pending:  # a pool of processes may serve another run
            future.cancel()


def embed_pending(
    store: Store,
    encoder: Any,
    items: Iterable[PendingItem],
    fetcher: Fetcher,
    options: IndexOptions,
    report: IndexReport,
    run_id: int,
    progress: Progress,
    pictures: PictureProcesses | None = None,
) -> None:
    """Embed `items` batch by batch; each batch is written in one transaction, beside
    the next batch's embedding. On Ctrl-C the batch in hand is still written, so no
    finished download is lost.

    A batch is embedded when full, or earlier, from a quarter full, when the next image
    has not arrived within LINGER: when the servers are slower than the model, the model
    keeps up with them rather than idling, and the run does not end with a full batch
    still to embed after its last download. The first batches ramp up from a quarter
    (a quarter, a half, then full), so that the model starts while the downloads behind
    it fill the window, rather than waiting for a whole batch at the servers' pace.
    """
    early = max(1, options.batch_size // 4)
    size = early  # this batch's size: ramps up to options.batch_size
    batch: list[Prepared] = []
    window: deque[PictureFuture] = deque()
    # Each batch's vectors are written in a thread of their own (indexer.vector_writer):
    # every batch handed over is written before this returns, whatever stops the run.
    writer = VectorWriter(store, encoder.fingerprint.key)

    def flush() -> None:
        if not batch:
            return
        inputs = [p.model_input for p in batch]
        if isinstance(inputs[0], np.ndarray):  # pixels from worker processes
            vectors = encoder.embed_pixels(stack_pixels(inputs))  # type: ignore[arg-type]
        else:
            # A list, not torch.stack: the encoder stacks it without torch's threads
            # (models.preprocess.stack), which stall while the download threads hold a core.
            vectors = encoder.embed_tensors(inputs)
        writer.write([p.embedded(vector) for p, vector in zip(batch, vectors, strict=True)])
        report.embedded += len(batch)
        progress.images_done(len(batch))
        batch.clear()

    def take(prepared: Prepared) -> None:
        if prepared.error:
            store.record_item_failure(
                run_id, prepared.item, prepared.url, prepared.stage, prepared.error
            )
            report.failed[prepared.error] += 1
            progress.images_done(1)
        else:
            batch.append(prepared)

    with writer:
        try:
            in_order = prepared_in_order(items, fetcher, encoder, options, window, pictures)
            for prepared, next_ready in in_order:
                take(prepared)
                if len(batch) >= size or (len(batch) >= early and not next_ready):
                    flush()
                    size = min(size * 2, options.batch_size)
        except BrokenProcessPool as error:  # a picture process was killed (out of memory?)
            raise IndexerError(
                "a process preparing pictures stopped unexpectedly (out of memory?). The "
                "images embedded so far are kept: run the same command to resume, with "
                "fewer --processes, or --processes 0 to prepare them in threads"
            ) from error
        except KeyboardInterrupt:
            # The downloads that had finished are kept too: the next run need not fetch
            # them again (at most two batches more to embed; a second Ctrl-C stops at once).
            for prepared in finished_in(window):
                take(prepared)
            flush()
            raise
        flush()


def finished_in(window: deque[PictureFuture]) -> list[Prepared]:
    """The images of the window whose preparation had finished, in order."""
    return [
        future.result()
        for future in window
        if future.done() and not future.cancelled() and future.exception() is None
    ]


# -- the run -------------------------------------------------------------------------------


def _harvest_process(
    store: Store, options: IndexOptions, limiter: Any, run_id: int
) -> ElsewhereWalk | None:
    from .harvest_process import FORK_IS_SAFE, HarvestProcess  # multiprocessing's parts

    if not FORK_IS_SAFE:
        return None
    return HarvestProcess(store.path, options.fetch, limiter, run_id, options.manifest_workers)


def run_index(
    sources: Sequence[str],
    store: Store,
    encoder: Any,
    options: IndexOptions | None = None,
    progress: Progress | None = None,
) -> IndexReport:
    """Index `sources` into `store` with `encoder`; resumable, and never does work twice.

    The store must already be bound to the encoder's model (Store.bind_model).
    """
    options = options or IndexOptions()
    progress = progress or NoProgress()
    report = IndexReport()
    run_id = store.begin_run(sources)
    status = "failed"
    own_pictures = None
    pictures: PictureProcesses | None = options.pictures
    try:
        # The modules, the model and the store outlive the run: see indexer.heap.
        with collector_skips_what_lives_now():
            if pictures is None and options.processes > 0:
                from .picture_processes import PicturePoolOnDemand  # multiprocessing's parts

                pictures = own_pictures = PicturePoolOnDemand(
                    options.processes, options.fetch, encoder, options.max_pixels
                )
            limiter = pictures.limiter if pictures else None  # one rule for all processes
            with Fetcher(options.fetch, limiter) as fetcher:
                # Beside picture processes, the manifests are read in a process too.
                apart = pictures is not None and options.harvest_apart
                elsewhere = _harvest_process(store, options, limiter, run_id) if apart else None
                harvest = Harvest(
                    store, fetcher, run_id, progress, options.manifest_workers, elsewhere
                )
                report.harvest = harvest.report
                items = harvest.pending_items(sources)
                embed_pending(
                    store, encoder, items, fetcher, options, report, run_id, progress, pictures
                )
                harvest.finish()
            if own_pictures is not None:
                own_pictures.close()
            try:
                report.index = VectorIndex.load_or_build(store, IndexSettings.from_env()).describe()
            except IndexTooLargeError as error:  # the vectors are stored: the run did its work
                report.index_refused = str(error)
            status = "finished"
    except KeyboardInterrupt:
        report.interrupted = True
        status = "interrupted"
        raise
    finally:
        if own_pictures is not None:
            own_pictures.close(wait_for_work=False)  # a no-op once closed
        # Counted however the run ends: an interrupted run's summary says it too.
        report.picture_processes = pictures.processes_started if pictures else 0
        store.finish_run(run_id, status, report.as_dict())
    return report
