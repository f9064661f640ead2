"""Python's cyclic garbage collector, kept off the objects that outlive a run.

With torch and a model loaded, a process holds about half a million objects that the
collector tracks, and each of its full passes walks them all: 130 to 280 ms on 2 cores.
An index run allocates enough (manifests read, pictures handed on) for a full pass every
2,000 pictures or so: in the no-model pipeline of scripts/bench_embed that was 130 to 150
µs of the main process's CPU a picture, a third of it (docs/benchmarks.md, "Embedding on
a GPU"). The modules, the model and the store live as long as the run: frozen (gc.freeze),
the collector leaves them out of its passes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_skips_what_lives_now() -> Iterator[None]:
    """Within, the collector skips the objects alive on entry; on exit they are its
    again, so that a cycle among them that has died since is still freed, unless something
    else in the process had frozen objects before (a server that forks its workers)."""
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()
