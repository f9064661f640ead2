"""A picture made of a level 0 service's tiles, rather than its master file.

A static IIIF tree (vips dzsave --layout iiif, iiif-tiler...) serves the whole image at
full size and the tiles its info.json lists, nothing else; where it lists no sizes, a few
small tiles at a large scale factor (`imageapi_tiles.tile_plan`) give the model's picture for a
fraction of a master file that may be hundreds of megapixels. The tiles are fetched one
by one through the run's fetcher (its per-host limits and retries hold), decoded, and
pasted at their place; the picture is then handed on as a decoded one is.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from .fetch import Fetcher, FetchError
from .imageapi_tiles import TilePlan
from .images import Crop, DecodeError, cut, has_transparency, on_white, open_header, reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tiles:
    """The tiles of a plan, fetched: their bytes, in the plan's order."""

    plan: TilePlan
    data: list[bytes]

    def picture(self, max_pixels: int, crop: Crop | None = None) -> Image.Image:
        """The picture the tiles make, cut to `crop` (a box in the whole image) when there
        is one, as `decode_image` cuts it: the part of the image that the item is."""
        picture = stitch(self.plan, self.data, max_pixels)
        return picture if crop is None else cut(picture, crop_in_tiles(crop, self.plan))


def fetch_tiles(plan: TilePlan, fetcher: Fetcher) -> Tiles | None:
    """The tiles of `plan`, fetched one by one; None when one is not there to be had for
    good (a 404 most often: a tree without that tile, or that names it otherwise), and the
    whole image is to be asked for instead, as before tiles were.

    Raises FetchError when the server failed for now (`transient`): the item fails as any
    fetch does, and the next run asks again."""
    data = []
    for tile in plan.tiles:
        try:
            data.append(fetcher.image(tile.url))
        except FetchError as error:
            if error.transient:
                raise
            log.debug("tile %s not had (%s): the whole image is asked for", tile.url, error)
            return None
    return Tiles(plan, data)


def stitch(plan: TilePlan, tiles: Sequence[bytes], max_pixels: int) -> Image.Image:
    """The RGB picture that the tiles of `plan` make, each pasted at its place. Raises
    DecodeError when one is not a picture we can use."""
    picture = Image.new("RGB", plan.size, "white")
    for tile, data in zip(plan.tiles, tiles, strict=True):
        picture.paste(decode_tile(data, tile.size, max_pixels), tile.place)
    return picture


def decode_tile(data: bytes, size: tuple[int, int], max_pixels: int) -> Image.Image:
    """One tile, decoded to RGB at the `size` of its place in the picture.

    A tile is a piece of the image as its info.json measures it: no EXIF orientation is
    applied to it. A server that answers another size (rounding its own way) has its
    tile fitted to the place."""
    try:
        image = open_header(io.BytesIO(data))
        width, height = image.size
    except Exception as error:  # Pillow raises many types on bad data (see decode_image)
        raise DecodeError(reason(error)) from error
    if width * height > max_pixels:
        raise DecodeError(
            f"image of {width}x{height} pixels exceeds the limit of {max_pixels:,} pixels"
        )
    try:
        image.load()
        rgb = on_white(image) if has_transparency(image) else image.convert("RGB")
        return rgb if rgb.size == size else rgb.resize(size)
    except Exception as error:
        raise DecodeError(reason(error)) from error


def crop_in_tiles(crop: Crop, plan: TilePlan) -> Crop:
    """`crop`, a box in the whole image, as a box in the part of it that the tiles show.

    The tiles reach the image's edge wherever the box passes it: clipped to that part,
    the box is clipped as a server clips a region to the image."""
    x, y, w, h = crop.box
    left, top, width, height = plan.shows
    return Crop((x - left, y - top, w, h), (width, height))
