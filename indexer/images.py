"""Decoding fetched image bytes into RGB pictures of about the size the model needs."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

# Larger images are refused before their pixels are decoded (decompression bombs).
DEFAULT_MAX_PIXELS = 100_000_000


class DecodeError(Exception):
    """The bytes are not a picture we can use; the message is the reason recorded."""


def decode_image(data: bytes, min_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode `data` to RGB, letting JPEG decode at a reduced scale when it is much larger.

    Draft mode asks the JPEG decoder for a 1/2, 1/4 or 1/8 scale that still covers
    `min_side` on the shorter side: far less work than decoding every pixel.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as error:
        raise DecodeError("not a readable image (unknown or corrupt format)") from error
    except Image.DecompressionBombError as error:
        raise DecodeError(f"image refused before decoding: {error}") from error
    width, height = image.size
    if width * height > max_pixels:
        raise DecodeError(
            f"image of {width}x{height} pixels exceeds the limit of {max_pixels:,} pixels"
        )
    if image.format == "JPEG" and min(width, height) > 2 * min_side:
        scale = min_side / min(width, height)
        image.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as error:
        raise DecodeError(f"image data is truncated or corrupt ({error})") from error
    return image if image.mode == "RGB" else image.convert("RGB")  # convert always copies
