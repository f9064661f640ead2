"""IIIF Image API 1, 2 and 3: reading image services and building the URLs to ask them.

An image service is described twice in the wild: briefly inside a manifest (often only an
id, a context or type and a profile) and fully by its ``info.json`` (dimensions, listed
sizes, size limits). `parse_service` reads either into an `ImageService`; `parse_info`
is its strict form for an ``info.json`` document.

`image_request_url` asks for the smallest image that still covers the model's input on
its shorter side (the model resizes the short side, then centre-crops), and never for more
than the service can give or more than the image has: never the master file when a smaller
one can be had, and never an upscaled one. `thumbnail_url` asks for a picture to show,
with only the size forms the service's level guarantees. Both ask for a region
("x,y,w,h") when only part of the image is painted and the service can crop; a level 0
service cannot, and the indexer cuts the region from the whole image (`region_to_cut`).
A level 0 service that lists tiles but no size that would do (a static tree) is asked
for the few tiles that make the model's picture instead (`imageapi_tiles.tile_plan`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from indexer.errors import NotIIIFError

# Profile and context URIs of the three versions. Version 1 servers wrote "compliance"
# or "conformance"; some version 2 servers wrote ".../2/profiles/level2.json", left out
# ".json", or wrote ".../image/1/level2.json" (QDL) beside a version 2 context.
_V1_LEVEL = re.compile(r"library\.stanford\.edu/iiif/image-api/.*#level([012])")
_V23_LEVEL = re.compile(r"iiif\.io/api/image/([123])/(?:profiles/)?level([012])")
_BARE_LEVEL = re.compile(r"^level([012])$")
_CONTEXT_VERSION = re.compile(r"iiif\.io/api/image/([123])/")
_V1_CONTEXT = "library.stanford.edu/iiif/image-api"
_TYPE_VERSION = re.compile(r"^(?:iiif:)?ImageService([123])$")
_IMAGE_PROTOCOL = "iiif.io/api/image"

# Auth services, by the kind of access they ask for. Version 0 and 1 name it in the
# profile URI, version 2 in the access service's profile.
_AUTH1_PROFILE = re.compile(r"iiif\.io/api/auth/[01]/(login|clickthrough|kiosk|external)")
_AUTH_KINDS = ("login", "clickthrough", "kiosk", "external", "active")


@dataclass(frozen=True)
class ImageService:
    """One IIIF Image API service: what it can give, and how to ask for it.

    `id` is the base URI (no trailing slash, no ``/info.json``). `level` is the compliance
    level (0, 1, 2) or None when the document does not say. `sizes` are the listed sizes
    (the only ones a level 0 service must serve); `wh_listed` is True when the profile
    says "sizeByWhListed", the form ("w,h") in which such a service serves them.
    `tile_width`/`tile_height` are the size of its tiles, at each of its `scale_factors`
    (the tiles a static level 0 tree holds: see `imageapi_tiles`); None when it lists none, or
    tiles of several sizes. `auth` is None for an open service, else the kind of access
    its auth service asks for ("login", "clickthrough", "kiosk", "external", "active" or
    the raw profile), so that a caller can skip it with a reason.
    """

    id: str
    version: int
    level: int | None = None
    width: int | None = None
    height: int | None = None
    sizes: list[tuple[int, int]] = field(default_factory=list)
    max_width: int | None = None
    max_height: int | None = None
    max_area: int | None = None
    scale_factors: list[int] = field(default_factory=list)
    auth: str | None = None
    wh_listed: bool = False
    tile_width: int | None = None
    tile_height: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """What the store keeps (as JSON): the same as `dataclasses.asdict`, which took 30
        times as long (it deep-copies) once per image of every manifest saved."""
        values = {f.name: getattr(self, f.name) for f in _SERVICE_FIELDS}
        values["sizes"], values["scale_factors"] = list(self.sizes), list(self.scale_factors)
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageService:
        """Rebuild from `to_dict` output (e.g. stored as JSON); unknown keys are ignored,
        so that a store written by another version still reads."""
        values = {k: v for k, v in data.items() if k in _SERVICE_NAMES}
        values["sizes"] = [tuple(size) for size in values.get("sizes") or []]
        return cls(**values)


_SERVICE_FIELDS = fields(ImageService)
_SERVICE_NAMES = frozenset(f.name for f in _SERVICE_FIELDS)


# --- reading -------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _positive_int(value: Any) -> int | None:
    """A dimension as an int, or None when absent, zero, negative or not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _profiles(obj: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The profile as (URIs or level names, profile objects), whatever shape it has."""
    uris: list[str] = []
    objects: list[dict[str, Any]] = []
    for entry in _as_list(obj.get("profile")):
        if isinstance(entry, str):
            uris.append(entry)
        elif isinstance(entry, dict):
            objects.append(entry)
            # Some servers put the compliance URI inside the profile object (Edinburgh).
            inner = entry.get("@id") or entry.get("id")
            if isinstance(inner, str):
                uris.append(inner)
    return uris, objects


def _version_and_level(obj: dict[str, Any]) -> tuple[int | None, int | None]:
    """Image API version and level from type, @context and profile; None where unknown."""
    version: int | None = None
    level: int | None = None
    for kind in _as_list(obj.get("type")) + _as_list(obj.get("@type")):
        match = _TYPE_VERSION.match(kind) if isinstance(kind, str) else None
        if match:
            version = int(match.group(1))
    for context in _as_list(obj.get("@context")):
        if not isinstance(context, str) or version is not None:
            continue
        match = _CONTEXT_VERSION.search(context)
        if match:
            version = int(match.group(1))
        elif _V1_CONTEXT in context:
            version = 1
    uris, _ = _profiles(obj)
    for uri in uris:
        if match := _V1_LEVEL.search(uri):
            version = version or 1
            level = int(match.group(1))
        elif match := _V23_LEVEL.search(uri):
            version = version or int(match.group(1))
            level = int(match.group(2))
        elif match := _BARE_LEVEL.match(uri):
            level = int(match.group(1))
            # A bare "level2" is the version 3 form, though some v2 services write it too.
            version = version or 3
    return version, level


def is_image_service(obj: Any) -> bool:
    """Whether a service object is an Image API service (and not auth, search, ...)."""
    if not isinstance(obj, dict):
        return False
    version, level = _version_and_level(obj)
    protocol = obj.get("protocol")
    return (
        version is not None
        or level is not None
        or (isinstance(protocol, str) and _IMAGE_PROTOCOL in protocol)
    )


def _service_base(raw_id: str) -> str:
    base = raw_id.strip()
    if base.endswith("/info.json"):
        base = base[: -len("/info.json")]
    return base.rstrip("/")


def _sizes(obj: dict[str, Any]) -> list[tuple[int, int]]:
    sizes = []
    for entry in _as_list(obj.get("sizes")):
        if isinstance(entry, dict):
            w, h = _positive_int(entry.get("width")), _positive_int(entry.get("height"))
            if w and h:
                sizes.append((w, h))
    return sorted(set(sizes))


def _scale_factors(obj: dict[str, Any]) -> list[int]:
    factors = set()
    for value in _as_list(obj.get("scale_factors")):  # version 1
        if _positive_int(value):
            factors.add(int(value))
    for tile in _as_list(obj.get("tiles")):  # versions 2 and 3
        if isinstance(tile, dict):
            factors.update(int(v) for v in _as_list(tile.get("scaleFactors")) if _positive_int(v))
    return sorted(factors)


def _tile_size(obj: dict[str, Any]) -> tuple[int | None, int | None]:
    """The width and height of the service's tiles; (None, None) when it lists none, or
    tiles of several sizes (each with its own scale factors, which `scale_factors` merges).
    A height left out is the width, as the specification says."""
    entries = [obj] if "tile_width" in obj else _as_list(obj.get("tiles"))  # v1 : v2, v3
    keys = ("tile_width", "tile_height") if "tile_width" in obj else ("width", "height")
    sizes = set()
    for entry in entries:
        width = _positive_int(entry.get(keys[0])) if isinstance(entry, dict) else None
        if width is None:
            return None, None
        sizes.add((width, _positive_int(entry.get(keys[1])) or width))
    return sizes.pop() if len(sizes) == 1 else (None, None)


def _limit(obj: dict[str, Any], profile_objects: list[dict[str, Any]], key: str) -> int | None:
    """maxWidth and friends: top level in version 3, inside the profile object in 2.1."""
    for source in [obj, *profile_objects]:
        value = _positive_int(source.get(key))
        if value:
            return value
    return None


def _features(obj: dict[str, Any], profile_objects: list[dict[str, Any]]) -> set[str]:
    """Features beyond the level: 2.x lists them in the profile's "supports", 3.0 in
    "extraFeatures"."""
    found: set[str] = set()
    for source, key in [(obj, "extraFeatures"), *((p, "supports") for p in profile_objects)]:
        found.update(f for f in _as_list(source.get(key)) if isinstance(f, str))
    return found


def auth_kind(service_value: Any) -> str | None:
    """The access an auth service asks for, found among the services nested in a service.

    Recognises Auth 0 and 1 (profile URIs, or "AuthCookieService1" with a short profile)
    and Auth 2 (an "AuthProbeService2" holding an "AuthAccessService2"). Probe and token
    services alone say nothing about access and are ignored.
    """
    for entry in _as_list(service_value):
        if not isinstance(entry, dict):
            continue
        kinds = [str(k) for k in _as_list(entry.get("type")) + _as_list(entry.get("@type"))]
        for profile in _as_list(entry.get("profile")):
            if not isinstance(profile, str):
                continue
            if match := _AUTH1_PROFILE.search(profile):
                return match.group(1)
            is_access = any(k in ("AuthCookieService1", "AuthAccessService2") for k in kinds)
            if is_access:
                return profile if profile in _AUTH_KINDS else profile.rsplit("/", 1)[-1]
        if "AuthAccessService2" in kinds or "AuthCookieService1" in kinds:
            return "login"  # an access service without a profile still asks for one
        nested = auth_kind(entry.get("service"))  # Auth 2 nests access inside the probe
        if nested:
            return nested
    return None


def parse_service(obj: Any) -> ImageService | None:
    """An Image API service as described inside a manifest or by an info.json; None if the
    object is not an Image API service or has no id.

    Version comes from type, then @context, then profile; a service that only says
    ``"protocol": "http://iiif.io/api/image"`` is taken as version 2, the most common.
    """
    if not is_image_service(obj):
        return None
    raw_id = obj.get("@id") or obj.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return None
    version, level = _version_and_level(obj)
    _, profile_objects = _profiles(obj)
    tile_width, tile_height = _tile_size(obj)
    return ImageService(
        id=_service_base(raw_id),
        version=version or 2,
        level=level,
        width=_positive_int(obj.get("width")),
        height=_positive_int(obj.get("height")),
        sizes=_sizes(obj),
        max_width=_limit(obj, profile_objects, "maxWidth"),
        max_height=_limit(obj, profile_objects, "maxHeight"),
        max_area=_limit(obj, profile_objects, "maxArea"),
        scale_factors=_scale_factors(obj),
        auth=auth_kind(obj.get("service")),
        wh_listed="sizeByWhListed" in _features(obj, profile_objects),
        tile_width=tile_width,
        tile_height=tile_height,
    )


def best_service(service_value: Any) -> ImageService | None:
    """The image service to use among those a resource lists: the highest version.

    Resources may list several (Bodleian lists an ImageService2 and an ImageService3 for
    the same image) beside services of other kinds (auth, search, physical dimensions).
    """
    services = [s for s in map(parse_service, _as_list(service_value)) if s is not None]
    if not services:
        return None
    return max(services, key=lambda s: (s.auth is None, s.version))


def parse_info(doc: Any, url: str | None = None) -> ImageService:
    """An ``info.json`` document as an `ImageService`.

    `url` is where it was read from: it names the source in errors, and gives the base URI
    of version 1.0 documents, which carry an "identifier" but no "@id".
    Raises `NotIIIFError` when the document is not an Image API description.
    """
    source = url or "info.json"
    if not isinstance(doc, dict):
        raise NotIIIFError(source, f"is a JSON {_json_kind(doc)}, not an Image API info.json")
    if not (_positive_int(doc.get("width")) and _positive_int(doc.get("height"))):
        raise NotIIIFError(source, "has no width and height; not an Image API info.json")
    described = dict(doc)
    if not (described.get("@id") or described.get("id")):
        if url is None:
            raise NotIIIFError(source, "has no @id/id, and no URL was given to derive it")
        described["@id"] = _service_base(url)
    if not is_image_service(described):
        # An info.json with dimensions but no context, type or profile: assume version 2.
        described["protocol"] = "http://iiif.io/api/image"
    service = parse_service(described)
    assert service is not None  # made an image service just above
    return service


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "object"


# --- asking --------------------------------------------------------------------------


def needs_info(service: ImageService, region: str | None = None) -> bool:
    """Whether to read the service's info.json before asking it for a small image.

    A level 0 service must serve only the whole image and the sizes it lists. Manifests
    often describe it by id and profile alone: without the `sizes` of its info.json, the
    only request left would be the master file (63 MP for a museum scan). A `region` it
    cannot crop is cut from the picture it serves, in the image's own pixels: that needs
    the image's size, which a manifest may leave out or give for a derivative.
    """
    if service.level != 0:
        return False
    unsized = not (service.width and service.height)
    return not service.sizes or (unsized and region_to_cut(service, region) is not None)


def with_info(service: ImageService, info: ImageService) -> ImageService:
    """The service as its info.json describes it, under the id the manifest gives (where
    the info was read), with the auth that either states.

    An info.json that states no level (no profile, which every version requires) keeps
    the manifest's level and version, when the manifest states them: a level 0 service
    taken for one that scales would be asked for sizes it refuses."""
    described = replace(info, id=service.id, auth=service.auth or info.auth)
    if info.level is None and service.level is not None:
        described = replace(described, level=service.level, version=service.version)
    return described


def _quality(service: ImageService) -> str:
    return "native" if service.version == 1 else "default"


def _full_size(service: ImageService) -> str:
    # "max" is 2.1's way to say "as large as you allow"; a v2 service that states limits
    # is a 2.1 service, and may refuse "full" for a larger image.
    if service.version >= 3:
        return "max"
    if service.version == 2 and (service.max_width or service.max_height or service.max_area):
        return "max"
    return "full"


def request_url(service: ImageService, size: str, region: str = "full") -> str:
    return f"{service.id}/{region}/{size}/0/{_quality(service)}.jpg"


def full_image_url(service: ImageService) -> str:
    """The whole image at the largest size the service gives."""
    return request_url(service, _full_size(service))


def _can_scale(service: ImageService) -> bool:
    # Unknown level: assume 1, as nearly every server is; a level 0 server says so.
    return service.level is None or service.level >= 1


def _confines(service: ImageService) -> bool:
    # "!w,h" is required at level 2 only; an unknown level at v2+ is nearly always 2.
    return service.level == 2 or (service.level is None and service.version >= 2)


def _area(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _listed_size(service: ImageService, width: int, height: int) -> str:
    """A listed size in the form the service serves it: "w,h" in v3 and where the profile
    says sizeByWhListed (DLCS), else v1/v2's canonical "w," (static level 0 files)."""
    return f"{width},{height}" if service.version >= 3 or service.wh_listed else f"{width},"


def _within_limits(service: ImageService, width: int, height: int) -> bool:
    # A maxWidth without maxHeight bounds the height too (Image API 2.1 and 3).
    max_height = service.max_height or service.max_width
    return (
        (service.max_width is None or width <= service.max_width)
        and (max_height is None or height <= max_height)
        and (service.max_area is None or width * height <= service.max_area)
    )


def _box(service: ImageService, span: int) -> tuple[int, int]:
    """A `span` x `span` box, shrunk to the service's maxWidth, maxHeight and maxArea."""
    width = min(span, service.max_width or span)
    height = min(span, service.max_height or service.max_width or span)
    if service.max_area and width * height > service.max_area:
        factor = math.sqrt(service.max_area / (width * height))
        width, height = max(1, int(width * factor)), max(1, int(height * factor))
    return width, height


def region_box(region: str | None) -> tuple[int, int, int, int] | None:
    """An "x,y,w,h" pixel region as numbers; None for full or any other form."""
    if not region:
        return None
    parts = region.split(",")
    if len(parts) == 4 and all(p.strip().isdigit() for p in parts):
        x, y, w, h = (int(p) for p in parts)
        return (x, y, w, h) if w > 0 and h > 0 else None
    return None


def clip_box(
    box: tuple[int, int, int, int], width: int, height: int
) -> tuple[int, int, int, int] | None:
    """An (x, y, w, h) box cut to a `width` x `height` image, as a server clips a region;
    None when none of it lies inside."""
    x, y, w, h = box
    w, h = min(w, width - x), min(h, height - y)
    return (x, y, w, h) if w > 0 and h > 0 else None


def region_size(
    region: str | None, width: int | None = None, height: int | None = None
) -> tuple[int, int] | None:
    """The size of an "x,y,w,h" region, clipped to the image when its size is known, as
    a server clips it; None when it is not such a region, or lies outside the image."""
    box = region_box(region)
    if box is not None and width and height:
        box = clip_box(box, width, height)
    return None if box is None else (box[2], box[3])


def can_crop(service: ImageService) -> bool:
    """Whether the service serves regions: level 0 must serve only the whole image."""
    return _can_scale(service)


def region_to_cut(service: ImageService, region: str | None) -> tuple[int, int, int, int] | None:
    """The "x,y,w,h" region, as numbers, that a request to `service` cannot ask for: a
    level 0 service serves the whole image, and the region must be cut from it after."""
    located = locate_region(service, region, None, None)
    return located.box if located and located.cut else None


def image_size(
    service: ImageService | None, width: int | None, height: int | None
) -> tuple[int, int] | None:
    """The whole image's size in pixels: the service's own when it states one, else
    `width`/`height` as the manifest gives them; None when neither is known.

    The service's size wins: manifests often give a derivative's size on the resource
    (Wellcome: 742 x 1024 for a 2569 x 3543 service), and trusting it could take a large
    image for a small one and ask for it whole.
    """
    if service and service.width and service.height:
        return service.width, service.height
    return (width, height) if width and height else None


@dataclass(frozen=True)
class LocatedRegion:
    """An "x,y,w,h" region placed in the whole image: `box` as asked, in the whole
    image's pixels; `size`, the whole image's size as far as it is known to judge the
    region by (None when not); `cut`, True when the pictures to be had are the whole image
    (a level 0 service, a plain image URL) and the region is cut from them after."""

    box: tuple[int, int, int, int]
    size: tuple[int, int] | None
    cut: bool

    @property
    def kept(self) -> tuple[int, int, int, int] | None:
        """The box clipped to the image, as a server clips a region; None when the
        image's size is unknown or none of the box lies inside."""
        return clip_box(self.box, *self.size) if self.size else None

    @property
    def outside(self) -> bool:
        """Whether the region lies outside the image, as far as its size is known."""
        return self.size is not None and self.kept is None

    def in_whole(self) -> tuple[float, float, float, float] | None:
        """What is kept, as fractions (x, y, w, h) of the image's width and height; None
        when that is not known."""
        if self.size is None or (kept := self.kept) is None:
            return None
        x, y, w, h = kept
        return x / self.size[0], y / self.size[1], w / self.size[0], h / self.size[1]


def locate_region(
    service: ImageService | None, region: str | None, width: int | None, height: int | None
) -> LocatedRegion | None:
    """Where an "x,y,w,h" `region` lies in the image that `service` (None for a plain
    image URL) serves; None when `region` is not such a region. `width`/`height` are the
    image's size as the manifest gives it.

    A region to cut is judged by the image's size (`image_size`: the service's own, else
    the manifest's): the cut is made in the pictures of it. A region the service crops is
    judged by the service's own size only: the manifest's may be a derivative's
    (`image_size`), and the server clips the region to the image it has."""
    box = region_box(region)
    if box is None:
        return None
    if service is not None and can_crop(service):
        return LocatedRegion(box, image_size(service, None, None), cut=False)
    return LocatedRegion(box, image_size(service, width, height), cut=True)


def url_region(url: str | None, service: ImageService) -> str | None:
    """The pixel region ("x,y,w,h") that an Image API URL under `service` asks for, as
    some painted resources' ids do (V&A); None for the full image or any other URL."""
    if not url:
        return None
    base = service.id.split("://", 1)[-1] + "/"  # http and https name the same image
    rest = url.split("://", 1)[-1]
    if not rest.startswith(base):
        return None
    parts = rest[len(base) :].split("?")[0].split("/")
    return parts[0] if len(parts) == 4 and region_box(parts[0]) else None


def _view(
    service: ImageService, region: str | None, width: int | None, height: int | None
) -> tuple[str, tuple[int, int] | None]:
    """What a request shows: the region to ask for ("full" when there is none, or the
    service cannot crop) and its size in pixels, None when unknown (see `image_size`).

    A region outside the size the manifest gives is still asked for, at its own size,
    of a service that does not state its own: that size may be a derivative's, and the
    server clips the region to the image."""
    size = image_size(service, width, height)
    if region and can_crop(service):
        cropped = region_size(region, *size) if size else None
        if cropped is None and not (service.width and service.height):
            cropped = region_size(region)
        if cropped:
            return region, cropped
    return "full", size


def _part_kept(
    service: ImageService, region: str | None, width: int | None, height: int | None
) -> tuple[float, float] | None:
    """How much of the whole image's width and height the model will see: all of it,
    or the part of it that a region to cut keeps; None when that is not known."""
    located = locate_region(service, region, width, height)
    if located is None or not located.cut:
        return 1.0, 1.0
    part = located.in_whole()
    return None if part is None else (part[2], part[3])


def _listed_within(sizes: list[tuple[int, int]], bound: int) -> list[tuple[int, int]]:
    """The listed sizes that fit in a `bound` x `bound` box, else the smallest listed."""
    return [size for size in sizes if max(size) <= bound] or [min(sizes, key=_area)]


def _listed_covering(
    sizes: list[tuple[int, int]],
    target: int,
    part: tuple[float, float],
    side: Callable[[float, float], float] = min,
) -> tuple[int, int]:
    """The smallest listed size in which the `part` kept still covers `target` pixels on
    its shorter `side` (the model's input) or longer one (a box to show it in), else the
    largest listed size."""
    covering = [s for s in sizes if side(s[0] * part[0], s[1] * part[1]) >= target]
    return min(covering, key=_area) if covering else max(sizes, key=_area)


def image_request_url(
    service: ImageService,
    width: int | None,
    height: int | None,
    target: int,
    *,
    region: str | None = None,
) -> str:
    """The URL of the smallest image whose SHORTER side still covers `target` pixels.

    `width`/`height` are the image's size as the manifest gives it; the service's own size,
    when it states one, is used instead.
    `region` ("x,y,w,h" in pixels) asks for part of the image, as a SpecificResource's
    selector does; a level 0 service cannot crop, and then the whole image is asked for,
    large enough that the region cut from it still covers the target (a listed size is
    chosen only when the image's size is known, to find the region in it).

    In order of preference:
    1. the image is no larger than `target` on its short side: the whole image (``full``
       in v1/v2, ``max`` in v3 and where limits are stated), never an upscaled one;
    2. a service that can scale (level >= 1, or level unknown, which nearly always means a
       scaling server): ``w,`` when the width is the shorter side, else ``,h``, within
       the service's maxWidth, maxHeight and maxArea;
    3. otherwise the smallest listed ``sizes`` entry that covers `target` (with the
       region to cut from it, for a level 0 service), else the largest listed one (in
       the form the service serves them: see `_listed_size`);
    4. otherwise the whole image (``max`` where limits are stated: never more).
    When the size is unknown (no dimensions given nor stated, no sizes listed), a scaling
    service is asked for ``!2t,2t`` (level 2, where "!w,h" is required) or ``2t,``: the
    long side is then at most twice the target, so an image up to 2:1 still covers the
    target with a bounded download. A level 0 service that lists no sizes serves only the
    master file: read its info.json first (`needs_info`, `with_info`); where that lists
    tiles, `imageapi_tiles.tile_plan` makes the picture of a few of them instead.
    """
    shown, size = _view(service, region, width, height)
    if size:
        w, h = size
        if min(w, h) <= target:
            return request_url(service, _full_size(service), shown)
        if _can_scale(service):
            if w <= h:
                spec, scaled = f"{target},", (target, math.ceil(h * target / w))
            else:
                spec, scaled = f",{target}", (math.ceil(w * target / h), target)
            if _within_limits(service, *scaled):
                return request_url(service, spec, shown)

    part = _part_kept(service, region, width, height)
    if service.sizes and shown == "full" and part:
        chosen = _listed_covering(service.sizes, target, part)
        return request_url(service, _listed_size(service, *chosen))

    if size is None and _can_scale(service):
        span_w, span_h = _box(service, 2 * target)
        if _confines(service):
            return request_url(service, f"!{span_w},{span_h}", shown)
        return request_url(service, f"{span_w},", shown)
    return request_url(service, _full_size(service), shown)


def thumbnail_url(
    service: ImageService,
    size: int = 256,
    *,
    region: str | None = None,
    width: int | None = None,
    height: int | None = None,
    at_most: bool = False,
) -> str:
    """A picture that fits in a `size` x `size` box, for showing, not for the model.

    `region` ("x,y,w,h") shows that part, as the model saw it, where the service can
    crop; `width`/`height` are the image's as the manifest gives them (the service's own
    size wins). In order of preference:
    1. the picture is no larger than the box: whole, never upscaled;
    2. a box beyond the service's maxWidth, maxHeight or maxArea: ``max``, its largest;
    3. level 2 (or unknown at v2+): ``!size,size``;
    4. level 1, and version 1 below level 2: ``size,`` or ``,size`` on the longer side
       (``size,`` when the shape is unknown), the only forms level 1 guarantees;
    5. level 0: the smallest listed size whose longer side covers the box, else the
       largest listed; else the whole image, all that level 0 must serve. A region it
       cannot crop is shown cut from that picture (see `region_in_whole`): the size
       chosen is one in which the region's longer side covers the box. With `at_most`,
       the largest listed size that fits in the box instead (the smallest listed when
       none does): a covering one is often the master file, too much for a link.
    """
    shown, dims = _view(service, region, width, height)
    if dims and max(dims) <= size:
        return request_url(service, _full_size(service), shown)
    if _can_scale(service):
        if not _within_limits(service, size, size):
            return request_url(service, _full_size(service), shown)
        if _confines(service):
            return request_url(service, f"!{size},{size}", shown)
        portrait = dims is not None and dims[1] > dims[0]
        return request_url(service, f",{size}" if portrait else f"{size},", shown)
    if service.sizes:
        part = _part_kept(service, region, width, height) or (1.0, 1.0)
        # Within the box, none covers it but one of its very size: the choice falls to
        # the largest that fits.
        sizes = _listed_within(service.sizes, size) if at_most else service.sizes
        chosen = _listed_covering(sizes, size, part, side=max)
        return request_url(service, _listed_size(service, *chosen))
    return full_image_url(service)


def region_in_whole(
    service: ImageService | None, region: str | None, width: int | None, height: int | None
) -> tuple[float, float, float, float] | None:
    """Where an "x,y,w,h" region that the pictures cannot be cut to lies in them, as
    fractions (x, y, w, h) of the whole image's width and height, clipped to it.

    Such pictures are the whole image: a level 0 service serves nothing else, and a plain
    image URL (no `service`) is what it is. None when the pictures are the region already
    (the service crops), when there is no region, or when the image's size is unknown
    (`width`/`height` are the manifest's; the service's own size wins).
    """
    located = locate_region(service, region, width, height)
    return located.in_whole() if located and located.cut else None
