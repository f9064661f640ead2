"""Decoding fetched bytes: draft mode, corrupt data, decompression bombs, threads."""

from __future__ import annotations

import io
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from indexer.fetch import Fetcher
from indexer.images import DEFAULT_MAX_PIXELS, REGION_OUTSIDE, Crop, DecodeError, decode_image
from indexer.pipeline import prepare
from indexer.store import PendingItem


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 128).save(buffer, "PNG")
    return buffer.getvalue()


def test_large_jpeg_is_decoded_at_reduced_scale_that_still_covers_the_target():
    image = decode_image(jpeg(2048, 1536), min_side=224)
    assert image.mode == "RGB"
    assert min(image.size) >= 224
    assert image.size[0] < 2048  # draft mode scaled it down while decoding


def test_a_cameras_mpo_picture_is_decoded_at_reduced_scale_too():
    # Many cameras write MPO (a JPEG with a second, smaller picture after it): Pillow
    # names the format MPO, and only a check for "JPEG" left them decoded whole.
    buffer = io.BytesIO()
    first, second = (Image.new("RGB", (2048, 1536), colour) for colour in ("red", "blue"))
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    image = decode_image(buffer.getvalue(), min_side=224)
    assert image.size == (512, 384)  # a 1/4 draft, the smallest that covers 224
    assert image.getpixel((5, 5))[0] > 200  # the first picture, not the second


def test_png_and_greyscale_become_rgb():
    image = decode_image(png(300, 200), min_side=64)
    assert image.mode == "RGB" and image.size == (300, 200)


# -- cutting a region (what a level 0 service cannot crop) ---------------------------------

RED, BLUE = (200, 30, 30), (30, 30, 200)


def halves(width: int, height: int) -> bytes:
    """A JPEG whose left half is red and right half blue."""
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return encoded(image, "JPEG", quality=95)


def near(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(colour, expected, strict=True))


def test_a_region_is_cut_from_a_draft_at_the_draft_scale():
    image = decode_image(halves(2048, 1024), min_side=64, crop=Crop((1024, 0, 1024, 1024)))
    assert image.size == (128, 128)  # from a 1/8 draft (256 x 128), not 1024 x 1024
    assert near(image.getpixel((2, 64)), BLUE) and near(image.getpixel((125, 64)), BLUE)


def test_a_region_of_the_full_image_is_scaled_to_the_picture_served():
    # A listed size of a 4096 x 2048 image: the region is in the full image's pixels.
    listed = halves(512, 256)
    image = decode_image(listed, min_side=224, crop=Crop((0, 0, 2048, 2048), (4096, 2048)))
    assert image.size == (256, 256) and near(image.getpixel((250, 128)), RED)


def test_a_small_region_of_a_large_jpeg_still_covers_the_target():
    # A 1/8 draft of the whole would leave the region 50 pixels wide.
    image = decode_image(halves(4000, 4000), min_side=64, crop=Crop((0, 0, 400, 400)))
    assert 64 <= min(image.size) < 400


def test_a_region_partly_outside_is_clipped_and_one_wholly_outside_refused():
    image = decode_image(halves(200, 100), min_side=32, crop=Crop((100, 50, 500, 500)))
    assert image.size == (100, 50) and near(image.getpixel((50, 25)), BLUE)
    with pytest.raises(DecodeError) as caught:
        decode_image(halves(200, 100), min_side=32, crop=Crop((200, 0, 10, 10)))
    assert str(caught.value) == REGION_OUTSIDE


# -- EXIF orientation: pictures are decoded as a browser shows them ------------------------

WHITE = (255, 255, 255)


def with_orientation(stored: Image.Image, orientation: int | bytes, format: str = "JPEG") -> bytes:
    """`stored` saved as it is, with an EXIF block that gives this orientation (or these
    raw bytes as the block)."""
    exif: Image.Exif | bytes = orientation if isinstance(orientation, bytes) else Image.Exif()
    if isinstance(exif, Image.Exif):
        exif[0x0112] = orientation
    return encoded(stored, format, quality=95, exif=exif)


