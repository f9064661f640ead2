"""Decoding fetched bytes: draft mode, corrupt data, decompression bombs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from indexer.images import DecodeError, decode_image


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_large_jpeg_is_decoded_at_reduced_scale_that_still_covers_the_target():
    image = decode_image(jpeg(2048, 1536), min_side=224)
    assert image.mode == "RGB"
    assert min(image.size) >= 224
    assert image.size[0] < 2048  # draft mode scaled it down while decoding


def test_png_and_greyscale_become_rgb():
    buffer = io.BytesIO()
    Image.new("L", (300, 200), 128).save(buffer, "PNG")
    image = decode_image(buffer.getvalue(), min_side=64)
    assert image.mode == "RGB" and image.size == (300, 200)


def test_truncated_jpeg_is_a_clear_error():
    data = jpeg(640, 480)
    with pytest.raises(DecodeError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2], min_side=64)


def test_bytes_that_are_not_an_image_are_a_clear_error():
    with pytest.raises(DecodeError, match="not a readable image"):
        decode_image(b"<html>Not found</html>", min_side=64)


def test_too_many_pixels_is_refused_before_decoding():
    with pytest.raises(DecodeError, match="exceeds the limit"):
        decode_image(jpeg(1200, 1000), min_side=64, max_pixels=1_000_000)
