"""An encoder that is interrupted as a person would: Ctrl-C while a batch is embedded."""

from __future__ import annotations

import time
from typing import Any

from models import Encoder


class CtrlCOnSecondBatch:
    """The real encoder, with Ctrl-C pressed while it embeds the second batch (tensors in
    threads, pixels from picture processes), once the pictures queued behind it have had
    time to be ready."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)

    def embed_tensors(self, batch: Any) -> Any:
        return self._embed(self.encoder.embed_tensors, batch)

    def embed_pixels(self, pixels: Any) -> Any:
        return self._embed(self.encoder.embed_pixels, pixels)

    def _embed(self, embed: Any, batch: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            time.sleep(1.0)
            raise KeyboardInterrupt
        return embed(batch)
