"""Free-text search, `GET /api/search?q=&k=`, and search by an uploaded picture,
`POST /api/search/image?k=`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from indexer.images import DecodeError
from indexer.query_picture import picture_of_upload
from indexer.search import clean_query

from ..context import ContextDep
from ..errors import BadRequest
from ..presenters import hit
from ..schemas import PictureSearchResponse, PictureSize, SearchResponse
from ..uploads import UPLOAD_BODY, read_upload
from .limits import DEFAULT_K, Count, check_k, require_utf8_query

router = APIRouter(tags=["search"], dependencies=[Depends(require_utf8_query)])


@router.get("/search", response_model=SearchResponse)
async def search(
    ctx: ContextDep,
    q: Annotated[str, Query(description="What to look for, in French or English.")] = "",
    k: Annotated[Count, Query(description="How many results (empty: the default).")] = DEFAULT_K,
) -> SearchResponse:
    query = clean_query(q)
    if not query:
        raise BadRequest(
            "the query is empty: give some words to search for, as ?q=fauteuil",
            code="empty_query",
        )
    limit = ctx.settings.max_query_length
    if len(query) > limit:
        raise BadRequest(
            f"the query is {len(query)} characters long; the limit is {limit}: shorten it",
            code="query_too_long",
        )
    check_k(k, ctx.settings.max_k)
    started = time.perf_counter()
    # Encoding and FAISS are blocking work: off the event loop.
    results = await run_in_threadpool(ctx.searcher.search_text, query, k)
    return SearchResponse(
        query=query,
        k=k,
        max_k=ctx.settings.max_k,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        results=[hit(r, ctx.settings.thumbnail_size) for r in results],
    )


@router.post("/search/image", response_model=PictureSearchResponse, openapi_extra=UPLOAD_BODY)
async def search_by_picture(
    ctx: ContextDep,
    request: Request,
    k: Annotated[Count, Query(description="How many results (empty: the default).")] = DEFAULT_K,
) -> PictureSearchResponse:
    """The images closest to a picture sent with the request: its bytes as the body, or
    the field `image` of a multipart form."""
    check_k(k, ctx.settings.max_k)
    data = await read_upload(request, ctx.settings.max_upload_bytes)
    started = time.perf_counter()
    try:
        picture, (width, height) = await run_in_threadpool(
            picture_of_upload, data, ctx.encoder.encoder.image_size
        )
    except DecodeError as error:
        raise BadRequest(
            f"the picture sent cannot be read: {error}; send a JPEG, PNG, WebP, GIF or TIFF",
            code="not_an_image",
        ) from error
    # Preprocessed here, as the region search does: only the model runs on its thread.
    tensor = await run_in_threadpool(ctx.encoder.encoder.preprocess, picture)
    vector = await run_in_threadpool(ctx.encoder.embed_tensors, [tensor])
    results = await run_in_threadpool(ctx.searcher.search_vector, vector[0], k)
    return PictureSearchResponse(
        picture=PictureSize(width=width, height=height),
        k=k,
        max_k=ctx.settings.max_k,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        results=[hit(r, ctx.settings.thumbnail_size) for r in results],
    )
