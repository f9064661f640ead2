"""What to tell an operator whose disk would not take the store's writes.

A million images' store is gigabytes, and a full disk is a likely end to a long run. What
SQLite and Python say then ("disk I/O error", "[Errno 28] No space left on device") came
with a traceback and said nothing of what was kept: every transaction that had been
committed is, and the same command resumes (a failed write is rolled back). (The index
file is another matter: a store that cannot hold it is served from memory.)
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

# What an operator of the command line can do about it.
RESUME = (
    "Free some space, or move the store to a larger disk and give --store its new place; "
    "what was written before is kept: run the same command to resume"
)

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_WRITE_FAILED = {errno.EFBIG, errno.EIO, errno.EROFS}


def storage_problem(
    error: BaseException, store: Path | str | None, then: str = RESUME
) -> str | None:
    """The message for an error in writing to the disk, ending with `then` (what to do),
    or None for any other error. `store`: its folder, named with its disk's free space."""
    where = f" in {store} ({_free_space(store)})" if store is not None else ""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return f"the disk is full: the store{where} cannot grow. {then}"
        if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
            return (
                f"the store{where} could not be written ({error}): the disk may be full, "
                f"past a file size limit (ulimit -f), read-only or failing. {then}"
            )
        return None
    if isinstance(error, OSError) and error.errno in _DISK_FULL:
        return f"the disk is full ({error}): the store{where} cannot grow. {then}"
    if isinstance(error, OSError) and error.errno in _WRITE_FAILED:
        return f"a file of the store{where} could not be written ({error}). {then}"
    return None


def _free_space(store: Path | str) -> str:
    try:
        free = shutil.disk_usage(store).free
    except OSError:
        return "its disk's free space unknown"
    return f"{free / 2**20:,.0f} MB free on its disk"
