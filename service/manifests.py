"""Images as a IIIF Presentation 3 Manifest (indexer/iiif_out.py), with the links the
service gives them: a selection sent to /api/export/selection, a cluster of the map."""

from __future__ import annotations

from urllib.parse import urljoin

from indexer.iiif_out import PRESENTATION_3, SelectedImage, selection_manifest
from indexer.store import ItemRecord

from .presenters import item_summary

IIIF_MEDIA_TYPE = f'application/ld+json;profile="{PRESENTATION_3}"'


def items_manifest(
    items: list[ItemRecord],
    base: str,
    thumbnail_size: int,
    manifest_id: str,
    label: str | None,
    left_out: int = 0,
) -> dict:
    """The items' manifest; `base` the service's address (links to a local file's
    picture are made absolute with it), `left_out` how many asked for are not in it."""
    images = []
    for item in items:
        summary = item_summary(item, thumbnail_size)
        # A local file's links are the service's own, relative: absolute in a manifest.
        images.append(
            SelectedImage(
                item=item,
                thumbnail_url=absolute(base, summary.thumbnail_url),
                width=summary.width,
                height=summary.height,
                image_url=absolute(base, summary.image_url),
            )
        )
    return selection_manifest(images, manifest_id, label, left_out)


def absolute(base: str, url: str | None) -> str | None:
    """A link the service gives relative (a local file's picture) made absolute; an
    absolute one (an image server's) as it is."""
    return urljoin(base, url) if url else None
