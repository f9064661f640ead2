"""What is painted on the canvases of a manifest: one `ImageRef` per image, or why not.

Presentation 2 paints with ``canvas.images[].resource``; Presentation 3 with
``canvas.items[] (AnnotationPage) .items[] (Annotation) .body``. Both end up here as a
list of bodies per canvas, and a body may be an image, a list of bodies, a Choice (the
default, or first, option is indexed; the others are noted), a SpecificResource (its
``source``, possibly a region of it), or something that is not an image (sound, video,
text), which is skipped with a reason a person understands.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from indexer.iiif_labels import LanguageMap, language_map, metadata_entries
from indexer.imageapi import ImageService, auth_kind, best_service, is_image_service, url_region

NO_IMAGE = "canvas has no image"
AV_CONTENT = "audio/video content is not indexed"
DUPLICATE = "same image already listed for this canvas"
NO_URL = "image has neither a URL nor an Image API service"
NOT_EMBEDDED = "annotation page is not embedded in the manifest (not fetched)"
PLACEHOLDER = "placeholder picture for audio/video content, not indexed"

_AV_TYPES = {"sound", "audio", "video", "movingimage"}
_IMAGE_SUFFIX = re.compile(r"\.(jpe?g|png|gif|tiff?|webp|jp2)$", re.IGNORECASE)
_XYWH = re.compile(r"xywh=(?:pixel:)?(\d+),(\d+),(\d+),(\d+)")


@dataclass(frozen=True)
class ImageRef:
    """One image painted on a canvas: what the indexer fetches, embeds and stores.

    `image_url` is the painted resource's own id (None when it has only a service);
    `width`/`height` the whole image's size in pixels: the resource's when given (unless
    it is a crop), else the one its service states, else None; never the canvas's, whose
    units are its own (a 200 x 297 canvas may show an 11458 x 17014 image).
    `region` ("x,y,w,h") is set when only part of the image is painted (a
    SpecificResource with a selector, or an Image API URL under the image's service that
    names a region). `choice_alternatives` lists the ids of the other options of a
    Choice; this one is the default (or first) option.

    `version` changes when the image itself does (IIIF: None, the URL names it; folder
    files: size and modification time), so the store re-embeds a changed image. `id_key`,
    when set, is all that `item_id` is computed from: folder images use their path
    relative to the folder, so that moving or renaming the folder changes no id.
    """

    manifest_id: str
    canvas_id: str
    canvas_index: int
    image_index: int
    canvas_label: LanguageMap
    image_url: str | None
    service: ImageService | None
    width: int | None
    height: int | None
    format: str | None = None
    choice_alternatives: list[str] = field(default_factory=list)
    region: str | None = None
    canvas_metadata: list[dict[str, LanguageMap]] = field(default_factory=list)
    version: str | None = None
    id_key: str | None = None

    @property
    def item_id(self) -> str:
        """A stable 16-hex id: the first 16 hex digits of SHA-1 over the UTF-8 bytes of
        ``manifest_id + "\\n" + canvas_id + "\\n" + image`` where `image` is the image URL
        (the service id when there is no URL), followed by ``"#xywh=" + region`` when only a
        region is painted. Stable across runs and machines, and the same whatever the
        canvas's position, so re-harvesting a reordered manifest changes no id.

        When `id_key` is set (folder images), the digest is over its UTF-8 bytes alone.
        """
        if self.id_key is not None:
            return stable_id(self.id_key)
        image = self.image_url or (self.service.id if self.service else "")
        if self.region:
            image += "#xywh=" + self.region
        return stable_id(f"{self.manifest_id}\n{self.canvas_id}\n{image}")


def stable_id(key: str) -> str:
    """An item id: the first 16 hex digits of SHA-1 over the UTF-8 bytes of `key`."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Skipped:
    """A canvas (or part of one) that gives no image to index, and why."""

    canvas_id: str
    reason: str
    canvas_index: int | None = None


@dataclass
class _Option:
    """One image found in a body, before it becomes an ImageRef."""

    resource: dict[str, Any]
    alternatives: list[str] = field(default_factory=list)
    region: str | None = None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def node_id(obj: Any) -> str | None:
    """The id of a node in either version ("@id" or "id"), or of a bare string reference."""
    if isinstance(obj, str):
        return obj or None
    if isinstance(obj, dict):
        value = obj.get("@id") or obj.get("id")
        return value if isinstance(value, str) and value else None
    return None


def canvas_id_of(canvas: Any, manifest_id: str, index: int) -> str:
    """A canvas's id, or, for one that gives none (required, but not always given), a
    name made of its manifest's id and the canvas's place in the canvas order."""
    return node_id(canvas) or f"{manifest_id}#canvas={index}"


def _dimension(value: Any) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def _pixel_size(
    resource: dict[str, Any], service: ImageService | None, cropped: bool
) -> tuple[int | None, int | None]:
    """The whole image's size: the resource's, unless the resource is a crop of it, else
    its service's. The canvas's size is not the image's (see `ImageRef`)."""
    width, height = _dimension(resource.get("width")), _dimension(resource.get("height"))
    if width and height and not cropped:
        return width, height
    if service and service.width and service.height:
        return service.width, service.height
    return None, None


def node_types(obj: dict[str, Any]) -> list[str]:
    """The node's types, lower-case and without prefix: "dctypes:Image" -> "image"."""
    names = []
    for raw in as_list(obj.get("@type")) + as_list(obj.get("type")):
        if isinstance(raw, str) and raw:
            names.append(re.split(r"[:#/]", raw)[-1].lower())
    return names


