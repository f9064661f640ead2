"""A selection of items (a lasso on the map, a list from elsewhere) exported as CSV or as a
IIIF Presentation 3 Manifest."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Annotated, Literal
from urllib.parse import quote, urljoin

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from indexer.iiif_canvas import stable_id
from indexer.store import ItemRecord

from ..context import ContextDep, ServiceContext
from ..errors import BadRequest, NotFound, TooLarge
from ..manifests import IIIF_MEDIA_TYPE, items_manifest
from ..presenters import item_csv_lines
from .limits import require_utf8_query

router = APIRouter(tags=["map"], dependencies=[Depends(require_utf8_query)])

# A lasso over a dense map can take tens of thousands; a manifest of 100,000 canvases is
# already some 100 MB for a viewer to read.
MAX_SELECTION = 100_000
# The ids left out that the answer names (X-Regard-Skipped-Ids), the count being whole.
NAMED_SKIPPED = 20


class Selection(BaseModel):
    ids: list[str] = Field(description="Item ids, in the order to export them.")
    label: str | None = Field(
        None, max_length=500, description="The selection's name (the manifest's label)."
    )


@router.post(
    "/export/selection",
    response_model=None,
    responses={200: {"content": {"text/csv": {}, IIIF_MEDIA_TYPE: {}}}},
)
async def export_selection(
    ctx: ContextDep,
    request: Request,
    selection: Selection,
    format: Annotated[
        Literal["csv", "iiif"],
        Query(description="csv: one line per image; iiif: a IIIF Presentation 3 Manifest."),
    ] = "csv",
) -> StreamingResponse | JSONResponse:
    """The images of a selection, in the order sent (each once), as CSV or as a IIIF
    Manifest to open in Mirador or Universal Viewer. Ids of images no longer in the
    collection (removed, or never there) are left out and counted in the answer's
    `X-Regard-Skipped` header (the first of them in `X-Regard-Skipped-Ids`)."""
    asked = _check(selection.ids)
    items = await run_in_threadpool(_searchable_items, ctx, asked)
    skipped = [item_id for item_id in asked if item_id not in items]
    if not items:
        examples = ", ".join(repr(i) for i in skipped[:3])
        raise NotFound(
            f"none of the {len(asked)} ids is an image of this collection (e.g. {examples}): "
            "ids come from /api/map/points or /api/search",
            code="unknown_items",
        )
    chosen = [items[item_id] for item_id in asked if item_id in items]
    name = _file_name(selection.label, len(chosen))
    headers = {
        "X-Regard-Skipped": str(len(skipped)),
        "X-Regard-Skipped-Ids": ",".join(quote(i, safe="") for i in skipped[:NAMED_SKIPPED]),
    }
    size = ctx.settings.thumbnail_size
    if format == "csv":
        lines = await run_in_threadpool(item_csv_lines, chosen, size)
        headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return StreamingResponse(iter(lines), media_type="text/csv; charset=utf-8", headers=headers)
    base = ctx.settings.public_url or str(request.base_url)
    # Named after what it holds: the same selection gets the same ids. Not kept: the
    # id names the manifest (and its canvases under it), it does not fetch it.
    digest = stable_id("\n".join(asked))
    manifest_id = urljoin(base, f"api/export/selection/{digest}")
    manifest = await run_in_threadpool(
        items_manifest, chosen, base, size, manifest_id, selection.label, len(skipped)
    )
    headers["Content-Disposition"] = f'attachment; filename="{name}.json"'
    return JSONResponse(manifest, media_type=IIIF_MEDIA_TYPE, headers=headers)


def _check(ids: Sequence[str]) -> list[str]:
    """The ids, each once, in the order sent; BadRequest for none, TooLarge for too many."""
    asked = list(dict.fromkeys(ids))
    if not asked:
        raise BadRequest(
            'the selection is empty: send the ids of the images to export, {"ids": ["…", "…"]}',
            code="empty_selection",
        )
    if len(asked) > MAX_SELECTION:
        raise TooLarge(
            f"{len(asked):,} images selected; an export takes at most {MAX_SELECTION:,}: "
            "select a smaller part, or export it in several parts",
            code="selection_too_large",
        )
    return asked


def _searchable_items(ctx: ServiceContext, ids: list[str]) -> dict[str, ItemRecord]:
    """The items of `ids` that are searchable: those on the map. A removed image (or one
    whose picture failed) is no longer in the collection that people search, so it is
    left out as an unknown id is."""
    found = ctx.store.items_by_ids(ids)
    return {item_id: item for item_id, item in found.items() if item.state == "indexed"}


def _file_name(label: str | None, count: int) -> str:
    """An ASCII file name from the selection's name ("Lampes à pied" → "lampes-a-pied")."""
    plain = unicodedata.normalize("NFKD", label or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:60]
    return f"regard-{slug}" if slug else f"regard-selection-{count}"
