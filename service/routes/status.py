"""What the service holds, and whether it is up."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from indexer.stats import store_stats

from ..context import ContextDep
from ..schemas import HealthResponse, StatsResponse

router = APIRouter(tags=["status"])


# GET and HEAD: uptime monitors often ask with HEAD. HEAD is left out of the schema: one
# route with both methods gave both operations one id, which client generators refuse.
@router.get("/stats", response_model=StatsResponse)
@router.head("/stats", include_in_schema=False)
async def stats(ctx: ContextDep) -> StatsResponse:
    counts = await run_in_threadpool(store_stats, ctx.store)
    return StatsResponse(**counts, index=ctx.searcher.describe())


@router.get("/health", response_model=HealthResponse)
@router.head("/health", include_in_schema=False)
async def health(ctx: ContextDep) -> HealthResponse:
    index = await run_in_threadpool(ctx.searcher.index)
    return HealthResponse(status="ok", items=index.size, model=ctx.encoder.fingerprint.key)
