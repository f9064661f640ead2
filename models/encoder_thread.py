"""An Encoder that lives on one thread of its own: built there, and only ever called there.

For a service, whose requests arrive on a pool of threads. Torch runs its operations on
an OpenMP team that belongs to the thread calling it (libgomp), so a model called from
many threads soon has several teams. Once those teams hold more threads than there are
cores, libgomp stops letting idle threads spin between operations and wakes them from
sleep for every one, for the whole process: on 2 cores, one query through SigLIP2's text
tower took 87 to 103 ms (medians of three runs) called from a pool of 4 threads, against
65 to 81 ms when one thread both built and called the model.

faiss uses the same OpenMP runtime (imported after torch, it binds to torch's libgomp),
so index searches count too: a search from a request thread made the next text query 25
to 40 % slower. `run` puts them on the model's thread as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import torch

from models.encoder import Encoder
from models.fingerprint import Fingerprint

T = TypeVar("T")


class EncoderThread:
    """Runs `build()` on a thread of its own, then every embedding call on that thread.

    Callers on any thread wait for their answer; calls are answered one at a time, which
    is how a model on a CPU is fastest anyway (each call already uses every core).
    """

    def __init__(self, build: Callable[[], Encoder], name: str = "regard-model") -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        try:
            self.encoder = self._thread.submit(build).result()
        except BaseException:
            self._thread.shutdown(wait=False)
            raise

    @property
    def fingerprint(self) -> Fingerprint:
        return self.encoder.fingerprint

    def embed_texts(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Encoder.embed_texts, run on the model's thread."""
        return self.run(self.encoder.embed_texts, texts, batch_size)

    def embed_tensors(self, batch: Sequence[torch.Tensor]) -> np.ndarray:
        """Encoder.embed_tensors (pictures already preprocessed), run on the model's thread."""
        return self.run(self.encoder.embed_tensors, batch)

    def run(self, work: Callable[..., T], *args: Any) -> T:
        """Any other work that runs OpenMP (faiss searches), on the model's thread."""
        return self._thread.submit(work, *args).result()

    def close(self) -> None:
        """Let the thread end once the calls already made are answered."""
        self._thread.shutdown(wait=True)
