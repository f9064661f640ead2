"""Decoding fetched image bytes into RGB pictures of about the size the model needs."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from .imageapi import clip_box

# Larger images are refused before their pixels are decoded (decompression bombs).
DEFAULT_MAX_PIXELS = 100_000_000

# Our own check against the caller's max_pixels (from the header, before decoding)
# replaces Pillow's: its limit ignores max_pixels, and its warning can only be caught
# through the warnings filters, which are process-wide and race between threads.
# Set beside `open_header`, so that all that opens pictures through it (the decoding
# here, folder headers) gets this rule by importing it.
Image.MAX_IMAGE_PIXELS = None

# EXIF's Orientation tag, and for each value but 1 the turn or flip that shows the stored
# picture upright, as browsers do (and Pillow's ImageOps.exif_transpose).
ORIENTATION = 0x0112
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
QUARTER_TURNS = {UPRIGHT[5], UPRIGHT[6], UPRIGHT[7], UPRIGHT[8]}  # swap width and height


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
    """Decode `data` to RGB as a browser shows it: turned upright by its EXIF orientation,
    letting JPEG decode at a reduced scale when it is much larger.

    Draft mode asks the JPEG decoder for a 1/2, 1/4 or 1/8 scale that still covers
    `min_side` on the shorter side of what is kept: the whole picture, or the part that
    `crop` keeps (cut after decoding and turning, at the decoded scale). Far less work
    than decoding every pixel. Transparent parts are laid on white. Any failure to decode
    is a DecodeError, so one bad picture never stops a run.
    """
    # Pillow's plugins raise many types on bad data (OSError, SyntaxError, ValueError,
    # EOFError, struct.error, IndexError...): any of them means this picture is unusable.
    try:
        image = open_header(io.BytesIO(data))
        width, height = image.size
    except Exception as error:
        raise DecodeError(reason(error)) from error
    if width * height > max_pixels:
        raise DecodeError(
            f"image of {width}x{height} pixels exceeds the limit of {max_pixels:,} pixels"
        )
    turn = upright_turn(image)
    shown = _turned((width, height), turn)
    # A canvas and its regions describe the image as viewers show it, upright: the
    # region is one of the turned picture.
    kept = crop.within(shown) if crop else (0, 0, *shown)
    try:
        # A turn swaps width and height, not the shorter kept side: the draft scale
        # chosen here in the turned frame holds for the stored one.
        kept_side = min(kept[2] - kept[0], kept[3] - kept[1])
        # Cameras write MPO: a JPEG followed by a second, smaller picture; it drafts alike.
        if image.format in ("JPEG", "MPO") and kept_side > 2 * min_side:
            scale = min_side / kept_side
            image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
        image.load()
        picture = image if turn is None else image.transpose(turn)
        picture = picture.crop(_pixels(kept, shown, picture.size)) if crop else picture
        if has_transparency(picture):
            return on_white(picture)
        return picture if picture.mode == "RGB" else picture.convert("RGB")  # convert copies
    except Exception as error:
        raise DecodeError(reason(error)) from error


def open_header(source: Path | IO[bytes]) -> Image.Image:
    """The picture in `source`, opened: its header is read, no pixel decoded. Pillow's
    pixel limit is off here (see MAX_IMAGE_PIXELS above): callers apply their own."""
    return Image.open(source)


def upright_turn(image: Image.Image) -> Image.Transpose | None:
    """The turn or flip that shows an opened picture upright, from its EXIF orientation;
    None when it is shown as stored: no tag, 1, or a tag that cannot be read (a bad EXIF
    block never costs the picture). Reads no pixels: JPEG, WebP and TIFF headers hold it."""
    if image.format == "PNG" and "exif" not in image.info:
        return None  # Pillow's getexif() would decode every pixel looking for a late one
    try:
        value = image.getexif().get(ORIENTATION)
    except Exception:  # Pillow raises many types on a bad EXIF block
        return None
    return UPRIGHT.get(value) if isinstance(value, int) else None


def shown_size(image: Image.Image) -> tuple[int, int]:
    """Width and height of an opened picture as shown, upright (from its header)."""
    return _turned(image.size, upright_turn(image))


def _turned(size: tuple[int, int], turn: Image.Transpose | None) -> tuple[int, int]:
    width, height = size
    return (height, width) if turn in QUARTER_TURNS else (width, height)


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


def cut(picture: Image.Image, crop: Crop) -> Image.Image:
    """The part of a decoded picture of the whole image that `crop` keeps, cut in whole
    pixels as `decode_image` cuts it (never empty). Raises DecodeError when none of it
    lies inside."""
    return picture.crop(_pixels(crop.within(picture.size), picture.size, picture.size))
