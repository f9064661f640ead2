"""open_clip's image preprocessing, with its last two steps done by a table look-up.

open_clip ends every image transform with ToTensor and Normalize: two passes of torch
operations over the picture. Called from the indexer's download threads, each of them
starts torch's OpenMP workers in that thread (a 3 x 224 x 224 tensor is above torch's
grain size), which then spin beside the model's own threads on the same cores.
Measured on 2 cores, per 224-pixel picture: 0.87 ms of CPU for open_clip's steps, 0.27 ms
for the look-up; in the whole pipeline the model lost about a tenth of its speed to them.

`stack` makes a batch of such tensors with numpy for the same reason: torch.stack copies
each tensor in a parallel region of its own, and on 2 cores with one of them busy elsewhere
each region waited for the scheduler: 256 ms for 32 pictures, against 1.6 ms for np.stack.

The resize and crop steps are open_clip's own (they are PIL operations); only
"uint8 -> (x / 255 - mean) / std" is replaced, by a 256-entry table per channel computed
with the same float32 torch operations: the tensors are bit-for-bit open_clip's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, Normalize, ToTensor

TENSOR_STEPS = ("ToTensor", "MaybeToTensor")


class Preprocess:
    """Callable like open_clip's transform: PIL image -> float32 (3, H, W) tensor."""

    def __init__(self, transform: Callable[[Any], torch.Tensor]) -> None:
        self.transform = transform
        self._picture_steps: list[Callable[[Any], Any]] | None = None
        steps = list(transform.transforms) if isinstance(transform, Compose) else []
        if len(steps) >= 2 and _is_to_tensor(steps[-2]) and isinstance(steps[-1], Normalize):
            self._picture_steps = steps[:-2]
            self._tensor_steps = Compose(steps[-2:])
            self._table = _normalisation_table(steps[-1])

    @property
    def uses_table(self) -> bool:
        return self._picture_steps is not None

    def __call__(self, image: Any) -> torch.Tensor:
        if self._picture_steps is None or not isinstance(image, Image.Image):
            return self.transform(image)
        image = self._picture(image)
        pixels = self._table_input(image)
        if pixels is None:
            return self._tensor_steps(image)  # open_clip's own steps cover any other mode
        out = np.empty((pixels.shape[2], *pixels.shape[:2]), dtype=np.float32)
        for channel, table in enumerate(self._table):
            np.take(table, pixels[:, :, channel], out=out[channel], mode="clip")
        return torch.from_numpy(out)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """The picture the model takes, before its last two steps: uint8 (H, W, 3).

        A quarter of the float tensor's bytes, for a worker process to send the model's
        process (indexer.picture_processes), which makes the tensor on the model's device
        with `normalise`. Raises ValueError where the table does not apply: a transform
        that does not end with it (a PicturePool refuses those), or a picture its steps
        leave in another mode than 8-bit RGB (open_clip's convert to RGB first)."""
        if self._picture_steps is None:
            raise ValueError("this preprocessing does not end with ToTensor and Normalize")
        pixels = self._table_input(self._picture(image))
        if pixels is None:
            raise ValueError(f"a {image.mode} picture is not made of 8-bit channels")
        return pixels

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, H, W, 3) uint8 -> (n, 3, H, W) float32, on the pixels' device: the same
        table look-up as __call__, so the same values bit for bit (a look-up of float32
        values, no arithmetic)."""
        table = torch.from_numpy(self._table).to(pixels.device)
        indices = pixels.permute(3, 0, 1, 2).long()  # (3, n, H, W)
        channels = [table[channel][indices[channel]] for channel in range(len(table))]
        return torch.stack(channels, dim=1)

    def _picture(self, image: Image.Image) -> Image.Image:
        for step in self._picture_steps or ():
            if not _leaves_unchanged(step, image):
                image = step(image)
        return image

    def _table_input(self, image: Image.Image) -> np.ndarray | None:
        pixels = np.asarray(image)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != len(self._table):
            return None
        return pixels


def _leaves_unchanged(step: Any, image: Image.Image) -> bool:
    """Whether `step` would only copy `image`: a crop to its own size, a conversion to its
    own mode. Most pictures the indexer asks for already have both: skipping these copies
    spares 0.04 to 0.09 ms of the 0.5 ms that decoding and preprocessing take a picture."""
    if isinstance(step, CenterCrop):
        height, width = step.size  # torchvision's order
        return image.size == (width, height)
    return type(step).__name__ == "MaybeConvertMode" and image.mode == step.mode


def _is_to_tensor(step: Any) -> bool:
    return isinstance(step, ToTensor) or type(step).__name__ in TENSOR_STEPS


def _normalisation_table(normalize: Normalize) -> np.ndarray:
    """(channels, 256): what ToTensor then Normalize make of each byte value, in float32."""
    mean = torch.as_tensor(normalize.mean, dtype=torch.float32)
    std = torch.as_tensor(normalize.std, dtype=torch.float32)
    values = torch.arange(256, dtype=torch.float32).div(255)
    return ((values[None, :] - mean[:, None]) / std[:, None]).numpy()


def stack_pixels(pictures: Sequence[np.ndarray]) -> np.ndarray:
    """One (n, H, W, 3) batch of uint8 pictures. Where they already lie one after another
    in one buffer (indexer.picture_processes places them so), it is a view of them there,
    not a copy: valid while the pictures are, and not to be written."""
    first = pictures[0]
    start, step = _address(first), first.nbytes
    in_a_row = first.base is not None and all(
        picture.base is first.base
        and picture.shape == first.shape
        and picture.dtype == first.dtype
        and picture.flags.c_contiguous
        and _address(picture) == start + n * step
        for n, picture in enumerate(pictures)
    )
    if not in_a_row:
        return np.stack(pictures)
    shape, strides = (len(pictures), *first.shape), (step, *first.strides)
    # Writeable as the pictures are, for torch.from_numpy, which warns of any other.
    return np.lib.stride_tricks.as_strided(first, shape, strides)


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def stack(tensors: Sequence[torch.Tensor], side: int | None = None) -> torch.Tensor:
    """One (n, 3, H, W) batch; an empty sequence gives (0, 3, side, side)."""
    if not tensors:
        return torch.zeros((0, 3, side or 0, side or 0))
    if any(t.device.type != "cpu" or t.requires_grad for t in tensors):
        return torch.stack(list(tensors))
    return torch.from_numpy(np.stack([t.numpy() for t in tensors]))
