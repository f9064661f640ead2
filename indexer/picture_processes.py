"""Pictures prepared in worker processes, for a model faster than one process can feed.

On a GPU the model embeds thousands of pictures a second, while one Python process
fetches, decodes and preprocesses a few hundred: that work holds the interpreter lock
(docs/benchmarks.md, "Embedding on a GPU"). A PicturePool runs `pipeline.prepare` in N
processes instead, each with its own Fetcher and its own info.json cache (a level 0
service may then be read once per process rather than once per run). The requests to
any one host stay within --per-host across all of them and the main process's manifests
(SharedHostLimiter). A picture comes back as uint8 pixels (Preprocess.pixels), a quarter
of the float tensor's bytes, through a file every process maps (PictureSlots), and is
normalised on the model's device (Encoder.embed_pixels): the vectors are the threads' own.

On a CPU the model needs every core itself: on 2 cores the processes doubled the
pipeline's own speed but not the whole run's, and each holds a few hundred MB (torch is
imported there). Threads stay the rule there (`auto_processes`).
"""

from __future__ import annotations

import gc
import math
import mmap
import multiprocessing
import os
import signal
import tempfile
import threading
import weakref
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.preprocess import Preprocess
from models.runtime import usable_cpus

from .errors import IndexerError
from .fetch import Fetcher, FetchSettings, SharedHostLimiter
from .pipeline import OneOf, Prepared, ServiceInfos, prepare
from .process_ties import end_with
from .store import PendingItem

# At most this many by default: beyond it the main process, which hands the pictures out
# and takes them in, sets the pace (on 16 cores, 12 and 14 gave the same within the
# noise: docs/benchmarks.md, "Embedding on a GPU").
MAX_AUTO_PROCESSES = 12


def auto_processes(device_type: str, cores: int | None = None) -> int:
    """How many processes prepare pictures by default: none on a CPU (the pipeline's
    threads share the cores with the model, see the module's docstring); on an
    accelerator one per usable CPU but two (the model's process and the system), at most
    MAX_AUTO_PROCESSES."""
    if device_type == "cpu":
        return 0
    cores = usable_cpus() if cores is None else cores
    return max(0, min(cores - 2, MAX_AUTO_PROCESSES))


