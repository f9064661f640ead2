"""Embedded batches written to the store in a thread of their own.

On a GPU the main process bounds the pipeline (indexer.picture_processes), and writing a
batch's vectors took about 40 % of its main thread's time: SQLite's own work, which lets
go of the interpreter lock, and waits for the harvest process's writes. In a thread, the
main process hands the next batch to the model meanwhile. A few batches may wait
(AHEAD); past that, handing one over waits, so that a slow disk holds the run back
rather than filling memory.

Every batch handed over is written before `close` returns, on Ctrl-C too: no finished
download is lost. The first error in writing is raised in the main process, by the next
`write` or by `close`; the batches written before it stay written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from types import TracebackType

from .store import EmbeddedImage, Store

AHEAD = 2  # batches handed over and not yet written, at most


class VectorWriter:
    def __init__(self, store: Store, fingerprint_key: str):
        self._store = store
        self._fingerprint_key = fingerprint_key
        self._batches: queue.Queue[Sequence[EmbeddedImage] | None] = queue.Queue(AHEAD)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_all, name="regard-vectors")
        self._thread.start()

    def write(self, embedded: Sequence[EmbeddedImage]) -> None:
        """Hand a batch over (waiting while AHEAD batches are still to be written)."""
        self._raise_failure()
        self._batches.put(embedded)

    def close(self) -> None:
        """Wait until every batch handed over is written; raise the first error."""
        self._batches.put(None)
        self._thread.join()
        self._raise_failure()

    def __enter__(self) -> VectorWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        try:  # what was handed over is still written; the error in flight is the one told
            self.close()
        except Exception:
            pass

    def _raise_failure(self) -> None:
        error, self._error = self._error, None  # told once
        if error is not None:
            raise error

    def _write_all(self) -> None:
        try:
            failed = False
            while (batch := self._batches.get()) is not None:
                if not failed:  # after an error, the rest is only taken off the queue
                    try:
                        self._store.save_vectors(batch, self._fingerprint_key)
                    except BaseException as error:
                        self._error, failed = error, True
        finally:
            self._store.close()  # this thread's connection
