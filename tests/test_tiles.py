"""A picture made of a level 0 service's tiles: fetched, stitched, cut, and the whole
image asked for instead when a tile is missing (see tests/test_image_requests.py for the
same through a real harvest)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from indexer.fetch import FetchError
from indexer.imageapi import ImageService
from indexer.imageapi_tiles import tile_plan
from indexer.images import DEFAULT_MAX_PIXELS, Crop
from indexer.pipeline import prepare
from indexer.store import PendingItem
from indexer.tiles import crop_in_tiles, fetch_tiles

# A 2000 x 1000 image whose left half is red and right half blue, in tiles of 256 at 1,
# 2 and 4: at 4 it is 500 x 250, two tiles (the second 244 pixels wide).
RED, BLUE = (220, 20, 20), (20, 20, 220)
SERVICE = ImageService(
    id="https://tiles.example/iiif/a",
    version=2,
    level=0,
    width=2000,
    height=1000,
    scale_factors=[1, 2, 4],
    tile_width=256,
    tile_height=256,
)
WHOLE = f"{SERVICE.id}/full/full/0/default.jpg"


def halves(width: int, height: int) -> Image.Image:
    picture = Image.new("RGB", (width, height), RED)
    picture.paste(BLUE, (width // 2, 0, width, height))
    return picture


def jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


class TreeFetcher:
    """Serves the tiles of SERVICE's plans (cut from the image at each tile's scale) and
    its whole image; `failing` maps a URL to the FetchError it raises."""

    def __init__(self, failing: dict[str, FetchError] | None = None, odd_size: bool = False):
        self.failing = failing or {}
        self.odd_size = odd_size
        self.asked: list[str] = []

    def service_refusal(self, service_id: str) -> str:
        return "not read in these tests: the manifest's word stands"

    def image(self, url: str) -> bytes:
        self.asked.append(url)
        if url in self.failing:
            raise self.failing[url]
        if url == WHOLE:
            return jpeg(halves(2000, 1000))
        region, size = url[len(SERVICE.id) + 1 :].split("/")[:2]
        x, y, w, h = (int(v) for v in region.split(","))
        width = int(size.rstrip(","))
        height = round(h * width / w) + (1 if self.odd_size else 0)  # a server's own rounding
        return jpeg(halves(2000, 1000).crop((x, y, x + w, y + h)).resize((width, height)))


class Taker:
    """An encoder that keeps the picture it is given."""

    image_size = 64

    def __init__(self) -> None:
        self.pictures: list[Image.Image] = []

    def preprocess(self, image: Image.Image) -> Image.Image:
        self.pictures.append(image)
        return image


def item(region: str | None = None) -> PendingItem:
    return PendingItem(1, "item-1", None, SERVICE.to_dict(), 2000, 1000, region)


def test_the_picture_is_made_of_the_tiles_and_recorded_as_the_service_at_its_scale():
    fetcher, encoder = TreeFetcher(), Taker()
    prepared = prepare(item(), fetcher, encoder, DEFAULT_MAX_PIXELS)
    assert not prepared.error
    assert fetcher.asked == [
        f"{SERVICE.id}/0,0,1024,1000/256,/0/default.jpg",
        f"{SERVICE.id}/1024,0,976,1000/244,/0/default.jpg",
    ]
    assert (prepared.url, prepared.size) == (f"{SERVICE.id}#scaleFactor=4", (500, 250))
    [picture] = encoder.pictures
    assert picture.getpixel((200, 125))[0] > 180 and picture.getpixel((300, 125))[2] > 180


def test_a_region_is_cut_from_the_tiles_over_it():
    fetcher, encoder = TreeFetcher(), Taker()
    # 400 x 400 around the middle: at 4 it is 100 x 100, in both tiles.
    prepared = prepare(item("800,300,400,400"), fetcher, encoder, DEFAULT_MAX_PIXELS)
    assert not prepared.error and prepared.size == (100, 100)
    [picture] = encoder.pictures
    assert picture.getpixel((40, 50))[0] > 180 and picture.getpixel((60, 50))[2] > 180


def test_a_tile_of_another_size_is_fitted_to_its_place():
    fetcher, encoder = TreeFetcher(odd_size=True), Taker()
    prepared = prepare(item(), fetcher, encoder, DEFAULT_MAX_PIXELS)
    assert not prepared.error and encoder.pictures[0].size == (500, 250)


def test_a_missing_tile_makes_the_whole_image_asked_for():
    second = f"{SERVICE.id}/1024,0,976,1000/244,/0/default.jpg"
    fetcher, encoder = TreeFetcher({second: FetchError("HTTP 404 Not Found")}), Taker()
    prepared = prepare(item(), fetcher, encoder, DEFAULT_MAX_PIXELS)
    assert not prepared.error and fetcher.asked[-2:] == [second, WHOLE]
    assert prepared.url == WHOLE  # the request that gave the pixels


def test_a_tile_the_server_failed_for_now_fails_the_item():
    first = f"{SERVICE.id}/0,0,1024,1000/256,/0/default.jpg"
    failing = {first: FetchError("HTTP 503 Service Unavailable", transient=True)}
    fetcher = TreeFetcher(failing)
    prepared = prepare(item(), fetcher, Taker(), DEFAULT_MAX_PIXELS)
    assert (prepared.stage, prepared.error) == ("fetch", "HTTP 503 Service Unavailable")
    assert prepared.url == f"{SERVICE.id}#scaleFactor=4" and fetcher.asked == [first]


def test_a_tile_that_is_not_a_picture_is_a_decode_failure():
    class Corrupt(TreeFetcher):
        def image(self, url: str) -> bytes:
            return super().image(url)[:2] + b"not a jpeg at all" * 10

    prepared = prepare(item(), Corrupt(), Taker(), DEFAULT_MAX_PIXELS)
    assert (prepared.stage, prepared.error) == (
        "decode",
        "not a readable image (unknown or corrupt format)",
    )


def test_a_tile_beyond_the_pixel_limit_is_refused():
    prepared = prepare(item(), TreeFetcher(), Taker(), max_pixels=1000)
    assert prepared.stage == "decode" and "exceeds the limit of 1,000 pixels" in prepared.error


def test_fetch_tiles_asks_for_each_in_order():
    plan = tile_plan(SERVICE, 64)
    fetched = fetch_tiles(plan, TreeFetcher())
    assert fetched is not None and len(fetched.data) == 2 and fetched.plan is plan


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((800, 300, 400, 400), (800, 300, 400, 400)),  # the tiles begin at the image's corner
        ((1100, 100, 2000, 2000), (76, 100, 2000, 2000)),  # past the edge: clipped there
    ],
)
def test_a_crop_is_moved_into_the_part_the_tiles_show(box, expected):
    plan = tile_plan(SERVICE, 64, region=",".join(map(str, box)))
    moved = crop_in_tiles(Crop(box, (2000, 1000)), plan)
    assert moved.box == expected and moved.full == plan.shows[2:]