def red_top_left(width: int, height: int) -> Image.Image:
    """White, with a red block over the top left quarter of each side."""
    image = Image.new("RGB", (width, height), WHITE)
    image.paste(RED, (0, 0, width // 4, height // 4))
    return image


def colour_at(image: Image.Image, corner: str) -> tuple[int, ...]:
    """The colour near one corner of `image` ("top left", "bottom right"...)."""
    vertical, horizontal = corner.split()
    x = image.width // 16 if horizontal == "left" else image.width - 1 - image.width // 16
    y = image.height // 16 if vertical == "top" else image.height - 1 - image.height // 16
    pixel = image.getpixel((x, y))
    assert isinstance(pixel, tuple)
    return pixel


def opposite(corner: str) -> str:
    flip = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}
    return " ".join(flip[word] for word in corner.split())


# Where the stored top left corner is shown, by EXIF's definitions: 3 is turned half a
# turn, 6 a quarter clockwise, 8 a quarter anticlockwise; 2 and 4 mirrored.
@pytest.mark.parametrize(
    ("orientation", "corner", "quarter"),
    [
        (1, "top left", False),
        (2, "top right", False),
        (3, "bottom right", False),
        (4, "bottom left", False),
        (6, "top right", True),
        (8, "bottom left", True),
    ],
)
@pytest.mark.parametrize(
    ("stored", "min_side", "decoded"),
    [((320, 160), 1000, (320, 160)), ((2400, 1200), 100, (300, 150))],  # the second a 1/8 draft
    ids=["full", "draft"],
)
def test_a_picture_is_turned_as_its_exif_orientation_says(
    orientation, corner, quarter, stored, min_side, decoded
):
    image = decode_image(with_orientation(red_top_left(*stored), orientation), min_side)
    width, height = decoded
    assert image.size == ((height, width) if quarter else (width, height))
    assert near(colour_at(image, corner), RED)
    assert near(colour_at(image, opposite(corner)), WHITE)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_shown_as_pillows_exif_transpose_shows_it(orientation):
    data = with_orientation(red_top_left(320, 160), orientation)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    image = decode_image(data, min_side=1000)
    assert image.size == expected.size and image.tobytes() == expected.tobytes()


@pytest.mark.parametrize(("scale", "min_side"), [(1, 1000), (8, 64)], ids=["full", "draft"])
def test_a_region_is_cut_from_the_picture_as_shown(scale, min_side):
    # Stored 400 x 200 with red at its top left, shown turned a quarter clockwise
    # (200 x 400): the red block is at the top right of the shown picture.
    data = with_orientation(red_top_left(400 * scale, 200 * scale), 6)
    # The top half of the shown picture's right half.
    region = Crop((100 * scale, 0, 100 * scale, 200 * scale))
    image = decode_image(data, min_side=min_side, crop=region)
    assert image.size == (100, 200)
    assert near(colour_at(image, "top right"), RED)
    assert near(colour_at(image, "bottom left"), WHITE)


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00not a TIFF header",
        # A well formed block whose orientation is text, not a number.
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x02\x00\x04\x00\x00\x00ab\x00\x00"
        b"\x00\x00\x00\x00",
        9,  # no such orientation
    ],
    ids=["not-tiff", "text", "nine"],
)
@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_a_bad_exif_block_leaves_the_picture_as_stored(exif, format):
    image = decode_image(with_orientation(red_top_left(64, 32), exif, format), min_side=16)
    assert image.size == (64, 32)
    assert near(colour_at(image, "top left"), RED)


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "picture",
    [
        ("RGBA", "PNG", {}),
        ("LA", "PNG", {}),
        ("P", "PNG", {"transparency": 0}),  # a palette with a transparent entry
        ("RGBA", "WEBP", {"lossless": True}),
    ],
    ids=["rgba", "grey-alpha", "palette", "webp"],
)
def test_transparent_parts_are_laid_on_white(picture):
    mode, format, options = picture
    # A dark square on a fully transparent ground whose hidden colour is black.
    drawing = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    drawing.paste((40, 40, 40, 255), (16, 16, 48, 48))
    if mode == "P":  # grey levels as palette entries; entry 0, the ground, transparent
        source = Image.eval(drawing.getchannel("A"), lambda a: 0 if a == 0 else 40).convert("P")
    else:
        source = drawing.convert(mode)
    image = decode_image(encoded(source, format, **options), min_side=32)
    assert image.mode == "RGB"
    assert image.getpixel((2, 2)) == (255, 255, 255)  # the ground: white, not black
    assert max(image.getpixel((32, 32))) < 220  # the drawing itself stays dark


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


# -- truncation, pixel limits and threads -------------------------------------------------


