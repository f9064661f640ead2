"""The progress display of `regard index`: manifests read, images done, rate and ETA."""

from __future__ import annotations

import sys

from tqdm import tqdm


class BarProgress:
    """Two bars on stderr: manifests (a counter with its rate) and images (done out of
    queued so far, with rate and ETA; the total grows as manifests arrive)."""

    def __init__(self) -> None:
        common = {"file": sys.stderr, "dynamic_ncols": True, "mininterval": 0.5}
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
