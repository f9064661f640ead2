"""Turning store records into response bodies, with their IIIF links."""

from __future__ import annotations

from indexer.iiif import best_label
from indexer.imageapi import ImageService, thumbnail_url
from indexer.search import Hit as SearchHit
from indexer.store import ItemRecord

from .schemas import Hit, ItemDetail, ItemSummary, MetadataEntry

PREVIEW_SIZE = 1024


def local_image_url(item: ItemRecord, size: int | None = None) -> str:
    """Images of a local folder are served by the service itself (browsers cannot open
    file:// links from a web page)."""
    return f"/api/items/{item.id}/image" + (f"?size={size}" if size else "")


def _summary_fields(item: ItemRecord, thumbnail_size: int) -> dict:
    service = ImageService.from_dict(item.service) if item.service else None
    manifest_label = best_label(item.manifest_label)
    if item.image_url and item.image_url.startswith("file://"):
        thumbnail, image = local_image_url(item, thumbnail_size), local_image_url(item)
        preview = local_image_url(item, PREVIEW_SIZE)
    elif service:
        thumbnail, image = thumbnail_url(service, thumbnail_size), item.image_url
        preview = thumbnail_url(service, PREVIEW_SIZE)
    else:
        thumbnail = image = preview = item.image_url
    return {
        "id": item.id,
        "label": best_label(item.canvas_label) or manifest_label,
        "manifest_id": item.manifest_id,
        "manifest_label": manifest_label,
        "canvas_id": item.canvas_id,
        "canvas_index": item.canvas_index,
        "labels": item.canvas_label,
        "thumbnail_url": thumbnail,
        "preview_url": preview,
        "image_url": image,
        "width": item.width,
        "height": item.height,
    }


def item_summary(item: ItemRecord, thumbnail_size: int) -> ItemSummary:
    return ItemSummary(**_summary_fields(item, thumbnail_size))


def hit(result: SearchHit, thumbnail_size: int) -> Hit:
    return Hit(**_summary_fields(result.item, thumbnail_size), score=round(result.score, 5))


def item_detail(item: ItemRecord, thumbnail_size: int) -> ItemDetail:
    return ItemDetail(
        **_summary_fields(item, thumbnail_size),
        manifest_labels=item.manifest_label,
        canvas_metadata=[MetadataEntry(**entry) for entry in item.canvas_metadata],
        metadata=[MetadataEntry(**entry) for entry in item.metadata],
        rights=item.rights,
        required_statement=item.required_statement,
        image_service=(item.service or {}).get("id"),
        alternatives=item.alternatives,
        state=item.state,
        failure_reason=item.failure_reason,
    )
