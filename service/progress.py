"""The progress display of `regard index`: manifests read, images done, rate and ETA.

On a terminal, two live bars; in a log (stderr redirected: nohup, systemd, cron), a
plain line now and then, since a bar's cursor movements would litter the file.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between two lines in a log


def progress_for(stream: TextIO | None = None) -> BarProgress | LineProgress:
    """The display for `stream` (default: sys.stderr as it is now, read at the call: a
    default bound at import would keep a stream since replaced, even closed)."""
    stream = stream or sys.stderr
    return BarProgress(stream) if stream.isatty() else LineProgress(stream)


class BarProgress:
    """Two bars: manifests (a counter with its rate) and images (done out of queued so
    far, with rate and ETA; the total grows as manifests arrive)."""

    def __init__(self, stream: TextIO) -> None:
        common = {"file": stream, "dynamic_ncols": True, "mininterval": 0.5}
        self.manifests = tqdm(desc="manifests", unit="mf", position=0, **common)
        self.images = tqdm(desc="images   ", unit="img", total=0, position=1, **common)

    def manifest_read(self) -> None:
        self.manifests.update(1)

    def images_queued(self, count: int) -> None:
        if count:
            self.images.total += count
            self.images.refresh()

    def images_done(self, count: int) -> None:
        self.images.update(count)

    def close(self) -> None:
        self.manifests.close()
        self.images.close()


class LineProgress:
    """A line every `interval` seconds, and one at the end: "progress: 3 manifests,
    1,200 of 5,000 images (41.2/s)"."""

    def __init__(self, stream: TextIO, interval: float = LOG_INTERVAL) -> None:
        self.stream = stream
        self.interval = interval
        self.manifests = self.queued = self.done = 0
        self.started = self.last = time.monotonic()

    def manifest_read(self) -> None:
        self.manifests += 1
        self._maybe_say()

    def images_queued(self, count: int) -> None:
        self.queued += count

    def images_done(self, count: int) -> None:
        self.done += count
        self._maybe_say()

    def close(self) -> None:
        self._say()

    def _maybe_say(self) -> None:
        if time.monotonic() - self.last >= self.interval:
            self._say()

    def _say(self) -> None:
        self.last = time.monotonic()
        rate = self.done / max(self.last - self.started, 1e-9)
        manifests = f"{self.manifests:,} manifest{'' if self.manifests == 1 else 's'}"
        print(
            f"progress: {manifests}, {self.done:,} of {self.queued:,} images ({rate:.1f}/s)",
            file=self.stream,
            flush=True,
        )
