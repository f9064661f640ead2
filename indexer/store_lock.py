"""One `regard index` at a time on a store: a second run beside it would download and
embed the same images again, neither knowing of the other's work in hand.

An advisory lock (flock) on a file in the store folder: the system releases it when
the process ends, however it ends, so a killed run never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .store import StoreError

LOCK_FILE = "index.lock"


class StoreBusyError(StoreError):
    pass


@contextmanager
def indexing_lock(folder: Path) -> Iterator[None]:
    """Hold the store's indexing lock, or raise StoreBusyError naming the holder."""
    with open(folder / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StoreBusyError(
                f"another `regard index` (process {holder}) is indexing {folder}: "
                "wait for it to finish, or stop it and run this one again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
