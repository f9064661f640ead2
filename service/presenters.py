"""Turning store records into response bodies, with their IIIF links."""

from __future__ import annotations

from collections.abc import Iterable

from indexer.csv_lines import csv_line
from indexer.iiif import best_label
from indexer.imageapi import (
    ImageService,
    image_size,
    needs_info,
    region_in_whole,
    region_size,
    thumbnail_url,
)
from indexer.imageapi_tiles import one_tile_picture
from indexer.search import Hit as SearchHit
from indexer.store import ItemRecord

from .schemas import (
    Crop,
    Hit,
    ItemDetail,
    ItemSummary,
    Link,
    MetadataEntry,
    Provider,
    TextHit,
)

PREVIEW_SIZE = 1024
# The picture a link opens in a tab: a master file can be hundreds of megapixels, which
# stalls a browser; 2000 pixels on the longest side shows a drawing's detail.
LARGE_SIZE = 2000


def _is_local(item: ItemRecord) -> bool:
    return bool(item.image_url and item.image_url.startswith("file://"))


def local_image_url(item: ItemRecord, size: int | None = None) -> str:
    """Images of a local folder are served by the service itself (browsers cannot open
    file:// links from a web page)."""
    return f"/api/items/{item.id}/image" + (f"?size={size}" if size else "")


def _picture(item: ItemRecord, service: ImageService, size: int, *, at_most: bool = False) -> str:
    """What the item shows (its region, when only part is painted) in a `size` box; see
    `thumbnail_url` for `at_most`."""
    return thumbnail_url(
        service, size, region=item.region, width=item.width, height=item.height, at_most=at_most
    )


def _thumbnail(item: ItemRecord, service: ImageService, size: int) -> str:
    # A level 0 service that lists no sizes must serve only its master file. The store
    # keeps the sizes its info.json lists (`described_service`), but not a store indexed
    # before it did: the picture the indexer fetched there is small.
    fetched = item.fetched_url
    if needs_info(service) and fetched and fetched.startswith(service.id + "/"):
        return fetched
    return _small_tiled(service) or _picture(item, service, size)


def _small_tiled(service: ImageService) -> str | None:
    """Where a static tree lists tiles but no size, the whole image in one tile (at most
    a tile's size: small for a preview, but not the master file, which can be hundreds
    of megapixels for one card); the region, if any, is cut by the client (`crop`)."""
    return None if service.sizes else one_tile_picture(service)


def _large(item: ItemRecord, service: ImageService) -> str:
    # At most LARGE_SIZE: a level 0 service's listed size that covers it is often the
    # master file itself.
    return _picture(item, service, LARGE_SIZE, at_most=True)


def _shown_size(item: ItemRecord, service: ImageService | None) -> tuple[int | None, int | None]:
    """The size of what the item shows: its region's, else the image's."""
    whole = image_size(service, item.width, item.height) or (None, None)
    return region_size(item.region, *whole) or (item.width, item.height)


def _pictures(
    item: ItemRecord, service: ImageService | None, thumbnail_size: int
) -> dict[str, str | None]:
    """The links to the item's picture, from the smallest to the image itself."""
    if _is_local(item):
        return {
            "thumbnail_url": local_image_url(item, thumbnail_size),
            "preview_url": local_image_url(item, PREVIEW_SIZE),
            "large_url": local_image_url(item, LARGE_SIZE),
            "image_url": local_image_url(item),
        }
    if service:
        return {
            "thumbnail_url": _thumbnail(item, service, thumbnail_size),
            "preview_url": _small_tiled(service) or _picture(item, service, PREVIEW_SIZE),
            "large_url": _large(item, service),
            "image_url": item.image_url,
        }
    # A plain image URL is all there is: every link is to it.
    return dict.fromkeys(("thumbnail_url", "preview_url", "large_url", "image_url"), item.image_url)


def _crop(item: ItemRecord, service: ImageService | None) -> Crop | None:
    """The part of the linked pictures that is the item, when they show the whole image
    (a region that a level 0 service cannot crop): for a client to cut it out."""
    # A local file is served whole (`/image`), whatever service the manifest names.
    shown_by = None if _is_local(item) else service
    part = region_in_whole(shown_by, item.region, item.width, item.height)
    if part is None:
        return None
    x, y, w, h = (round(value, 6) for value in part)
    return Crop(x=x, y=y, w=w, h=h)


def _summary_fields(item: ItemRecord, thumbnail_size: int) -> dict:
    # The service as its info.json describes it when the indexer read that: a level 0
    # service often lists its sizes there only.
    described = item.best_service
    service = ImageService.from_dict(described) if described else None
    manifest_label = best_label(item.manifest_label)
    width, height = _shown_size(item, service)
    return {
        "id": item.id,
        "label": best_label(item.canvas_label) or manifest_label,
        "manifest_id": item.manifest_id,
        "manifest_label": manifest_label,
        "canvas_id": item.canvas_id,
        "canvas_index": item.canvas_index,
        "labels": item.canvas_label,
        **_pictures(item, service, thumbnail_size),
        "width": width,
        "height": height,
        "region": item.region,
        "crop": _crop(item, service),
    }


def item_summary(item: ItemRecord, thumbnail_size: int) -> ItemSummary:
    return ItemSummary(**_summary_fields(item, thumbnail_size))


def hit(result: SearchHit, thumbnail_size: int) -> Hit:
    return Hit(**_summary_fields(result.item, thumbnail_size), score=round(result.score, 5))


def text_hit(result: SearchHit, thumbnail_size: int, in_record: bool) -> TextHit:
    fields = _summary_fields(result.item, thumbnail_size)
    return TextHit(**fields, score=round(result.score, 5), in_record=in_record)


def item_detail(item: ItemRecord, thumbnail_size: int) -> ItemDetail:
    return ItemDetail(
        **_summary_fields(item, thumbnail_size),
        manifest_labels=item.manifest_label,
        canvas_metadata=[MetadataEntry(**entry) for entry in item.canvas_metadata],
        metadata=[MetadataEntry(**entry) for entry in item.metadata],
        summary=item.summary,
        homepage=[Link(**link) for link in item.homepage],
        provider=[Provider(**provider) for provider in item.provider],
        rights=item.rights,
        required_statement=item.required_statement,
        required_statement_label=item.required_label,
        image_service=(item.service or {}).get("id"),
        alternatives=item.alternatives,
        state=item.state,
        failure_reason=item.failure_reason,
    )


# The columns of every export of items (a cluster, a selection): each with its IIIF links.
ITEM_COLUMNS = (
    "item_id",
    "label",
    "manifest_id",
    "manifest_label",
    "canvas_id",
    "thumbnail_url",
    "large_url",
)


def item_csv_lines(items: Iterable[ItemRecord], thumbnail_size: int) -> list[str]:
    """The header, then one line per item, with the links the API gives it."""
    lines = [csv_line(ITEM_COLUMNS)]
    for item in items:
        summary = item_summary(item, thumbnail_size)
        values = (
            summary.id,
            summary.label,
            summary.manifest_id,
            summary.manifest_label,
            summary.canvas_id,
            summary.thumbnail_url or "",
            summary.large_url or "",
        )
        lines.append(csv_line(values))
    return lines
