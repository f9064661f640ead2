"""The picture a search asks with: an uploaded file, or a part of an indexed item.

An upload is decoded as the indexer decodes a harvested image (`decode_image`: turned
upright by its EXIF orientation, a JPEG drafted to the model's scale, the pixel limit
checked before any decoding). A part of an item is fetched as the indexer fetched the item
(`pipeline.prepare`): from its Image API service, which cuts the part where it crops, else
from the picture cut once decoded (a level 0 service, a plain image URL), or from its
local file. Either way the query's vector is made as the stored ones were.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, replace

import torch
from PIL import Image

from .fetch import Fetcher, FetchError
from .folders import may_read_file
from .imageapi import ImageService, clip_box, image_size, region_box, with_info
from .images import decode_image, open_header, shown_size
from .pipeline import ImageEncoder, prepare, read_info
from .store import ItemRecord, PendingItem

# An upload is a photograph or a scan of a page: a few megapixels. Larger ones are
# refused before decoding, as a decompression bomb would be (a PNG is never drafted).
UPLOAD_MAX_PIXELS = 50_000_000

_NUMBER = r"\s*(\d+(?:\.\d+)?)\s*"
_PART = re.compile(rf"(pct:)?{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}", re.IGNORECASE)


class PartError(ValueError):
    """A part that names no part of the item; the message says what to send."""


class PictureUnavailable(Exception):
    """The item's picture could not be had; the message says why (the image server's
    answer, a file that cannot be read)."""


def picture_of_upload(data: bytes, min_side: int) -> tuple[Image.Image, tuple[int, int]]:
    """The uploaded picture, upright, at least `min_side` on its shorter side where it is
    that large, and its full size as shown. Raises DecodeError when the bytes are no
    picture Pillow reads."""
    picture = decode_image(data, min_side, UPLOAD_MAX_PIXELS)
    return picture, shown_size(open_header(io.BytesIO(data)))


@dataclass(frozen=True)
class Part:
    """A part of what an item shows, as fractions of its width and height, within it."""

    x: float
    y: float
    w: float
    h: float

    @property
    def label(self) -> str:
        """As IIIF writes a region in percent: "pct:x,y,w,h"."""
        values = (self.x, self.y, self.w, self.h)
        return "pct:" + ",".join(f"{100 * v:.2f}".rstrip("0").rstrip(".") for v in values)


def parse_part(text: str, shown: tuple[int, int] | None) -> Part:
    """`text` as IIIF's Image API writes a region: "pct:x,y,w,h" in percent of what the
    item shows, or "x,y,w,h" in its pixels (`shown`: its width and height, None when
    unknown). What lies beyond the item is left out, as an image server clips a region.
    Raises PartError."""
    found = _PART.fullmatch(text.strip())
    if found is None:
        raise PartError(
            f"the region {text!r} is not x,y,w,h: give pct:x,y,w,h in percent of the item "
            "(pct:25,25,50,50 is its middle) or x,y,w,h in its pixels"
        )
    in_percent = found.group(1) is not None
    x, y, w, h = (float(found.group(i)) for i in range(2, 6))
    if in_percent:
        width = height = 100.0
    elif shown is None:
        raise PartError(
            "this item's size is unknown, so a region in pixels cannot be placed in it: "
            "give it in percent, as pct:x,y,w,h"
        )
    else:
        width, height = float(shown[0]), float(shown[1])
    if w <= 0 or h <= 0:
        raise PartError(f"the region {text!r} is empty: its width and height must be above 0")
    if x >= width or y >= height:
        where = "100" if in_percent else f"{shown[0]}x{shown[1]} pixels" if shown else ""
        raise PartError(f"the region {text!r} starts outside the item ({where})")
    w, h = min(w, width - x), min(h, height - y)
    return Part(x / width, y / height, w / width, h / height)


def shown_box(item: ItemRecord) -> tuple[int, int, int, int] | None:
    """Where what the item shows lies in its image, in the pixels its requests use: its
    region, clipped to the image, else the whole image; None when the size is unknown.
    The image's size is its service's own where it states one (see `image_size`)."""
    service = ImageService.from_dict(item.best_service) if item.best_service else None
    whole = image_size(service, item.width, item.height)
    box = region_box(item.region)
    if box is not None:
        return clip_box(box, *whole) if whole else box
    return (0, 0, *whole) if whole else None


def with_size(item: ItemRecord, fetcher: Fetcher) -> ItemRecord:
    """The item, with its image's size from its service's info.json when neither its
    manifest nor the indexer said it (a level 1 or 2 service is asked for sizes without
    it): a part of it can then be placed. Raises PictureUnavailable when the image server
    failed for now."""
    if shown_box(item) is not None or not item.best_service:
        return item
    service = ImageService.from_dict(item.best_service)
    try:
        info = read_info(service.id, fetcher)
    except FetchError as error:
        raise PictureUnavailable(f"{error} ({service.id}/info.json)") from error
    if info is None:
        return item
    return replace(item, described_service=with_info(service, info).to_dict())


def item_size(item: ItemRecord) -> tuple[int, int] | None:
    """The width and height of what the item shows, in pixels; None when unknown."""
    box = shown_box(item)
    return None if box is None else (box[2], box[3])


def part_in_image(item: ItemRecord, part: Part) -> str:
    """The "x,y,w,h" region of the item's image that `part` of the item is. Raises
    PartError when the item's size is unknown, or the part is under a pixel."""
    box = shown_box(item)
    if box is None:
        raise PartError(
            "this item's size is unknown (neither its manifest nor its image server gives "
            "it), so no part of it can be placed: search with the whole item"
        )
    left, top, width, height = box
    x, y = left + round(part.x * width), top + round(part.y * height)
    w, h = round(part.w * width), round(part.h * height)
    if w < 1 or h < 1:
        raise PartError(f"the region is under a pixel of this {width}x{height} item: enlarge it")
    return f"{x},{y},{w},{h}"


def part_tensor(
    item: ItemRecord, part: Part, fetcher: Fetcher, encoder: ImageEncoder, max_pixels: int
) -> torch.Tensor:
    """The model's input for `part` of `item`, fetched and cut as the indexer would.
    Raises PartError, or PictureUnavailable with the reason the fetch failed."""
    if may_read_file(item):
        fetcher.allow_local_images([item.image_url or ""])
    pending = PendingItem(
        item.key,
        item.id,
        item.image_url,
        item.best_service,
        item.width,
        item.height,
        region=part_in_image(item, part),
    )
    prepared = prepare(pending, fetcher, encoder, max_pixels)
    if prepared.model_input is None:
        raise PictureUnavailable(f"{prepared.error} ({prepared.stage} of {prepared.url})")
    assert isinstance(prepared.model_input, torch.Tensor)  # the encoder's own preprocessing
    return prepared.model_input
