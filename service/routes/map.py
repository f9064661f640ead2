"""The map of the collection: its clusters, its points (by pages), one cluster's items."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urljoin

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from indexer.search import Hit
from indexer.store import ItemRecord
from indexer.store_map import Cluster, MapStore
from indexer.store_vectors import vectors_by_key

from ..context import ContextDep, ServiceContext
from ..errors import BadRequest, NotFound
from ..manifests import IIIF_MEDIA_TYPE, items_manifest
from ..map_schemas import (
    ClusterResponse,
    ClusterSummary,
    ClusterTerm,
    MapPointsResponse,
    MapResponse,
)
from ..presenters import hit, item_csv_lines
from ..schemas import Hit as HitBody
from .limits import blank_means, require_utf8_query

router = APIRouter(tags=["map"], dependencies=[Depends(require_utf8_query)])

SAMPLES = 4
POINTS_PAGE = 50_000
MAX_POINTS_PAGE = 200_000
CENTRAL_MAX = 48  # as many as `regard map` keeps per cluster
PointsPage = Annotated[int, blank_means(POINTS_PAGE)]
ClusterCount = Annotated[int, blank_means(24)]


@router.get("/map", response_model=MapResponse)
async def map_summary(ctx: ContextDep) -> MapResponse:
    """The map: how many items it shows, whether it is behind the store, its clusters
    with their names and a few pictures each."""
    return await run_in_threadpool(_summary, ctx)


@router.get("/map/points", response_model=MapPointsResponse)
async def map_points(
    ctx: ContextDep,
    after: Annotated[
        int,
        Query(ge=0, description="Points after this one: the `next` of the page before."),
    ] = 0,
    offset: Annotated[int, Query(ge=0, description="Points to skip (slower: use after).")] = 0,
    limit: Annotated[PointsPage, Query(description="Points in this page.")] = POINTS_PAGE,
) -> MapPointsResponse:
    """The map's points a page at a time (a browser draws the first while the next
    come), as columns: ids, x, y, cluster; `next` asks for the page after."""
    if not 1 <= limit <= MAX_POINTS_PAGE:
        raise BadRequest(
            f"limit={limit} is out of range: ask for between 1 and {MAX_POINTS_PAGE} points",
            code="limit_out_of_range",
        )
    return await run_in_threadpool(_points, ctx, after, offset, limit)


@router.get("/clusters/{cluster_id}", response_model=ClusterResponse)
async def cluster_items(
    ctx: ContextDep,
    cluster_id: Annotated[int, Path(description="The cluster's id, as /api/map lists it.")],
    k: Annotated[ClusterCount, Query(description="How many of its items.")] = 24,
) -> ClusterResponse:
    """A cluster's items nearest its centre, nearest first."""
    if not 1 <= k <= CENTRAL_MAX:
        raise BadRequest(
            f"k={k} is out of range: ask for between 1 and {CENTRAL_MAX} items",
            code="k_out_of_range",
        )
    return await run_in_threadpool(_cluster, ctx, cluster_id, k)


@router.get("/clusters/{cluster_id}/items.csv")
async def cluster_csv(
    ctx: ContextDep,
    cluster_id: Annotated[int, Path(description="The cluster's id, as /api/map lists it.")],
) -> StreamingResponse:
    """Every item of a cluster, one a line, with its IIIF links: a selection to take
    elsewhere (a spreadsheet, a collection database)."""
    lines = await run_in_threadpool(_cluster_lines, ctx, cluster_id)
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="regard-cluster-{cluster_id}.csv"'},
    )


@router.get(
    "/clusters/{cluster_id}/manifest",
    response_model=None,
    responses={200: {"content": {IIIF_MEDIA_TYPE: {}}}},
)
async def cluster_manifest(
    ctx: ContextDep,
    request: Request,
    cluster_id: Annotated[int, Path(description="The cluster's id, as /api/map lists it.")],
) -> JSONResponse:
    """Every item of a cluster as a IIIF Presentation 3 Manifest, at its own address: a
    IIIF viewer (Mirador, Universal Viewer) opens it by this URL."""
    base = ctx.settings.public_url or str(request.base_url)
    manifest = await run_in_threadpool(_cluster_manifest, ctx, cluster_id, base)
    return JSONResponse(manifest, media_type=IIIF_MEDIA_TYPE)


# -- the work, off the event loop ------------------------------------------------------------


def _points(ctx: ServiceContext, after: int, offset: int, limit: int) -> MapPointsResponse:
    maps, info = _map_store(ctx)
    page = maps.points(limit, after=after, offset=offset)
    return MapPointsResponse(
        made_at=info["made_at"],
        total=sum(ctx.map_counts.sizes(maps, info).values()),
        offset=offset,
        next=page.last_key if len(page.ids) == limit else None,
        ids=page.ids,
        x=page.x,
        y=page.y,
        cluster=page.cluster,
    )