class PictureSlots:
    """Places for pictures of one shape in a file that every process maps: a worker
    writes a picture where the main process said (`take`), and the main process reads
    it there (`lease`) until the batch it joins is stacked.

    Through ProcessPoolExecutor's pipe, each 256-pixel picture (196 KB) cost the main
    process 0.43 ms of CPU against 0.12 ms for a task that returned nothing (measured on
    2 cores), which holds it to about 2,000 pictures a second; copied out of its place,
    0.13 ms more. Read in place, a picture is not copied at all where its batch's
    pictures lie one after another: places are taken in turn round the file, so that
    pictures asked for one after another mostly do (`models.preprocess.stack_pixels`).
    The file lies in /dev/shm where it has room (in memory), else in the temporary
    folder (a container's /dev/shm is often 64 MB); its name is removed once every
    process has mapped it (`unlink`), and its pages go with the last of them.
    """

    def __init__(self, count: int, shape: tuple[int, ...]):
        self.count, self.shape = count, shape
        size = count * math.prod(shape)
        # Named after this process, so that a file left behind says whose it was.
        prefix = f"regard-pictures-{os.getpid()}-"
        handle, name = tempfile.mkstemp(prefix=prefix, dir=_folder_for(size))
        os.ftruncate(handle, size)
        os.close(handle)
        self.path = Path(name)
        self._array: np.ndarray | None = None
        self._free: _InTurn | None = _InTurn(count)

    def __getstate__(self) -> dict[str, Any]:  # to a worker: the file, not the free list
        return {"count": self.count, "shape": self.shape, "path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _array=None, _free=None)

    def take(self) -> int | None:
        """A free place; None when all are in use (the picture then comes by the pipe:
        waiting here could wait on pictures the caller holds itself)."""
        assert self._free is not None, "places are taken in the main process"
        return self._free.take()

    def give_back(self, place: int) -> None:
        assert self._free is not None, "places are given back in the main process"
        self._free.give_back(place)

    @property
    def free(self) -> int:
        """How many places are free now."""
        assert self._free is not None, "places are counted in the main process"
        return self._free.count

    def lease(self, place: int) -> np.ndarray:
        """The picture at `place`, read where it lies; the place is given back once
        nothing refers to the array any more (it is stacked into its batch, or dropped)."""
        picture = self[place][...]  # an array of its own, for the finalizer to watch
        weakref.finalize(picture, self.give_back, place)
        return picture

    def __getitem__(self, place: int) -> np.ndarray:
        if self._array is None:
            with self.path.open("r+b") as file:
                mapped = mmap.mmap(file.fileno(), 0)
            self._array = np.frombuffer(mapped, np.uint8).reshape(self.count, *self.shape)
        return self._array[place]

    def unlink(self) -> None:
        """Remove the file's name; the processes that mapped it keep it until they end."""
        self.path.unlink(missing_ok=True)


class _InTurn:
    """Free places among `count`, taken in turn: the first free one at or after the one
    after the last taken. Thread-safe: places are given back by whichever thread drops
    the last reference to a picture."""

    def __init__(self, count: int):
        self._is_free = bytearray(b"\x01" * count)
        self.count = count  # free now
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if not self.count:
                return None
            place = self._next
            while not self._is_free[place]:
                place = (place + 1) % len(self._is_free)
            self._is_free[place] = 0
            self.count -= 1
            self._next = (place + 1) % len(self._is_free)
            return place

    def give_back(self, place: int) -> None:
        with self._lock:
            assert not self._is_free[place], f"place {place} given back twice"
            self._is_free[place] = 1
            self.count += 1


def _folder_for(size: int) -> str | None:
    """/dev/shm when it has room for `size` bytes twice over, else the temporary folder."""
    try:
        shm = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if shm.f_bavail * shm.f_frsize > 2 * size else None


@dataclass(frozen=True)
class _Setup:
    """What each worker process starts from (pickled to it once, as it starts)."""

    fetch: FetchSettings
    limiter: SharedHostLimiter
    preprocessing: Preprocess
    image_size: int
    max_pixels: int
    slots: PictureSlots
    started: Any  # a Barrier of every process: see _started_pool
    main: int = field(default_factory=os.getpid)  # the main process, made where it runs


@dataclass(frozen=True)
class _Pixels:
    """`prepare`'s encoder in a worker: the model's input size, and its pictures as
    pixels (the model's process normalises them)."""

    image_size: int
    preprocessing: Preprocess

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.preprocessing.pixels(image)


@dataclass
class _Worker:
    fetcher: Fetcher
    pictures: _Pixels
    infos: ServiceInfos
    max_pixels: int
    slots: PictureSlots
    started: Any


_worker: _Worker | None = None  # this process's, once started as a worker


def _start_worker(setup: _Setup) -> None:
    global _worker
    # Ctrl-C reaches the whole process group: the main process handles it (keeping the
    # finished pictures, closing the pool); a worker's traceback would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with(setup.main)
    setup.slots[0]  # mapped now: the pool removes the file's name once all have
    _worker = _Worker(
        Fetcher(setup.fetch, setup.limiter),
        _Pixels(setup.image_size, setup.preprocessing),
        ServiceInfos(),
        setup.max_pixels,
        setup.slots,
        setup.started,
    )
    gc.freeze()  # torch and the rest, for the process's life: see indexer.heap


@dataclass(frozen=True)
class _Work:
    """One item for a worker: what local files it may read, where its picture goes."""

    item: PendingItem
    images: list[str]
    services: list[str]
    place: int | None  # None: no place was free, the picture comes by the pipe


# What a worker sends back of a prepared picture: the Prepared's fields but the item,
# which the main process has (url, size, stage, error, described), then the pixels when
# they did not go to the picture's place, and whether they did.
_Answer = tuple[str, tuple[int, int], str, str, Any, np.ndarray | None, bool]


def _prepare_group(group: list[_Work]) -> list[_Answer]:
    """`prepare` in a worker, for each item of `group`; each picture written to its place
    when it fits there, else sent back with the rest."""
    worker = _worker
    assert worker is not None, "not a worker process of a PicturePool"
    answers: list[_Answer] = []
    for work in group:
        worker.fetcher.allow_local_images(work.images)
        worker.fetcher.allow_local_services(work.services)
        p = prepare(work.item, worker.fetcher, worker.pictures, worker.max_pixels, worker.infos)
        pixels = p.model_input if isinstance(p.model_input, np.ndarray) else None
        fields = (p.url, p.size, p.stage, p.error, p.described)
        if work.place is not None and pixels is not None and pixels.shape == worker.slots.shape:
            worker.slots[work.place][...] = pixels
            answers.append((*fields, None, True))
        else:
            answers.append((*fields, pixels, False))
    return answers


class _Group(Future[list[Prepared]]):
    """The main process's future of a group's pictures: cancelling it cancels the task."""

    def __init__(self, task: Future[list[_Answer]]):
        super().__init__()
        self._task: Future[list[_Answer]] | None = task

    def cancel(self) -> bool:
        if self._task is not None:
            self._task.cancel()
        return super().cancel()

    def handed_over(self) -> None:
        """The task is done: let it go. It holds this future in its callback, and that
        cycle would keep the group's pictures, and their places, until the collector's
        next full pass; meanwhile the places run out and pictures come by the pipe."""
        self._task = None


def _local_names(item: PendingItem, fetcher: Fetcher) -> tuple[list[str], list[str]]:
    service_id = item.service.get("id") if item.service else None
    return fetcher.local_names(item.image_url, service_id if isinstance(service_id, str) else None)


# How long a process waits for the others to start: each imports torch, a few seconds
# (longer on a loaded machine); past it, the pool is an error rather than a hang.
START_TIMEOUT = 300.0


def _started() -> int:
    """This process's id, once every process of the pool has started (mapped the
    pictures' file): waiting here, a process cannot take another's start as well."""
    assert _worker is not None, "not a worker process of a PicturePool"
    _worker.started.wait(START_TIMEOUT)
    return os.getpid()


class PicturePool:
    """N processes that fetch, decode and preprocess images (`submit`), sharing one rule
    for the requests to each host (`limiter`, to be given to the main process's Fetcher).

    Start one per run (`run_index` does, from IndexOptions.processes), or once for many
    runs (a benchmark: IndexOptions.pictures), then `close` it. Its processes are
    started with it (`pids`).
    """

    # Items a process takes at once: each task costs the main process its executor's
    # work (futures, pipes, pickling), which a group shares. On 2 cores the main
    # process's CPU a picture was 188-250 µs with groups of 8, 154-202 with 16, 136-174
    # with 32 (2 picture processes, 6 runs each). 16: a group is fetched one picture
    # after another, so that from a slow server the first batch comes later the larger
    # it is, and the places (3 groups a process) take more memory.
    GROUP = 16

    def __init__(
        self,
        processes: int,
        fetch: FetchSettings,
        preprocessing: Preprocess,
        image_size: int,
        max_pixels: int,
        limiter: SharedHostLimiter | None = None,
    ):
        _check_pool(processes, preprocessing)
        self.processes = processes
        self.limiter = limiter or _limiter_for(fetch)
        # A place for every picture in flight (run_index's window) and in the batch being
        # gathered; a picture that finds none comes by the pipe.
        places = max(512, 3 * processes * self.GROUP)
        self.slots = PictureSlots(places, (image_size, image_size, 3))
        setup = _Setup(
            fetch,
            self.limiter,
            preprocessing,
            image_size,
            max_pixels,
            self.slots,
            _CONTEXT.Barrier(processes),
        )
        try:
            self._pool, self.pids = _started_pool(processes, setup)
            self.slots[0]  # this process's mapping too
        finally:
            # Every process has mapped the file: its name can go, so that nothing is left
            # in /dev/shm (in memory) should this process be killed.
            self.slots.unlink()

    @classmethod
    def for_encoder(
        cls,
        processes: int,
        fetch: FetchSettings,
        encoder: Any,
        max_pixels: int,
        limiter: SharedHostLimiter | None = None,
    ) -> PicturePool:
        preprocessing, size = encoder.preprocessing, encoder.image_size
        return cls(processes, fetch, preprocessing, size, max_pixels, limiter)

    @property
    def processes_started(self) -> int:
        return self.processes

    def submit(self, items: list[PendingItem], fetcher: Fetcher) -> list[OneOf]:
        """Prepare `items` in one worker, a future each; `fetcher` (the main process's)
        says which local files they may read."""
        if not items:
            return []
        group = [_Work(item, *_local_names(item, fetcher), self.slots.take()) for item in items]
        task = self._pool.submit(_prepare_group, group)
        handed = _Group(task)
        task.add_done_callback(partial(self._hand_over, group, handed))
        return [OneOf(handed, n) for n in range(len(group))]

    def _hand_over(self, group: list[_Work], handed: _Group, task: Future[list[_Answer]]) -> None:
        """The worker's answers, each picture read in its place (leased until stacked);
        the places of the rest are freed."""
        leased: set[int | None] = set()
        try:
            if task.cancelled():
                handed.cancel()
            elif (error := task.exception()) is not None:
                handed.set_exception(error)
            else:
                answers = list(zip(group, task.result(), strict=True))
                leased = {work.place for work, (*_, in_place) in answers if in_place}
                handed.set_result([self._prepared(*answer) for answer in answers])
        except InvalidStateError:
            pass  # the main process cancelled it meanwhile: its leases end with it
        finally:
            handed.handed_over()
            for work in group:
                if work.place is not None and work.place not in leased:
                    self.slots.give_back(work.place)

    def _prepared(self, work: _Work, answer: _Answer) -> Prepared:
        url, size, stage, error, described, pixels, in_place = answer
        if in_place and work.place is not None:
            pixels = self.slots.lease(work.place)
        return Prepared(work.item, url, pixels, size, stage, error, described)

    def close(self, wait_for_work: bool = True) -> None:
        """Stop the processes. Without `wait_for_work` (Ctrl-C), queued pictures are
        dropped and the processes stopped at once: each may be in the middle of a group
        of fetches, from a server that may take its time."""
        if wait_for_work:
            self._pool.shutdown(wait=True, cancel_futures=True)
        else:
            _stop_at_once(self._pool)

    def __enter__(self) -> PicturePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(wait_for_work=exc[0] is None)


class PicturePoolOnDemand:
    """A run's own PicturePool, started when its first pictures are asked for: a run
    with nothing new to embed (a collection indexed before, unchanged) starts none of
    its processes, each of which imports torch (a few seconds, a few hundred MB). Its
    `limiter` is made at once, for the main process's Fetcher."""

    GROUP = PicturePool.GROUP

    def __init__(self, processes: int, fetch: FetchSettings, encoder: Any, max_pixels: int):
        _check_pool(processes, encoder.preprocessing)  # now, not once the run is under way
        self.processes = processes
        self.limiter = _limiter_for(fetch)
        self._start = partial(
            PicturePool.for_encoder, processes, fetch, encoder, max_pixels, self.limiter
        )
        self.pool: PicturePool | None = None

    @property
    def processes_started(self) -> int:
        return self.pool.processes if self.pool else 0

    def submit(self, items: list[PendingItem], fetcher: Fetcher) -> list[OneOf]:
        if not items:
            return []
        if self.pool is None:
            self.pool = self._start()
        return self.pool.submit(items, fetcher)

    def close(self, wait_for_work: bool = True) -> None:
        if self.pool is not None:
            self.pool.close(wait_for_work)


# Spawned, not forked: the run's threads (manifest walks, downloads) would be copied
# mid-work by a fork, locks held and all.
_CONTEXT = multiprocessing.get_context("spawn")


def _check_pool(processes: int, preprocessing: Preprocess) -> None:
    if processes < 1:
        raise ValueError(f"a picture pool needs at least one process, not {processes}")
    if not preprocessing.uses_table:
        raise ValueError(
            "this model's preprocessing does not end with ToTensor and Normalize: "
            "its pictures cannot be prepared in other processes (use threads)"
        )


def _limiter_for(fetch: FetchSettings) -> SharedHostLimiter:
    return SharedHostLimiter.made_by(_CONTEXT, fetch.per_host, fetch.max_connections)


def _started_pool(processes: int, setup: _Setup) -> tuple[ProcessPoolExecutor, list[int]]:
    """The executor, its processes started now rather than one by one as pictures are
    asked for (as it does): each imports torch, a second or two, and maps the pictures'
    file; and their ids. A task per process, each held until every process holds one
    (setup.started): the first process to start would otherwise answer them all, and the
    file's name go before the others had mapped it."""
    pool = ProcessPoolExecutor(
        processes, mp_context=_CONTEXT, initializer=_start_worker, initargs=(setup,)
    )
    try:
        pids = [answer.result() for answer in [pool.submit(_started) for _ in range(processes)]]
    except BaseException as error:
        _stop_at_once(pool)  # the others may wait on the barrier for the one that failed
        if isinstance(error, (BrokenProcessPool, threading.BrokenBarrierError)):
            raise IndexerError(
                f"the processes that prepare pictures could not start ({error}): "
                "use --processes 0 to prepare them in threads"
            ) from error
        raise
    return pool, pids


def _stop_at_once(pool: ProcessPoolExecutor) -> None:
    """Python 3.14's terminate_workers; before it, shut down without waiting, then end
    the processes (the executor forgets its list of them as it shuts down)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
