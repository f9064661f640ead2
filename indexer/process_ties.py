"""A child process's tie to the main process of a run: it ends when the main process does.

For the processes that prepare pictures (indexer.picture_processes) and the one that walks
the manifests (indexer.harvest_process).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time


def end_with(main: int) -> None:
    """End this process when the main process ends, however it ends (kill -9, the OOM
    killer): an orphan would go on fetching for a run nobody waits for, holding its
    memory, then wait for work forever. On Linux the kernel sees to it (PR_SET_PDEATHSIG,
    which watches the thread that started this process: PicturePool starts them all at
    once, from the thread that makes it); elsewhere a thread looks twice a second."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        told = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):  # not Linux
        told = False
    if os.getppid() != main:  # it ended before this process could ask
        os._exit(1)
    if not told:
        threading.Thread(target=_watch_main, args=(main,), daemon=True).start()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _watch_main(main: int) -> None:
    while os.getppid() == main:
        time.sleep(0.5)
    os._exit(1)