def _cluster_lines(ctx: ServiceContext, cluster_id: int) -> list[str]:
    _, items = _cluster_items(ctx, cluster_id)
    return item_csv_lines(items, ctx.settings.thumbnail_size)


def _cluster_items(ctx: ServiceContext, cluster_id: int) -> tuple[Cluster, list[ItemRecord]]:
    """A cluster and its searchable items, in key order."""
    maps, info = _map_store(ctx)
    found = _find_cluster(ctx, maps, info, cluster_id)
    keys = maps.members(cluster_id).tolist()
    by_key = ctx.store.items_by_key(keys)
    return found, [by_key[key] for key in keys if key in by_key]


def _cluster_manifest(ctx: ServiceContext, cluster_id: int, base: str) -> dict:
    cluster, items = _cluster_items(ctx, cluster_id)
    name = cluster.names.get("fr") or cluster.names.get("en")
    label = f"Groupe « {name} »" if name else f"Groupe {cluster_id + 1}"
    manifest_id = urljoin(base, f"api/clusters/{cluster_id}/manifest")
    return items_manifest(items, base, ctx.settings.thumbnail_size, manifest_id, label)


def _map_store(ctx: ServiceContext) -> tuple[MapStore, dict[str, Any]]:
    """The store's map and what made it; NotFound when there is none."""
    maps = MapStore(ctx.store)
    info = maps.info()
    if info is None:
        raise NotFound(
            "this store has no map yet: make one with `regard map --store DIR`",
            code="no_map",
        )
    return maps, info


def _find_cluster(ctx: ServiceContext, maps: MapStore, info: dict, cluster_id: int) -> Cluster:
    clusters = maps.clusters(ctx.map_counts.sizes(maps, info))
    found = next((c for c in clusters if c.id == cluster_id), None)
    if found is None:
        raise NotFound(
            f"the map has no cluster {cluster_id}: /api/map lists them", code="unknown_cluster"
        )
    return found


def _summary(ctx: ServiceContext) -> MapResponse:
    maps, info = _map_store(ctx)
    sizes = ctx.map_counts.sizes(maps, info)
    clusters = maps.clusters(sizes)
    samples = _central_hits(ctx, clusters, SAMPLES)
    return MapResponse(
        items=sum(sizes.values()),
        searchable=ctx.store.searchable_count(),
        stale=info["generation"] != ctx.store.generation,
        made_at=info["made_at"],
        updated_at=info["updated_at"],
        landmarks=info["landmarks"],
        clusters=[_cluster_summary(c, samples[c.id]) for c in clusters],
    )


def _cluster(ctx: ServiceContext, cluster_id: int, k: int) -> ClusterResponse:
    maps, info = _map_store(ctx)
    found = _find_cluster(ctx, maps, info, cluster_id)
    results = _central_hits(ctx, [found], k)[found.id]
    return ClusterResponse(cluster=_cluster_summary(found, results), k=k, results=results)


def _central_hits(ctx: ServiceContext, clusters: list[Cluster], k: int) -> dict[int, list[HitBody]]:
    """Each cluster's first `k` searchable items nearest its centre, scored by their
    cosine to it: the items and vectors of every cluster read at once."""
    wanted = [key for cluster in clusters for key in cluster.central[:k]]
    items = ctx.store.items_by_key(wanted)
    found, vectors = vectors_by_key(ctx.store.reader(), np.array(wanted, dtype=np.int64))
    vector_of = dict(zip(found.tolist(), vectors, strict=True))
    hits: dict[int, list[HitBody]] = {}
    for cluster in clusters:
        # A vector is read for searchable items only: the others are left out.
        keys = [key for key in cluster.central[:k] if key in vector_of and key in items]
        hits[cluster.id] = [
            hit(
                Hit(items[key], float(np.dot(vector_of[key].astype(np.float32), cluster.centroid))),
                ctx.settings.thumbnail_size,
            )
            for key in keys
        ]
    return hits


def _cluster_summary(cluster: Cluster, hits: list[HitBody]) -> ClusterSummary:
    """The cluster, with the first of its items nearest its centre as samples."""
    return ClusterSummary(
        id=cluster.id,
        x=round(cluster.x, 5),
        y=round(cluster.y, 5),
        size=cluster.size,
        names=cluster.names,
        terms=[ClusterTerm(**term) for term in cluster.terms],
        samples=hits[:SAMPLES],
    )
