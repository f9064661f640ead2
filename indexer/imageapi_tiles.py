"""The tiles of a level 0 Image API service, asked for instead of its master file.

A static tree (vips dzsave --layout iiif or iiif3, iiif-tiler) serves only the files
its info.json lists: the sizes, when it lists any, and the tiles. Where no listed size
covers the model's picture, a few small tiles at a large scale factor make it
(`tile_plan`), rather than a master file of hundreds of megapixels: `tiles.py` fetches
and stitches them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .imageapi import ImageService, locate_region, request_url

# The most tiles one picture is made of. At the scale the model needs, a picture is two
# to four tiles of 256 or 512 pixels; one that needs more is asked for as before (the
# whole image), rather than at the cost of dozens of requests.
MAX_TILES = 16


@dataclass(frozen=True)
class Tile:
    """One tile to ask for: its URL, where its top left corner goes in the picture the
    tiles make together (`place`, in that picture's pixels), and its `size` there."""

    url: str
    place: tuple[int, int]
    size: tuple[int, int]


@dataclass(frozen=True)
class TilePlan:
    """The tiles of one scale factor that together show the whole image, or the part of
    it that a region needs: `size` is the picture they make, `shows` the part of the
    whole image it shows, (x, y, w, h) in the whole image's pixels."""

    service_id: str
    scale_factor: int
    tiles: tuple[Tile, ...]
    size: tuple[int, int]
    shows: tuple[int, int, int, int]

    @property
    def label(self) -> str:
        """What the store records as the request that gave the pixels (`fetched_url`):
        the service and the scale factor. Not a tile's URL: one tile is a piece of the
        picture, and the links to a level 0 picture show the one the indexer fetched when
        that is a request to the service (`service.presenters`)."""
        return f"{self.service_id}#scaleFactor={self.scale_factor}"


def tile_plan(
    service: ImageService,
    target: int,
    *,
    region: str | None = None,
    max_tiles: int = MAX_TILES,
) -> TilePlan | None:
    """The tiles to ask a level 0 service for, rather than its master file, for a picture
    that still covers `target` pixels on its shorter side; None when tiles are not the
    way: not level 0, no tiles or no image size stated (its info.json states them), a
    region outside the image, a listed size that covers the target (`image_request_url`
    asks for it), more than `max_tiles` tiles, or the whole image's tiles at full scale
    (the master file is the same pixels in one request).

    The scale factor is the largest at which the image, or the part that `region`
    ("x,y,w,h") keeps, still covers `target` (else the smallest: the largest picture);
    only the tiles over that part are asked for. The URLs are those of the Image API's
    tiles, as static trees name their files (vips dzsave --layout iiif or iiif3) and
    viewers ask for them: region "x,y,w,h" in the whole image's pixels ("full" for a
    tile that is the whole image), clipped at the right and bottom edges; size "w," in
    versions 1 and 2, "w,h" in version 3, each side the region's divided by the scale
    factor, rounded up.
    """
    grid = _tile_grid(service)
    if grid is None:
        return None
    located = locate_region(service, region, None, None)
    shown = (0, 0, grid.width, grid.height) if located is None else located.kept
    if shown is None or _listed_size_covers(service, grid, target, shown):
        return None
    factor = _tile_scale_factor(service.scale_factors, shown, target)
    columns = _tiles_across(shown[0], shown[2], grid.tile_width * factor)
    rows = _tiles_across(shown[1], shown[3], grid.tile_height * factor)
    if len(columns) * len(rows) > max_tiles:
        return None
    first = (columns[0], rows[0])
    tiles = tuple(_tile(service, grid, factor, (n, m), first) for m in rows for n in columns)
    x, y = columns[0] * grid.tile_width * factor, rows[0] * grid.tile_height * factor
    right = min((columns[-1] + 1) * grid.tile_width * factor, grid.width)
    bottom = min((rows[-1] + 1) * grid.tile_height * factor, grid.height)
    if factor == 1 and (x, y, right, bottom) == (0, 0, grid.width, grid.height):
        return None
    last = tiles[-1]
    size = (last.place[0] + last.size[0], last.place[1] + last.size[1])
    return TilePlan(service.id, factor, tiles, size, (x, y, right - x, bottom - y))


@dataclass(frozen=True)
class _Grid:
    """The image's size and its tiles' size, in the whole image's pixels at scale 1."""

    width: int
    height: int
    tile_width: int
    tile_height: int


def _tile_grid(service: ImageService) -> _Grid | None:
    """The tiles of a level 0 service that states them and its size; None for any other."""
    if service.level != 0 or not (service.tile_width and service.scale_factors):
        return None
    if not (service.width and service.height):
        return None
    tile_height = service.tile_height or service.tile_width
    return _Grid(service.width, service.height, service.tile_width, tile_height)


def _listed_size_covers(
    service: ImageService, grid: _Grid, target: int, shown: tuple[int, int, int, int]
) -> bool:
    """Whether a listed size shows the part still covering `target` pixels: one request
    for a picture made to be served, rather than several."""
    part = (shown[2] / grid.width, shown[3] / grid.height)
    return any(min(w * part[0], h * part[1]) >= target for w, h in service.sizes)


def _tile_scale_factor(factors: list[int], shown: tuple[int, int, int, int], target: int) -> int:
    """The largest scale factor at which the part shown still covers `target` pixels on
    its shorter side; else the smallest, the largest picture there is."""
    _, _, w, h = shown
    covering = [f for f in factors if min(math.ceil(w / f), math.ceil(h / f)) >= target]
    return max(covering) if covering else min(factors)


def _tiles_across(start: int, length: int, span: int) -> range:
    """The numbers of the tiles, `span` pixels each, over `length` pixels from `start`."""
    return range(start // span, (start + length - 1) // span + 1)


def _tile(
    service: ImageService,
    grid: _Grid,
    factor: int,
    tile: tuple[int, int],
    first: tuple[int, int],
) -> Tile:
    """Tile (n, m) at `factor`, as the Image API's implementation notes compute it, placed
    in a picture whose top left tile is `first`."""
    (n, m), tile_w, tile_h = tile, grid.tile_width, grid.tile_height
    x, y = n * tile_w * factor, m * tile_h * factor
    w, h = min(tile_w * factor, grid.width - x), min(tile_h * factor, grid.height - y)
    size = (math.ceil(w / factor), math.ceil(h / factor))
    whole = (x, y, w, h) == (0, 0, grid.width, grid.height)
    region = "full" if whole else f"{x},{y},{w},{h}"
    spec = f"{size[0]},{size[1]}" if service.version >= 3 else f"{size[0]},"
    place = ((n - first[0]) * tile_w, (m - first[1]) * tile_h)
    return Tile(request_url(service, spec, region), place, size)


def one_tile_picture(service: ImageService) -> str | None:
    """The URL of the largest picture of the whole image that a static tree serves as
    one tile: a small picture to show where no size is listed, rather than the master
    file. None when the tree stops before the whole image fits one tile (its smallest
    level is several tiles), or lists no tiles."""
    grid = _tile_grid(service)
    if grid is None:
        return None
    fitting = [
        factor
        for factor in service.scale_factors
        if grid.width <= grid.tile_width * factor and grid.height <= grid.tile_height * factor
    ]
    if not fitting:
        return None
    return _tile(service, grid, min(fitting), (0, 0), (0, 0)).url
