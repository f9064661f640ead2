"""One item, and the items that look like it."""

from __future__ import annotations

import io
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from indexer.folders import load_file_image, may_read_file
from indexer.images import DEFAULT_MAX_PIXELS, DecodeError, decode_image
from indexer.query_picture import (
    Part,
    PartError,
    PictureUnavailable,
    item_size,
    parse_part,
    part_tensor,
    with_size,
)
from indexer.search import Hit
from indexer.store import ItemRecord

from ..context import ContextDep, ServiceContext
from ..errors import BadGateway, BadRequest, NotFound
from ..item_lookup import find_item, why_no_vector
from ..presenters import hit, item_detail, item_summary
from ..schemas import ItemDetail, ItemsResponse, SimilarResponse
from .limits import DEFAULT_K, Count, blank_means, check_k, require_utf8_query

router = APIRouter(tags=["items"], dependencies=[Depends(require_utf8_query)])

ItemId = Annotated[str, Path(description="Regard's id of the image, as search returns it.")]


MAX_IDS = 200


@router.get("/items", response_model=ItemsResponse)
async def get_items(
    ctx: ContextDep,
    ids: Annotated[
        list[str],
        Query(alias="id", description=f"Item ids, `id` repeated (at most {MAX_IDS})."),
    ],
) -> ItemsResponse:
    """Several items' summaries at once, in the order asked (the map's pictures)."""
    if len(ids) > MAX_IDS:
        raise BadRequest(
            f"{len(ids)} ids asked for; the limit is {MAX_IDS}: ask in several requests",
            code="too_many_ids",
        )
    asked = list(dict.fromkeys(ids))  # each once, in the order asked
    found = await run_in_threadpool(ctx.store.items_by_ids, asked)
    size = ctx.settings.thumbnail_size
    return ItemsResponse(
        items=[item_summary(found[i], size) for i in asked if i in found],
        unknown=[i for i in asked if i not in found],
    )


@router.get("/items/{item_id}", response_model=ItemDetail)
async def get_item(ctx: ContextDep, item_id: ItemId) -> ItemDetail:
    item = await run_in_threadpool(find_item, ctx, item_id)
    return item_detail(item, ctx.settings.thumbnail_size)


@router.get(
    "/items/{item_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def local_image(
    ctx: ContextDep,
    item_id: ItemId,
    size: Annotated[
        int | None, Query(ge=16, le=4096, description="Longest side."), blank_means(None)
    ] = None,
) -> Response:
    """The picture of an item indexed from a local folder, or a file:// image of a
    manifest read from a local file (IIIF items link to their own Image API instead)."""
    item = await run_in_threadpool(find_item, ctx, item_id)
    file_url = item.image_url or ""
    if not file_url.startswith("file://"):
        raise NotFound(
            f"item {item_id!r} is not a local file: its image is at {item.image_url}",
            code="not_a_local_file",
        )
    # Only files of an indexed folder, or of a manifest read from a local file: a file://
    # URL that a remote document gave (in a store filled before such URLs were refused)
    # must never be read and served.
    if not may_read_file(item):
        raise NotFound(
            f"item {item_id!r} was not indexed from a local folder or a manifest file: "
            "its file is not served",
            code="not_a_local_file",
        )
    try:
        body = await run_in_threadpool(render_local_image, file_url, size)
    except (OSError, DecodeError) as error:
        raise NotFound(
            f"the image file of item {item_id!r} cannot be read: {error}", code="unreadable_file"
        ) from error
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


def render_local_image(url: str, size: int | None) -> bytes:
    data = load_file_image(url, max_bytes=256 * 1024 * 1024)
    image = decode_image(data, min_side=size or 1_000_000)
    if size:
        image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@router.get("/items/{item_id}/similar", response_model=SimilarResponse)
async def similar(
    ctx: ContextDep,
    item_id: ItemId,
    k: Annotated[Count, Query(description="How many neighbours (empty: the default).")] = DEFAULT_K,
    region: Annotated[
        str | None,
        Query(
            description="Search with this part of the item only: pct:x,y,w,h in percent of "
            "what it shows, or x,y,w,h in its pixels (as IIIF writes a region)."
        ),
    ] = None,
) -> SimilarResponse:
    check_k(k, ctx.settings.max_k)
    item = await run_in_threadpool(find_item, ctx, item_id)
    started = time.perf_counter()
    part = None
    if region and region.strip():
        try:
            part, results = await _similar_to_part(ctx, item, region, k)
        except PartError as error:
            raise BadRequest(str(error), code="bad_region") from error
        except PictureUnavailable as error:
            raise BadGateway(
                f"the picture of item {item.id!r} could not be had to cut the region from: "
                f"{error}. Try again later, or search with the whole item",
                code="picture_unavailable",
            ) from error
    else:
        found = await run_in_threadpool(ctx.searcher.similar, item, k)
        if found is None:
            why = why_no_vector(item)
            raise BadRequest(f"item {item_id!r} has no vector: {why}", code="no_vector")
        results = found
    size = ctx.settings.thumbnail_size
    return SimilarResponse(
        item=item_summary(item, size),
        region=part.label if part else None,
        k=k,
        max_k=ctx.settings.max_k,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        results=[hit(r, size) for r in results],
    )


async def _similar_to_part(
    ctx: ServiceContext, item: ItemRecord, region: str, k: int
) -> tuple[Part, list[Hit]]:
    """The part of the item that `region` names, and its neighbours: the part is fetched
    from the item's image server (or its file) and embedded now; the item itself is left
    out, as for the whole item. Raises PartError or PictureUnavailable."""
    item = await run_in_threadpool(with_size, item, ctx.fetcher)
    part = parse_part(region, item_size(item))
    tensor = await run_in_threadpool(
        part_tensor, item, part, ctx.fetcher, ctx.encoder.encoder, DEFAULT_MAX_PIXELS
    )
    vector = await run_in_threadpool(ctx.encoder.embed_tensors, [tensor])
    return part, await run_in_threadpool(ctx.searcher.search_vector, vector[0], k, (item.key,))
