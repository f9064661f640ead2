"""Pictures for the test IIIF server: Image API request parsing and deterministic pixels.

Every served image is a `Picture`: a drawing defined over the whole image in relative
coordinates, so that any region at any size is the same picture, cropped and scaled.
`PatternPicture` draws a few coloured shapes seeded by a hash of the image's identity
(different images differ, the same image is the same at any size); `ShapePicture` draws a
`models.shapes` picture, the generated collection whose right answers are known;
`BitmapPicture` cuts and scales a picture a test made (a sheet of several drawings:
`sheet_of_drawings`).
A `ServedImage` is a picture with its Image API facts: it writes its info.json and
answers ``{region}/{size}/{rotation}/{quality}.{format}`` requests (`parse_request`); a
level 0 service that lists tiles answers as a static tree (vips dzsave --layout iiif):
its tile files (`tile_files`), the whole image and its listed sizes, and 404 for all else.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from PIL import Image, ImageDraw, ImageOps

from models.shapes import ShapeSpec, render

FORMATS = {
    "jpg": ("JPEG", "image/jpeg"),
    "jpeg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "webp": ("WEBP", "image/webp"),
    "gif": ("GIF", "image/gif"),
    "tif": ("TIFF", "image/tiff"),
    "tiff": ("TIFF", "image/tiff"),
}
# Explicit sizes above this are refused: a test server must not be made to allocate GBs.
MAX_REQUEST_PIXELS = 25_000_000


class RequestError(ValueError):
    """An Image API request the server refuses (400), with the reason."""


class NotServed(RequestError):
    """A request for a file that a static tree does not hold (404), with the reason."""


Box = tuple[float, float, float, float]  # x, y, w, h in full-image pixels


class Picture(Protocol):
    def draw(self, full: tuple[int, int], box: Box, out: tuple[int, int]) -> Image.Image:
        """The `box` region of the full image, scaled to exactly `out` pixels."""
        ...


@dataclass(frozen=True)
class PatternPicture:
    """A background and a few ellipses and rectangles, seeded by the image's identity."""

    identity: str

    def draw(self, full: tuple[int, int], box: Box, out: tuple[int, int]) -> Image.Image:
        rng = random.Random(hashlib.sha1(self.identity.encode("utf-8")).digest())
        background = tuple(rng.randint(40, 230) for _ in range(3))
        image = Image.new("RGB", out, background)
        pen = ImageDraw.Draw(image)
        (full_w, full_h), (bx, by, bw, bh) = full, box
        sx, sy = out[0] / bw, out[1] / bh

        def to_out(rx: float, ry: float) -> tuple[float, float]:
            return (rx * full_w - bx) * sx, (ry * full_h - by) * sy

        for _ in range(rng.randint(5, 9)):
            x0, x1 = sorted((rng.random(), rng.random()))
            y0, y1 = sorted((rng.random(), rng.random()))
            colour = tuple(rng.randint(0, 255) for _ in range(3))
            corners = [*to_out(x0, y0), *to_out(x1, y1)]
            if rng.random() < 0.5:
                pen.ellipse(corners, fill=colour)
            else:
                pen.rectangle(corners, fill=colour)
        return image


@dataclass(frozen=True)
class ShapePicture:
    """A `models.shapes` picture: drawn at the requested size when the whole image is
    asked for; a region is cut from a drawing at the needed scale (at most 4096 px)."""

    spec: ShapeSpec

    def draw(self, full: tuple[int, int], box: Box, out: tuple[int, int]) -> Image.Image:
        (full_w, full_h), (bx, by, bw, bh) = full, box
        if (bx, by, bw, bh) == (0, 0, full_w, full_h):
            return render(self.spec, out)
        scale = min(max(out[0] / bw, out[1] / bh), 4096 / max(full_w, full_h))
        whole = render(self.spec, (max(1, round(full_w * scale)), max(1, round(full_h * scale))))
        left, top = round(bx * scale), round(by * scale)
        right, bottom = round((bx + bw) * scale), round((by + bh) * scale)
        return whole.crop((left, top, right, bottom)).resize(out)


