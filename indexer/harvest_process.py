"""A run's IIIF sources walked and saved in a process of their own, beside picture processes.

Where pictures are prepared in processes (a GPU: indexer.picture_processes), the main
process's one interpreter lock bounds the pipeline, and the harvest took most of it
for a collection published as a manifest per object: on 2 cores, about 850 µs a manifest
to fetch and read it (httpx, JSON) and 300 µs to save it, against 300 to 400 µs a
picture for all the rest (docs/benchmarks.md, "Embedding on a GPU"). Here a child
process walks the URL sources and saves each manifest (Harvest.walked), then records
which manifests each source led to (Harvest.finish), and tells the main process the
ids of the manifests it saved, those saved together at once; the main process reads
their pending items from the store.
Folders are still read by the main process.

The child is forked, not spawned: it starts at once, without importing the main
module again (a benchmark's imports torch), and inherits the semaphores that keep
--per-host across every process. It uses none of what it inherits but memory: its own
store connection and fetcher; it never touches torch or the GPU; and it leaves by
os._exit, closing none of the parent's connections. Python 3.12 warns of a fork beside
threads (torch's and the picture pool's, none of them inside the code the child runs):
that warning is silenced for this fork alone. On Linux only (FORK_IS_SAFE): elsewhere,
macOS's frameworks among them, a fork is not safe, and the main process reads the
manifests as before.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from .errors import IndexerError
from .fetch import Fetcher, FetchSettings, HostLimiter
from .harvest import Harvest, HarvestReport, Saved
from .pipeline import NoProgress
from .process_ties import end_with
from .store import Store

FORK_IS_SAFE = sys.platform == "linux"

# At most this many saved manifests are handed on at once.
GROUP = 256


@dataclass
class HarvestProcess:
    """Walks a run's URL sources in a child process (Harvest's `elsewhere`)."""

    store: Path
    fetch: FetchSettings
    limiter: HostLimiter | None
    run_id: int
    manifest_workers: int

    def walked(self, urls: Sequence[str], into: HarvestReport) -> Iterator[list[Saved]]:
        """The manifests the child saved since the last yield, in order (at once what has
        come by then, up to GROUP: the main process queues them in one query); what it
        found is counted `into` the run's report as it goes."""
        if not urls:
            return
        context = multiprocessing.get_context("fork")
        receiving, sending = context.Pipe(duplex=False)
        child = context.Process(
            target=_walk_and_tell,
            args=(sending, self, list(urls), os.getpid()),
            name="regard-harvest",
            daemon=True,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", "This process .* is multi-threaded", DeprecationWarning
            )
            child.start()
        sending.close()  # the child's end: EOF here once it has ended
        ended = False
        saved: list[Saved] = []
        try:
            while (message := _next(receiving, child)) is not None:
                kind, *rest = message
                if kind == "saved":
                    group, found = rest
                    into.add(found)
                    saved += group
                elif kind == "done":
                    into.add(rest[0])
                    ended = True
                else:  # "failed"
                    raise IndexerError(
                        "the process that reads the manifests stopped on an error; what "
                        f"was saved is kept, run the same command to resume:\n{rest[0]}"
                    )
                while len(saved) >= GROUP:
                    yield saved[:GROUP]
                    saved = saved[GROUP:]
                if saved and not receiving.poll():
                    yield saved
                    saved = []
            if saved:  # read with the child's last words
                yield saved
        finally:
            if child.is_alive():  # the run stops early (Ctrl-C, an error): so does the walk
                child.terminate()
            child.join()
            receiving.close()
        if not ended:
            raise IndexerError(
                "the process that reads the manifests stopped unexpectedly (out of "
                "memory?); what was saved is kept: run the same command to resume"
            )


def _next(receiving: Connection, child: Any) -> tuple[Any, ...] | None:
    """The child's next message; None once it has ended and said all it had to say."""
    while True:
        if receiving.poll():
            try:
                return receiving.recv()
            except EOFError:
                return None
        wait([receiving, child.sentinel])
        if not child.is_alive() and not receiving.poll():
            return None


def _walk_and_tell(sending: Connection, walk: HarvestProcess, urls: list[str], main: int) -> None:
    # Ctrl-C reaches the whole process group: the main process stops this one, by
    # SIGTERM, which ends it at once (the CLI's handler, inherited, would raise instead).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    end_with(main)
    code = 0
    try:
        store = Store.open(walk.store)
        with Fetcher(walk.fetch, walk.limiter) as fetcher:
            harvest = Harvest(store, fetcher, walk.run_id, NoProgress(), walk.manifest_workers)
            told = HarvestReport()  # what the main process has been told of so far
            for group in harvest.walked(urls):
                found = harvest.report.since(told)
                sending.send(("saved", group, found))
                told.add(found)
            harvest.finish()  # the walk was whole: what left its source can go
        sending.send(("done", harvest.report.since(told)))
    except BaseException:
        sending.send(("failed", traceback.format_exc()))
        code = 1
    finally:
        sending.close()
    os._exit(code)  # nothing of the parent's is closed or flushed here
