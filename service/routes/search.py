"""Free-text search, `GET /api/search?q=&k=`, and search by an uploaded picture,
`POST /api/search/image?k=`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from indexer.images import DecodeError
from indexer.query_picture import picture_of_upload
from indexer.search import SEARCHABLE_STATE, Hit, QueryCancelsOut, clean_query
from indexer.store import ItemRecord
from indexer.store_records import RecordMatches, find_records, holding_records

from ..context import ContextDep, ServiceContext
from ..errors import BadRequest
from ..item_lookup import find_item, why_no_vector
from ..presenters import hit, item_summary, text_hit
from ..schemas import PictureSearchResponse, PictureSize, RecordsFound, SearchResponse
from ..uploads import UPLOAD_BODY, read_upload
from .limits import DEFAULT_K, Count, check_k, require_utf8_query

router = APIRouter(tags=["search"], dependencies=[Depends(require_utf8_query)])


MAX_EXAMPLES = 8


@router.get("/search", response_model=SearchResponse)
async def search(
    ctx: ContextDep,
    q: Annotated[str, Query(description="What to look for, in French or English.")] = "",
    k: Annotated[Count, Query(description="How many results (empty: the default).")] = DEFAULT_K,
    like: Annotated[
        list[str] | None,
        Query(
            description="Items the results should also look like (their ids, repeated): "
            "with words, images like both; alone, images like them."
        ),
    ] = None,
    unlike: Annotated[
        list[str] | None,
        Query(description="Items the results should look unlike (ids, repeated)."),
    ] = None,
    records: Annotated[
        bool, Query(description="Also look for the words in the catalogue records.")
    ] = True,
) -> SearchResponse:
    """Images found by looking at the pictures, and items whose catalogue records hold
    the words. The liked and unliked items themselves are never among the results."""
    like, unlike = like or [], unlike or []
    query = _checked_query(q, ctx.settings.max_query_length, examples=bool(like))
    check_k(k, ctx.settings.max_k)
    _check_examples(like, unlike)
    started = time.perf_counter()
    # Encoding, FAISS and SQLite are blocking work: off the event loop.
    found = await run_in_threadpool(_search, ctx, query, like, unlike, k, records)
    size = ctx.settings.thumbnail_size
    return SearchResponse(
        query=query,
        like=[item_summary(item, size) for item in found.like],
        unlike=[item_summary(item, size) for item in found.unlike],
        k=k,
        max_k=ctx.settings.max_k,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        results=[text_hit(h, size, h.item.key in found.in_record) for h in found.hits],
        records=None
        if found.records is None
        else RecordsFound(
            words=found.records.words,
            also=found.records.also,
            total=found.records.total,
            more=found.records.more,
            results=[item_summary(item, size) for item in found.record_items],
        ),
    )


def _checked_query(q: str, limit: int, examples: bool) -> str:
    query = clean_query(q)
    if not query and not examples:
        raise BadRequest(
            "the query is empty: give some words to search for, as ?q=fauteuil, or an item "
            "to look like, as ?like=ITEM_ID",
            code="empty_query",
        )
    if len(query) > limit:
        raise BadRequest(
            f"the query is {len(query)} characters long; the limit is {limit}: shorten it",
            code="query_too_long",
        )
    return query


def _check_examples(like: list[str], unlike: list[str]) -> None:
    if len(like) + len(unlike) > MAX_EXAMPLES:
        raise BadRequest(
            f"{len(like) + len(unlike)} items given with like= and unlike=; at most "
            f"{MAX_EXAMPLES} may be: keep the ones that matter most",
            code="too_many_examples",
        )
    both = sorted(set(like) & set(unlike))
    if both:
        raise BadRequest(
            f"item {both[0]!r} is given both as like= and as unlike=: keep it in one of them",
            code="like_and_unlike",
        )


@dataclass(frozen=True)
class _Found:
    like: list[ItemRecord]
    unlike: list[ItemRecord]
    hits: list[Hit]
    records: RecordMatches | None
    record_items: list[ItemRecord]
    in_record: set[int]


def _search(
    ctx: ServiceContext, query: str, like: list[str], unlike: list[str], k: int, records: bool
) -> _Found:
    liked = [find_item(ctx, item_id) for item_id in dict.fromkeys(like)]
    unliked = [find_item(ctx, item_id) for item_id in dict.fromkeys(unlike)]
    try:
        hits = ctx.searcher.search_combined(
            query,
            [_vector_of(ctx, item) for item in liked],
            [_vector_of(ctx, item) for item in unliked],
            k,
            exclude=[item.key for item in liked + unliked],
        )
    except QueryCancelsOut as error:
        raise BadRequest(str(error), code="query_cancels_out") from error
    matches = None
    record_items: list[ItemRecord] = []
    in_record: set[int] = set()
    if records and query:
        conn = ctx.store.reader()
        examples = [item.key for item in liked + unliked]
        matches = find_records(conn, query, k, examples, ctx.thesaurus.current())
        by_key = ctx.store.items_by_key(matches.keys)
        record_items = [by_key[key] for key in matches.keys if key in by_key]
        in_record = holding_records(conn, matches, [h.item.key for h in hits])
    return _Found(liked, unliked, hits, matches, record_items, in_record)


def _vector_of(ctx: ServiceContext, item: ItemRecord) -> np.ndarray:
    vector = ctx.store.vector_of(item.key) if item.state == SEARCHABLE_STATE else None
    if vector is None:
        raise BadRequest(
            f"item {item.id!r} cannot be an example: {why_no_vector(item)}", code="no_vector"
        )
    return vector


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