def grey_jpeg(width: int, height: int, scan: bool = True) -> bytes:
    """A valid greyscale JPEG of any size, made without holding its pixels: each 8x8
    block is mid-grey, which baseline coding writes as the same 6 bits ("00" for a DC
    difference of 0, "1010" for the end of the block). `scan=False`: the header only."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "JPEG")
    data = buffer.getvalue()
    sof = data.index(b"\xff\xc0")
    data = data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    if not scan:
        return data[:start]
    bits = -(-width // 8) * -(-height // 8) * 6
    tail = "001010" * (bits % 24 // 6)
    tail += "1" * (-len(tail) % 8)  # padded with 1 bits, as JPEG asks
    tail_bytes = int(tail, 2).to_bytes(len(tail) // 8, "big") if tail else b""
    return data[:start] + b"\x28\xa2\x8a" * (bits // 24) + tail_bytes + b"\xff\xd9"


def test_grey_jpeg_is_a_real_picture():
    image = decode_image(grey_jpeg(100, 60), min_side=64)
    assert image.size == (100, 60) and image.getpixel((50, 30)) == (128, 128, 128)


@pytest.mark.parametrize("keep", [300, 1000, 2000])
def test_a_truncated_jpeg_is_a_decode_error_with_a_short_reason(keep: int):
    with pytest.raises(DecodeError) as caught:
        decode_image(jpeg(640, 480)[:keep], min_side=64)
    reason = str(caught.value)
    # no byte counts, object addresses or paths: identical failures group together
    assert reason == "image data is truncated or corrupt (the data ends early)"


def test_every_kind_of_corrupt_data_is_a_decode_error():
    good, good_png = jpeg(64, 48), png(64, 48)
    samples = [
        b"",
        good[:2],
        good[:30],
        good[: len(good) - 10],
        good[:200] + bytes(range(256)) * 4,
        good_png[:60],
        good_png[:-20],
        b"BM" + bytes(60),  # a BMP header of nonsense
        b"GIF89a" + bytes(20),
    ]
    for data in samples:
        try:
            decode_image(data, min_side=16)
        except DecodeError as error:
            assert len(str(error)) < 120 and "0x" not in str(error)


def test_a_header_over_the_limit_is_refused_naming_size_and_limit_without_decoding():
    # Only the header: decoding its pixels would fail as truncated, not as too large.
    with pytest.raises(DecodeError) as caught:
        decode_image(grey_jpeg(20000, 10000, scan=False), min_side=224)
    assert str(caught.value) == (
        "image of 20000x10000 pixels exceeds the limit of 100,000,000 pixels"
    )


def test_a_limit_above_pillows_own_is_honoured():
    # 200 MP: over twice Pillow's default limit, which it would refuse as a bomb.
    image = decode_image(grey_jpeg(20000, 10000), min_side=224, max_pixels=250_000_000)
    assert image.mode == "RGB" and image.size == (2500, 1250)  # draft mode, 1/8 scale


def test_between_pillows_warning_and_our_limit_decodes_without_a_warning(recwarn):
    image = decode_image(grey_jpeg(12000, 8000), min_side=224)  # 96 MP
    assert image.size == (1500, 1000)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_decoding_in_threads_raises_nothing_but_decode_errors(recwarn):
    normal = jpeg(640, 480)
    samples = {
        "normal": normal,
        "png": png(300, 200),
        "96 MP": grey_jpeg(12000, 8000),
        "200 MP": grey_jpeg(20000, 10000, scan=False),
        "truncated": normal[:300],
        "not an image": b"<html>Not found</html>",
    }
    names = list(samples) * 34  # 204 decodes

    def decode(name: str) -> str:
        try:
            decode_image(samples[name], min_side=224)
        except DecodeError:
            return "refused"
        return "decoded"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(decode, names))  # any other exception is raised here
    expected = {"normal": "decoded", "png": "decoded", "96 MP": "decoded"}
    assert outcomes == [expected.get(name, "refused") for name in names]
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# -- one item's unexpected failure (indexer.pipeline.prepare) -----------------------------


class BrokenModel:
    """A model whose preprocessing fails in a way nobody planned for."""

    image_size = 64

    def __init__(self, error: BaseException):
        self.error = error

    def preprocess(self, image: Image.Image):
        raise self.error

    def embed_tensors(self, batch):
        raise AssertionError("never reached")


def png_file_item(folder: Path) -> PendingItem:
    path = folder / "a.png"
    path.write_bytes(png(80, 60))
    return PendingItem(1, "a", path.as_uri(), None, 80, 60)


def local_fetcher(item: PendingItem) -> Fetcher:
    fetcher = Fetcher()
    fetcher.allow_local_images([item.image_url])
    return fetcher


def test_an_unexpected_error_is_that_items_failure_and_logged_once(tmp_path, caplog):
    item = png_file_item(tmp_path)
    model = BrokenModel(RuntimeError("tensor of the wrong shape"))
    with local_fetcher(item) as fetcher:
        results = [prepare(item, fetcher, model, DEFAULT_MAX_PIXELS) for _ in range(3)]
    reason = "unexpected error: RuntimeError: tensor of the wrong shape"
    assert {(r.stage, r.error, r.model_input) for r in results} == {("decode", reason, None)}
    assert len([record for record in caplog.records if record.exc_info]) == 1


def test_ctrl_c_while_preparing_still_stops_the_run(tmp_path):
    item = png_file_item(tmp_path)
    with local_fetcher(item) as fetcher, pytest.raises(KeyboardInterrupt):
        prepare(item, fetcher, BrokenModel(KeyboardInterrupt()), DEFAULT_MAX_PIXELS)