@dataclass(frozen=True, eq=False)
class BitmapPicture:
    """A picture made by a test, taken as the whole image whatever size that is said to
    be: any region of it, resampled to the size asked."""

    image: Image.Image

    def draw(self, full: tuple[int, int], box: Box, out: tuple[int, int]) -> Image.Image:
        (full_w, full_h), (bx, by, bw, bh) = full, box
        sx, sy = self.image.width / full_w, self.image.height / full_h
        return self.image.resize(out, box=(bx * sx, by * sy, (bx + bw) * sx, (by + bh) * sy))


# The drawings of `sheet_of_drawings`, left to right and top to bottom.
SHEET_DRAWINGS = [("circle", "red"), ("square", "blue"), ("triangle", "green"), ("star", "yellow")]


def sheet_of_drawings(cell: int) -> Image.Image:
    """A sheet of four drawings in two rows of `cell` x `cell` pixels, as the archive's
    sheets of lamps and chairs: a curator's result is often one drawing on it."""
    picture = Image.new("RGB", (2 * cell, 2 * cell))
    for n, (shape, colour) in enumerate(SHEET_DRAWINGS):
        drawing = render(ShapeSpec(shape, colour, n), cell)
        picture.paste(drawing, (cell * (n % 2), cell * (n // 2)))
    return picture


@dataclass(frozen=True)
class ImageRequest:
    """A parsed ``{region}/{size}/{rotation}/{quality}.{format}`` request."""

    box: Box
    size: tuple[int, int]
    mirror: bool
    angle: float
    quality: str
    format: str


def parse_region(region: str, width: int, height: int) -> Box:
    """full, square, x,y,w,h and pct:x,y,w,h (Image API 1, 2 and 3), clipped to the image."""
    if region == "full":
        return (0, 0, width, height)
    if region == "square":
        side = min(width, height)
        return ((width - side) / 2, (height - side) / 2, side, side)
    percent = region.startswith("pct:")
    try:
        x, y, w, h = (float(v) for v in region.removeprefix("pct:").split(","))
    except ValueError:
        raise RequestError(f"invalid region {region!r}") from None
    if percent:
        x, y, w, h = x * width / 100, y * height / 100, w * width / 100, h * height / 100
    w, h = min(w, width - x), min(h, height - y)
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise RequestError(f"region {region!r} is outside the image")
    return (x, y, w, h)


def parse_size(size: str, region_w: float, region_h: float, version: int) -> tuple[int, int]:
    """Every size form of versions 1 to 3: full, max, pct:n, w,  ,h  w,h  !w,h, ^ prefix.

    Version 3 refuses to scale up without "^", as the specification requires; versions 1
    and 2 allow it. "full"/"max" are the region's own size (the server caps them later).
    """
    upscale = size.startswith("^")
    spec = size.removeprefix("^")
    try:
        if spec in ("full", "max"):
            w, h = region_w, region_h
        elif spec.startswith("pct:"):
            factor = float(spec[4:]) / 100
            w, h = region_w * factor, region_h * factor
        elif spec.startswith("!"):
            bound_w, bound_h = (int(v) for v in spec[1:].split(","))
            factor = min(bound_w / region_w, bound_h / region_h)
            if version >= 3 and not upscale:
                factor = min(factor, 1.0)  # v3 "!w,h": as large as possible, never larger
            w, h = region_w * factor, region_h * factor
        else:
            raw_w, raw_h = spec.split(",")
            if raw_w and raw_h:
                w, h = int(raw_w), int(raw_h)
            elif raw_w:
                w, h = int(raw_w), region_h * int(raw_w) / region_w
            else:
                w, h = region_w * int(raw_h) / region_h, int(raw_h)
    except ValueError:
        raise RequestError(f"invalid size {size!r}") from None
    out = (max(1, round(w)), max(1, round(h)))
    if version >= 3 and not upscale and (out[0] > round(region_w) or out[1] > round(region_h)):
        raise RequestError(f"size {size!r} is larger than the region; Image API 3 needs '^'")
    return out


_QUALITY_FORMAT = re.compile(r"^(?P<quality>[a-z]+)(?:\.(?P<format>[a-z0-9]+))?$")


def parse_request(
    segments: list[str], width: int, height: int, version: int, max_pixels: int
) -> ImageRequest:
    """The four path segments after the service id. "full"/"max" sizes are capped to
    `max_pixels`, keeping the aspect ratio, as a server that states maxArea does."""
    region, size, rotation, quality_format = segments
    box = parse_region(region, width, height)
    out = parse_size(size, box[2], box[3], version)
    if size.removeprefix("^") in ("full", "max"):
        out = full_size_capped(*out, max_pixels)
    elif out[0] * out[1] > MAX_REQUEST_PIXELS:
        raise RequestError(f"size {size!r} is too large for the test server")
    mirror = rotation.startswith("!")
    try:
        angle = float(rotation.removeprefix("!"))
    except ValueError:
        raise RequestError(f"invalid rotation {rotation!r}") from None
    match = _QUALITY_FORMAT.match(quality_format)
    if not match:
        raise RequestError(f"invalid quality/format {quality_format!r}")
    fmt = match.group("format") or "jpg"
    if fmt not in FORMATS:
        raise RequestError(f"format {fmt!r} is not served")
    return ImageRequest(box, out, mirror, angle, match.group("quality"), fmt)


def full_size_capped(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """A whole image's size, scaled down to `max_pixels` (aspect kept) when larger."""
    if width * height <= max_pixels:
        return (width, height)
    factor = (max_pixels / (width * height)) ** 0.5
    return (max(1, int(width * factor)), max(1, int(height * factor)))


def produce(picture: Picture, full: tuple[int, int], request: ImageRequest) -> tuple[bytes, str]:
    """The encoded image for a request, and its content type."""
    image = picture.draw(full, request.box, request.size)
    if request.mirror:
        image = ImageOps.mirror(image)
    if request.angle % 360:
        image = image.rotate(-request.angle, expand=True, fillcolor=(255, 255, 255))
    if request.quality in ("gray", "grey"):
        image = image.convert("L")
    elif request.quality == "bitonal":
        image = image.convert("1").convert("L")
    return encode(image, request.format)


def encode(image: Image.Image, fmt: str = "jpg") -> tuple[bytes, str]:
    pil_format, content_type = FORMATS[fmt]
    buffer = io.BytesIO()
    image.save(buffer, pil_format, **({"quality": 88} if pil_format == "JPEG" else {}))
    return buffer.getvalue(), content_type


TileFiles = dict[tuple[str, str], tuple[Box, tuple[int, int]]]


def tile_files(width: int, height: int, tiles: list[Any], version: int) -> TileFiles:
    """The tiles that a static tree holds for an image of `width` x `height` whose
    info.json lists `tiles`: (region, size) as their paths name them, each with its box in
    the whole image and its size in pixels. As the Image API's implementation notes
    compute them (edge tiles clipped, their size rounded up); the region of a tile that
    is the whole image is "full", its size "w," (versions 1 and 2) or "w,h" (version 3)."""
    files: TileFiles = {}
    for entry in tiles:
        if not isinstance(entry, dict) or not entry.get("width"):
            continue
        tw, th = int(entry["width"]), int(entry.get("height") or entry["width"])
        for s in entry.get("scaleFactors") or []:
            for yr in range(0, height, th * s):
                for xr in range(0, width, tw * s):
                    wr, hr = min(tw * s, width - xr), min(th * s, height - yr)
                    ws = tw if xr + tw * s <= width else (width - xr + s - 1) // s
                    hs = th if yr + th * s <= height else (height - yr + s - 1) // s
                    whole = (xr, yr, wr, hr) == (0, 0, width, height)
                    region = "full" if whole else f"{xr},{yr},{wr},{hr}"
                    size = f"{ws},{hs}" if version >= 3 else f"{ws},"
                    files[(region, size)] = ((xr, yr, wr, hr), (ws, hs))
    return files


@dataclass
class ServedImage:
    """One image the server can draw: its full size, Image API facts and picture."""

    width: int
    height: int
    picture: Picture
    version: int = 2
    level: int | None = 2
    sizes: list[tuple[int, int]] = field(default_factory=list)
    described: dict[str, Any] | None = None  # the service object as the document gave it
    info: dict[str, Any] | None = None  # a real info.json to answer with, as it is
    url: str = ""  # the service id as the documents spell it (for info.json)
    stated: bool = True  # False when the size was not stated and a default was taken

    def info_document(self, max_pixels: int) -> dict[str, Any]:
        """The info.json: the real one when a fixture gave it, else one of the service's
        version stating its level, size, listed sizes and tiles, and maxArea when the
        image is larger than the server gives whole."""
        if self.info is not None:
            return self.info
        described = self.described or {}
        level = 2 if self.level is None else self.level
        limit = max_pixels if self.width * self.height > max_pixels else None
        info: dict[str, Any]
        if self.version == 1:
            info = {
                "@context": "http://library.stanford.edu/iiif/image-api/1.1/context.json",
                "@id": self.url,
                "formats": ["jpg"],
                "qualities": ["native"],
                "profile": described.get("profile")
                or f"http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level{level}",
            }
        elif self.version == 2:
            profile = described.get("profile") or f"http://iiif.io/api/image/2/level{level}.json"
            profile = profile if isinstance(profile, list) else [profile]
            info = {
                "@context": "http://iiif.io/api/image/2/context.json",
                "@id": self.url,
                "protocol": "http://iiif.io/api/image",
                "profile": [*profile, {"maxArea": limit}] if limit else profile,
            }
        else:
            info = {
                "@context": "http://iiif.io/api/image/3/context.json",
                "id": self.url,
                "type": "ImageService3",
                "protocol": "http://iiif.io/api/image",
                "profile": described.get("profile") or f"level{level}",
            }
            if limit:
                info["maxArea"] = limit
        info["width"], info["height"] = self.width, self.height
        for extra in ("sizes", "tiles", "scale_factors", "service"):
            if extra in described:
                info[extra] = described[extra]
        return info

    @cached_property
    def tile_files(self) -> TileFiles:
        """The tiles a static tree of this image holds: none but at level 0 (a server
        that draws any region is not a tree of files)."""
        listed = (self.info or self.described or {}).get("tiles")
        if self.level != 0 or not isinstance(listed, list):
            return {}
        return tile_files(self.width, self.height, listed, self.version)

    def answer(self, segments: list[str], max_pixels: int) -> tuple[bytes, str]:
        """An Image API request (the four segments after the service id), drawn and
        encoded. Raises RequestError for a request this service must refuse: a level 0
        service serves only the whole image, whole or at one of its listed sizes, and
        the tiles it lists; NotServed when it lists tiles, a static tree that has no
        file of that name."""
        if self.tile_files:
            return self._static_file(segments, max_pixels)
        request = parse_request(segments, self.width, self.height, self.version, max_pixels)
        if self.level == 0 and not self._level_0_serves(segments, request):
            raise RequestError("a level 0 service serves only the whole image and its sizes")
        return produce(self.picture, (self.width, self.height), request)

    def _level_0_serves(self, segments: list[str], request: ImageRequest) -> bool:
        """Whether a level 0 service must serve it: the whole image, whole or listed."""
        full_region = request.box == (0, 0, self.width, self.height)
        whole = segments[1].removeprefix("^") in ("full", "max")
        listed = any(
            abs(w - request.size[0]) <= 1 and abs(h - request.size[1]) <= 1 for w, h in self.sizes
        )
        return full_region and (whole or listed)

    def _static_file(self, segments: list[str], max_pixels: int) -> tuple[bytes, str]:
        """A file of a static tree: a tile at exactly its size (a file is what it is,
        not the size a server would compute from a clipped region), or the whole image
        and its listed sizes. Raises NotServed for any other path."""
        region, size, rotation, quality_format = segments
        tile = self.tile_files.get((region, size))
        quality = "native" if self.version == 1 else "default"
        if tile is not None and (rotation, quality_format) == ("0", f"{quality}.jpg"):
            box, out = tile
            request = ImageRequest(box, out, mirror=False, angle=0.0, quality=quality, format="jpg")
            return produce(self.picture, (self.width, self.height), request)
        try:
            request = parse_request(segments, self.width, self.height, self.version, max_pixels)
        except RequestError:
            request = None
        if request is None or not self._level_0_serves(segments, request):
            raise NotServed(f"a static tree holds no {'/'.join(segments)}")
        return produce(self.picture, (self.width, self.height), request)

    def whole(self, max_pixels: int) -> tuple[bytes, str]:
        """The image at its stated size (scaled down to `max_pixels`), as a JPEG."""
        full = (self.width, self.height)
        size = full_size_capped(self.width, self.height, max_pixels)
        return encode(self.picture.draw(full, (0, 0, *full), size))
