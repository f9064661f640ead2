"""Decoding fetched image bytes into RGB pictures of about the size the model needs."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from .imageapi import clip_box

# Larger images are refused before their pixels are decoded (decompression bombs).
DEFAULT_MAX_PIXELS = 100_000_000

# Our own check against the caller's max_pixels (from the header, before decoding)
# replaces Pillow's: its limit ignores max_pixels, and its warning can only be caught
# through the warnings filters, which are process-wide and race between threads.
Image.MAX_IMAGE_PIXELS = None


# Recorded as it is for every such item, so that like failures group.
REGION_OUTSIDE = "the painted region lies outside the image"

Box = tuple[float, float, float, float]  # left, top, right, bottom


class DecodeError(Exception):
    """The bytes are not a picture we can use; the message is the reason recorded."""


@dataclass(frozen=True)
class Crop:
    """The part of the picture to keep: `box` (x, y, w, h) in pixels of the whole image,
    whose size is `full`; None when not known, and then the picture is taken to be the
    whole image at its full size. The picture may be any size of the whole image (a
    listed size, a capped "max", a JPEG draft): the box is scaled to it."""

    box: tuple[int, int, int, int]
    full: tuple[int, int] | None = None

    def within(self, size: tuple[int, int]) -> Box:
        """The box in a picture of the whole image at `size`, clipped to the image as a
        server clips a region. Raises DecodeError when none of it lies inside."""
        full = self.full or size
        clipped = clip_box(self.box, *full)
        if clipped is None:
            raise DecodeError(REGION_OUTSIDE)
        x, y, w, h = clipped
        sx, sy = size[0] / full[0], size[1] / full[1]
        return x * sx, y * sy, (x + w) * sx, (y + h) * sy


def decode_image(
    data: bytes, min_side: int, max_pixels: int = DEFAULT_MAX_PIXELS, crop: Crop | None = None
) -> Image.Image:
    """Decode `data` to RGB, letting JPEG decode at a reduced scale when it is much larger.

    Draft mode asks the JPEG decoder for a 1/2, 1/4 or 1/8 scale that still covers
    `min_side` on the shorter side of what is kept: the whole picture, or the part that
    `crop` keeps (cut after decoding, at the decoded scale). Far less work than decoding
    every pixel. Transparent parts are laid on white. Any failure to decode is a
    DecodeError, so one bad picture never stops a run.
    """
    # Pillow's plugins raise many types on bad data (OSError, SyntaxError, ValueError,
    # EOFError, struct.error, IndexError...): any of them means this picture is unusable.
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        width, height = image.size
    except Exception as error:
        raise DecodeError(reason(error)) from error
    if width * height > max_pixels:
        raise DecodeError(
            f"image of {width}x{height} pixels exceeds the limit of {max_pixels:,} pixels"
        )
    kept = crop.within(image.size) if crop else (0, 0, width, height)
    try:
        kept_side = min(kept[2] - kept[0], kept[3] - kept[1])
        if image.format == "JPEG" and kept_side > 2 * min_side:
            scale = min_side / kept_side
            image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
        image.load()
        picture = image.crop(_pixels(kept, (width, height), image.size)) if crop else image
        if has_transparency(picture):
            return on_white(picture)
        return picture if picture.mode == "RGB" else picture.convert("RGB")  # convert copies
    except Exception as error:
        raise DecodeError(reason(error)) from error


def _pixels(box: Box, size: tuple[int, int], decoded: tuple[int, int]) -> tuple[int, int, int, int]:
    """`box`, in a picture of `size`, in whole pixels of the picture as decoded (a JPEG
    draft is smaller); never empty."""
    sx, sy = decoded[0] / size[0], decoded[1] / size[1]
    left, top = min(round(box[0] * sx), decoded[0] - 1), min(round(box[1] * sy), decoded[1] - 1)
    right, bottom = round(box[2] * sx), round(box[3] * sy)
    return left, top, max(right, left + 1), max(bottom, top + 1)


def has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def on_white(image: Image.Image) -> Image.Image:
    """The picture as a page shows it, transparent parts white. convert("RGB") alone
    keeps whatever colour lies under them, most often black: a drawing cut out on a
    transparent ground would be embedded as a drawing on black."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def reason(error: Exception) -> str:
    """A short reason, without byte counts or object addresses, so like failures group."""
    if isinstance(error, UnidentifiedImageError):
        return "not a readable image (unknown or corrupt format)"
    message = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, EOFError) or "truncated" in message.lower():
        detail = "the data ends early"
    else:
        # Drop "(123 bytes not processed)" and "<_io.BytesIO object at 0x...>" parts.
        detail = re.sub(r"\s*(\(.*?\)|<.*?>)", "", message).strip()[:80]
    return f"image data is truncated or corrupt ({detail or type(error).__name__})"
