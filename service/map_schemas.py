"""Response bodies of the map's endpoints, as the OpenAPI schema shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .schemas import Hit


class ClusterTerm(BaseModel):
    id: str = Field(description="The concept's URI.")
    vocabulary: str
    labels: dict[str, str] = Field(description="Preferred label per language.")


class ClusterSummary(BaseModel):
    id: int
    x: float = Field(description="Where its most central item lies, across, 0..1.")
    y: float = Field(description="Where its most central item lies, down, 0..1.")
    size: int = Field(description="Its searchable items.")
    names: dict[str, str] = Field(
        description="Its name per language, from the terms that tell it from the rest of "
        "the collection: a machine's naming. Empty when the store has no vocabulary."
    )
    terms: list[ClusterTerm] = Field(description="The terms its name is made of.")
    samples: list[Hit] = Field(description="A few of its items nearest its centre.")


class MapResponse(BaseModel):
    items: int = Field(description="Searchable items on the map.")
    searchable: int = Field(description="Searchable items in the store.")
    stale: bool = Field(
        description="The store changed since the map was made: run `regard map` again "
        "(new items are missing from the map until then)."
    )
    made_at: str
    updated_at: str
    landmarks: int = Field(description="Items the layout was fitted on.")
    clusters: list[ClusterSummary]


class MapPointsResponse(BaseModel):
    made_at: str = Field(
        description="When the map was made: pages of two makings (`regard map` ran while a "
        "client paged) differ here, and the client starts again."
    )
    total: int = Field(description="Points on the whole map.")
    offset: int
    next: int | None = Field(
        description="Give it as `after` for the next page (each page then comes as fast "
        "as the first); null after the last page."
    )
    ids: list[str] = Field(description="Item ids, in the order of x, y and cluster.")
    x: list[float] = Field(description="Across, 0..1 (left to right).")
    y: list[float] = Field(description="Down, 0..1 (top to bottom).")
    cluster: list[int]


class ClusterResponse(BaseModel):
    cluster: ClusterSummary
    k: int
    results: list[Hit] = Field(description="Its items nearest its centre, nearest first.")
