"""Reading an IVF index's cells, and its search parameters, through faiss's SWIG API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faiss
import numpy as np


def cell_ids(ivf: faiss.IndexIVF) -> Iterator[tuple[int, np.ndarray]]:
    """Each non-empty cell (inverted list) of `ivf` and the ids it holds, as int64."""
    # Any: faiss's stubs type the lists as optional and know no release_ids.
    lists: Any = ivf.invlists
    for cell in range(ivf.nlist):
        size = lists.list_size(cell)
        if not size:
            continue
        pointer = lists.get_ids(cell)
        ids = faiss.rev_swig_ptr(pointer, size).astype(np.int64)  # a copy: then released
        lists.release_ids(cell, pointer)
        yield cell, ids


def ivf_params(nprobe: int) -> faiss.SearchParametersIVF:
    """Search parameters scanning `nprobe` cells."""
    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    return params