def _region(selector: Any) -> str | None:
    """A pixel region "x,y,w,h" from an ImageApiSelector or an xywh FragmentSelector."""
    for entry in as_list(selector):
        if isinstance(entry, dict):
            region = entry.get("region")
            if isinstance(region, str) and re.fullmatch(r"\d+,\d+,\d+,\d+", region):
                return region
            value = entry.get("value")
            if isinstance(value, str) and (match := _XYWH.search(value)):
                return ",".join(match.groups())
    return None


def _expand(body: Any, region: str | None = None) -> tuple[list[_Option], list[str]]:
    """The images in a body, and the reasons for the parts that are not images."""
    if isinstance(body, list):
        options: list[_Option] = []
        reasons: list[str] = []
        for element in body:
            found, why = _expand(element, region)
            options += found
            reasons += why
        return options, reasons
    if isinstance(body, str):
        # A bare reference: taken for an image when it looks like one.
        if _IMAGE_SUFFIX.search(body.split("?")[0]):
            return [_Option({"@id": body}, region=region)], []
        return [], [f"painted resource {body!r} is not described"]
    if not isinstance(body, dict):
        return [], []

    types = node_types(body)
    raw_format = body.get("format")
    fmt = raw_format if isinstance(raw_format, str) else ""
    if "choice" in types:
        return _choice(body, region)
    if "specificresource" in types:
        source = body.get("source", body.get("full"))
        return _expand(source, _region(body.get("selector")) or region)
    if any(t in _AV_TYPES for t in types) or fmt.startswith(("audio/", "video/")):
        return [], [AV_CONTENT]
    if "image" in types or fmt.startswith("image/"):
        return [_Option(body, region=region)], []
    if types:
        return [], [f"{types[0]} content is not indexed"]
    # Untyped: an image if it has an image service or an image-like URL.
    url = node_id(body) or ""
    if best_service(body.get("service")) or _IMAGE_SUFFIX.search(url.split("?")[0]):
        return [_Option(body, region=region)], []
    return [], ["painted resource of unknown type is not indexed"]


def _choice(body: dict[str, Any], region: str | None) -> tuple[list[_Option], list[str]]:
    """A Choice: the default (v2 "default") or first option is indexed, the rest noted."""
    default = body.get("default")
    ordered = ([] if default in (None, "rdf:nil") else [default]) + as_list(
        body.get("items", body.get("item"))
    )
    options: list[_Option] = []
    reasons: list[str] = []
    for option in ordered:
        found, why = _expand(option, region)
        options += found
        reasons += why
    if not options:
        return [], reasons
    chosen = options[0]
    others = [node_id(o.resource) or _service_id(o.resource) for o in options[1:]]
    chosen.alternatives = [o for o in others if o]
    return [chosen], []


def _service_id(resource: dict[str, Any]) -> str | None:
    service = best_service(resource.get("service"))
    return service.id if service else None


class CanvasReader:
    """Turns the canvases of one manifest into image references and skips.

    Keeps the ids it has listed, so that a canvas repeated in a sequence, or an image
    annotation repeated on a canvas (both met in real manifests), gives one item.
    """

    def __init__(self, manifest_id: str):
        self.manifest_id = manifest_id
        self.images: list[ImageRef] = []
        self.skipped: list[Skipped] = []
        self._seen: set[str] = set()

    def skip(self, canvas_id: str, reason: str, index: int | None = None) -> None:
        entry = Skipped(canvas_id, reason, index)
        if entry not in self.skipped:
            self.skipped.append(entry)

    def read_canvas(
        self,
        index: int,
        canvas: dict[str, Any],
        bodies: Iterable[Any],
        reasons: Iterable[str] = (),
    ) -> None:
        canvas_id = canvas_id_of(canvas, self.manifest_id, index)
        options, why = _expand(list(bodies))
        reasons = [*reasons, *why]
        for reason in dict.fromkeys(reasons):
            self.skip(canvas_id, reason, index)
        if not options and not reasons:
            self.skip(canvas_id, NO_IMAGE, index)
        label = language_map(canvas.get("label"))
        for image_index, option in enumerate(options):
            self._add(index, canvas, canvas_id, label, image_index, option)

    def _add(
        self,
        index: int,
        canvas: dict[str, Any],
        canvas_id: str,
        label: LanguageMap,
        image_index: int,
        option: _Option,
    ) -> None:
        resource = option.resource
        listed = as_list(resource.get("service"))
        service = best_service(listed)
        # Auth sits inside the image service (Auth 0/1) or beside it (Auth 2 probe); an
        # open image service listed beside a protected one is used, not skipped.
        beside = [entry for entry in listed if not is_image_service(entry)]
        auth = service.auth if service and service.auth else auth_kind(beside)
        if auth:
            self.skip(canvas_id, f"image needs authentication ({auth})", index)
            return
        image_url = node_id(resource)
        if not image_url and not service:
            self.skip(canvas_id, NO_URL, index)
            return
        fmt = resource.get("format")
        # A selector's region is of the resource; one in the resource's own URL, of the
        # service's image (the two together are not met in the wild).
        cropped = url_region(image_url, service) if service else None
        width, height = _pixel_size(resource, service, cropped is not None)
        ref = ImageRef(
            manifest_id=self.manifest_id,
            canvas_id=canvas_id,
            canvas_index=index,
            image_index=image_index,
            canvas_label=label,
            image_url=image_url,
            service=service,
            width=width,
            height=height,
            format=fmt if isinstance(fmt, str) else None,
            choice_alternatives=option.alternatives,
            region=option.region or cropped,
            canvas_metadata=metadata_entries(canvas),
        )
        if ref.item_id in self._seen:
            self.skip(canvas_id, DUPLICATE, index)
            return
        self._seen.add(ref.item_id)
        self.images.append(ref)
