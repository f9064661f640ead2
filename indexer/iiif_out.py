"""A selection of items as a IIIF Presentation 3 Manifest, to open in Mirador or UV.

Pure building over store records: the service gives each image's links (where it serves
a local file, the thumbnail) and the ids to mint, and sends the result. One Canvas per
item, of the size the item shows, painted with its image (through its Image API service
when it has one, cut to its region when only part is painted), with its label, its
thumbnail, and the way back to its source: `partOf` its manifest, and metadata naming
the source canvas and manifest.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from indexer.iiif_labels import LanguageMap
from indexer.imageapi import ImageService, full_image_url
from indexer.store import ItemRecord

PRESENTATION_3 = "http://iiif.io/api/presentation/3/context.json"
# A canvas that paints an image must have a size (Presentation 3, Canvas); where neither
# the manifest nor the image server said the image's, a square one: viewers read the
# size from the image service's info.json, or fit the picture in it.
UNKNOWN_SIDE = 1000
_HTTP = re.compile(r"https?://", re.IGNORECASE)
_ATTRIBUTION: LanguageMap = {"fr": ["Mention obligatoire"], "en": ["Attribution"]}

# Image API profiles as each version writes its level in a Presentation 3 `service`.
_PROFILES = {
    1: "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level{}",
    2: "http://iiif.io/api/image/2/level{}.json",
    3: "level{}",
}


@dataclass(frozen=True)
class SelectedImage:
    """One item of the selection, with the links the service gives it: `image_url`
    where the image is served when that is not its IIIF link (a local file, served by
    Regard), `thumbnail_url` absolute, `width`/`height` the size of what it shows."""

    item: ItemRecord
    thumbnail_url: str | None
    width: int | None
    height: int | None
    image_url: str | None = None


def selection_manifest(
    images: Sequence[SelectedImage],
    manifest_id: str,
    label: str | None = None,
    left_out: int = 0,
) -> dict[str, Any]:
    """The Manifest: `manifest_id` is an http(s) URI under which the canvases,
    pages and annotations are named; `label` the selection's name, if it has one;
    `left_out` how many items asked for are not in it (no longer in the collection)."""
    count = len(images)
    manifest: dict[str, Any] = {
        "@context": PRESENTATION_3,
        "id": manifest_id,
        "type": "Manifest",
        "label": {"none": [label]}
        if label
        else {"fr": [f"Sélection ({count} images)"], "en": [f"Selection ({count} images)"]},
        "summary": _summary(count, left_out),
    }
    shared = _shared_rights([image.item for image in images])
    manifest.update(shared or {})
    manifest["items"] = [
        _canvas(image, f"{manifest_id}/canvas/{n}", own_rights=shared is None)
        for n, image in enumerate(images, start=1)
    ]
    return manifest


def _summary(count: int, left_out: int) -> LanguageMap:
    french = f"{count} images choisies dans Regard, chacune liée à son manifeste."
    english = f"{count} images chosen in Regard, each linked to its manifest."
    if left_out:
        french += f" {left_out} autres, qui ne sont plus dans la collection, n’y sont pas."
        english += f" {left_out} more, no longer in the collection, are left out."
    return {"fr": [french], "en": [english]}


def _shared_rights(items: Sequence[ItemRecord]) -> dict[str, Any] | None:
    """The manifest's `rights` and `requiredStatement`, when every item's source says the
    same; None when they differ (or name several licences: a manifest has one `rights`),
    and each canvas then says its own in its metadata, where viewers show it."""
    if len({_rights_key(item) for item in items}) != 1 or len(items[0].rights) > 1:
        return None
    item = items[0]
    shared: dict[str, Any] = {"rights": item.rights[0]} if item.rights else {}
    if item.required_statement:
        shared["requiredStatement"] = {
            "label": item.required_label or _ATTRIBUTION,
            "value": item.required_statement,
        }
    return shared


def _rights_key(item: ItemRecord) -> str:
    return repr((item.rights, item.required_statement, item.required_label))


def _canvas(image: SelectedImage, canvas_id: str, own_rights: bool) -> dict[str, Any]:
    item = image.item
    known = image.width and image.height
    width, height = (image.width, image.height) if known else (UNKNOWN_SIDE, UNKNOWN_SIDE)
    canvas: dict[str, Any] = {
        "id": canvas_id,
        "type": "Canvas",
        "label": item.canvas_label or item.manifest_label or {"none": [item.id]},
        "width": width,
        "height": height,
    }
    if image.thumbnail_url:
        canvas["thumbnail"] = [_picture(image.thumbnail_url, local=_is_local(item))]
    metadata = [*item.canvas_metadata, *_source_metadata(item)]
    if own_rights:
        metadata += _rights_metadata(item)
    canvas["metadata"] = metadata
    if _HTTP.match(item.manifest_id):
        source: dict[str, Any] = {"id": item.manifest_id, "type": "Manifest"}
        if item.manifest_label:
            source["label"] = item.manifest_label
        canvas["partOf"] = [source]
    canvas["items"] = [
        {
            "id": f"{canvas_id}/page",
            "type": "AnnotationPage",
            "items": [
                {
                    "id": f"{canvas_id}/page/painting",
                    "type": "Annotation",
                    "motivation": "painting",
                    "body": _body(image),
                    "target": canvas_id,
                }
            ],
        }
    ]
    return canvas


def _source_metadata(item: ItemRecord) -> list[dict[str, LanguageMap]]:
    """The way back to the item's source, as metadata: Mirador and UV show a canvas's
    metadata to people, whereas `seeAlso` is for machine-readable descriptions (with a
    format and profile) that a bare canvas id is not, and viewers do not show it. Ids of
    local files (file://) name a path on the server, of no use elsewhere: left out."""
    entries = [_entry("Identifiant Regard", "Regard id", item.id)]
    if _HTTP.match(item.canvas_id):
        entries.append(_entry("Canevas source", "Source canvas", item.canvas_id))
    if _HTTP.match(item.manifest_id):
        entries.append(_entry("Manifeste source", "Source manifest", item.manifest_id))
    return entries


def _rights_metadata(item: ItemRecord) -> list[dict[str, LanguageMap]]:
    entries = [_entry("Droits", "Rights", uri) for uri in item.rights]
    if item.required_statement:
        label = item.required_label or _ATTRIBUTION
        entries.append({"label": label, "value": item.required_statement})
    return entries


def _entry(french: str, english: str, value: str) -> dict[str, LanguageMap]:
    return {"label": {"fr": [french], "en": [english]}, "value": {"none": [value]}}


def _is_local(item: ItemRecord) -> bool:
    """A file of a local folder (or of a manifest read from a file), served by Regard."""
    return bool(item.image_url and item.image_url.startswith("file://"))


def _body(image: SelectedImage) -> dict[str, Any]:
    """The painted image: the item's, or the region of it that the item is."""
    item = image.item
    described = None if _is_local(item) else item.best_service
    service = ImageService.from_dict(described) if described else None
    url = image.image_url or item.image_url or (full_image_url(service) if service else "")
    picture = _picture(url, local=_is_local(item))
    if item.width and item.height:
        picture.update(width=item.width, height=item.height)
    if service:
        picture["service"] = [_service(service)]
    if not item.region:
        return picture
    # Only part of the image is painted: the part, as Presentation 3 selects it (an
    # Image API region where there is a service, a media fragment on a plain image).
    selector = (
        {"type": "ImageApiSelector", "region": item.region}
        if service
        else {
            "type": "FragmentSelector",
            "conformsTo": "http://www.w3.org/TR/media-frags/",
            "value": f"xywh={item.region}",
        }
    )
    return {"type": "SpecificResource", "source": picture, "selector": selector}


def _picture(url: str, local: bool) -> dict[str, Any]:
    picture: dict[str, Any] = {"id": url, "type": "Image"}
    # A local file is served as JPEG whatever its own format (service/routes/items.py).
    kind = "image/jpeg" if local else mimetypes.guess_type(url.split("?")[0])[0]
    if kind and kind.startswith("image/"):
        picture["format"] = kind
    return picture


def _service(service: ImageService) -> dict[str, Any]:
    """The Image API service as Presentation 3 lists it: ImageService3 with `id` and
    `type`; older versions with `@id` and `@type`, as their own documents name them."""
    version = service.version if service.version in _PROFILES else 2
    # A level the service did not state: 0, the least any server gives.
    profile = _PROFILES[version].format(service.level or 0)
    if version == 3:
        entry: dict[str, Any] = {"id": service.id, "type": "ImageService3", "profile": profile}
    else:
        entry = {"@id": service.id, "@type": f"ImageService{version}", "profile": profile}
    if service.width and service.height:
        entry.update(width=service.width, height=service.height)
    return entry
