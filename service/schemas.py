"""Response bodies, as the OpenAPI schema documents them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

LanguageMap = dict[str, list[str]]


class MetadataEntry(BaseModel):
    label: LanguageMap
    value: LanguageMap


class Link(BaseModel):
    url: str = Field(description="A web page (http or https), to open in a new tab.")
    label: LanguageMap = Field(description="What the page is, as its publisher says.")
    language: list[str] = Field(
        default_factory=list, description="The languages of the page, when stated."
    )


class Provider(BaseModel):
    label: LanguageMap = Field(description="Who publishes the object (IIIF 3 `provider`).")
    homepage: list[Link] = Field(default_factory=list)


class Crop(BaseModel):
    """Where the item lies in its linked pictures, when they show the whole image."""

    x: float = Field(description="Left edge, as a fraction of the picture's width.")
    y: float = Field(description="Top edge, as a fraction of the picture's height.")
    w: float = Field(description="Width, as a fraction of the picture's width.")
    h: float = Field(description="Height, as a fraction of the picture's height.")


class ItemSummary(BaseModel):
    id: str = Field(description="Regard's stable id of the image.")
    label: str = Field(description="The canvas label, else the manifest label (French first).")
    labels: LanguageMap = Field(description="The canvas label in all its languages.")
    manifest_id: str = Field(description="IIIF id (URL) of the manifest holding the image.")
    manifest_label: str
    canvas_id: str = Field(description="IIIF id of the canvas the image is painted on.")
    canvas_index: int = Field(description="Position of the canvas in its manifest, from 0.")
    thumbnail_url: str | None = Field(description="A small rendition, from the Image API.")
    preview_url: str | None = Field(description="A rendition of about 1024 pixels.")
    large_url: str | None = Field(
        description="The picture to open in a browser tab: about 2000 pixels on its longest "
        "side, or less, as the Image API service can serve it (a level 0 service: its "
        "largest listed size within that, else its smallest, else the whole image)."
    )
    image_url: str | None = Field(
        description="The image itself (a IIIF Image API URL or file): may be the master "
        "file, too large to open in a browser."
    )
    width: int | None = None
    height: int | None = None
    region: str | None = Field(
        None,
        description='The part of the image that is painted and was embedded, "x,y,w,h" in '
        "the image's pixels (width and height are then the region's); null for the whole.",
    )
    crop: Crop | None = Field(
        None,
        description="Set when the picture links show the whole image although the item is "
        "a region of it (a level 0 Image API service cannot crop; a plain image URL is what "
        "it is): the part of each picture to show, as fractions of its width and height. "
        "Null when the links show the item itself.",
    )


class Hit(ItemSummary):
    score: float = Field(description="Cosine similarity to the query (higher is closer).")


class ItemDetail(ItemSummary):
    manifest_labels: LanguageMap
    canvas_metadata: list[MetadataEntry] = Field(
        description="The canvas's own metadata, as published (often empty)."
    )
    metadata: list[MetadataEntry] = Field(description="The manifest's metadata, as published.")
    summary: LanguageMap = Field(
        default_factory=dict, description="The manifest's summary (IIIF 2 `description`)."
    )
    homepage: list[Link] = Field(
        default_factory=list,
        description="The object's own record at its publisher: IIIF 3 `homepage`, "
        "IIIF 2 `related`.",
    )
    provider: list[Provider] = Field(default_factory=list)
    rights: list[str] = Field(
        default_factory=list,
        description="Every rights and licence statement (IIIF 3 `rights`, IIIF 2 "
        "`license`), a URL where one is given.",
    )
    required_statement: LanguageMap | None = Field(
        None, description="What must be shown with the image (IIIF 2 `attribution`)."
    )
    required_statement_label: LanguageMap | None = Field(
        None, description='The heading of `required_statement` ("Held by"), when given.'
    )
    image_service: str | None = Field(None, description="Base URI of the Image API service.")
    alternatives: list[str] = Field(
        default_factory=list,
        description="Other options of a IIIF Choice (e.g. other lighting); this image is "
        "the default one.",
    )
    state: str = Field(description="indexed, pending, failed or removed.")
    failure_reason: str | None = None


class TextHit(Hit):
    in_record: bool = Field(
        False, description="Its catalogue record also holds every word of the query."
    )


class RecordsFound(BaseModel):
    words: list[str] = Field(
        description="The words every record found holds: the query's, less words such as "
        '"en", "de" or "the" that name no subject.'
    )
    also: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Other words looked for, from the store's vocabularies: for a word of "
        'the query (or the whole query), the other labels of the concept it names ("armchair": '
        '["fauteuil"]). A record holding one of them holds that word.',
    )
    total: int = Field(description="How many searchable items' records hold them all.")
    more: bool = Field(
        description="True when there are more than `total` (counting stopped there); the "
        "results are then the first in the collection's order, not the best."
    )
    results: list[ItemSummary] = Field(
        description="At most k of them, best first: the words in a label count most."
    )


class SearchResponse(BaseModel):
    query: str = Field(description="The query as searched: trimmed, single-spaced, NFC.")
    like: list[ItemSummary] = Field(
        default_factory=list, description="The items the results should look like too."
    )
    unlike: list[ItemSummary] = Field(
        default_factory=list, description="The items the results should look unlike."
    )
    k: int
    max_k: int = Field(description="The most results one request may ask for (REGARD_MAX_K).")
    took_ms: float
    results: list[TextHit] = Field(description="Found by looking at the pictures, closest first.")
    records: RecordsFound | None = Field(
        None,
        description="Found in the catalogue records: items whose record holds every word "
        "of the query; null without words, or with records=false.",
    )


class SimilarResponse(BaseModel):
    item: ItemSummary
    region: str | None = Field(
        None,
        description="The part of the item searched with, as pct:x,y,w,h in percent of what "
        "the item shows; null when the whole item was.",
    )
    k: int
    max_k: int = Field(description="The most results one request may ask for (REGARD_MAX_K).")
    took_ms: float
    results: list[Hit]


class PictureSize(BaseModel):
    width: int
    height: int


class PictureSearchResponse(BaseModel):
    picture: PictureSize = Field(description="The uploaded picture's size, upright.")
    k: int
    max_k: int = Field(description="The most results one request may ask for (REGARD_MAX_K).")
    took_ms: float = Field(description="Decoding, embedding and searching, in the service.")
    results: list[Hit]


class ModelInfo(BaseModel):
    name: str
    pretrained: str
    fingerprint: str
    dim: int | None


class StatsResponse(BaseModel):
    items: int = Field(description="Searchable images.")
    pending: int
    failed: int
    failed_by_reason: dict[str, int]
    removed: int
    skipped: int = Field(description="Canvases with nothing to index (audio, no image...).")
    skipped_by_reason: dict[str, int]
    manifests: int
    model: ModelInfo | None
    generation: int
    terms: dict[str, int] = Field(
        description="vocabularies, concepts (not retired), accepted and rejected terms, reviewers."
    )
    map: dict[str, Any] | None = Field(
        description="The map: items on it, clusters, stale (the store changed since), "
        "updated_at; null before `regard map`."
    )
    index: dict[str, Any] = Field(
        description="The search index in use: kind (exact or ivf), why, its parameters, "
        "size, and whether it is being refreshed."
    )


class HealthResponse(BaseModel):
    status: str
    items: int
    model: str


class ItemsResponse(BaseModel):
    items: list[ItemSummary] = Field(description="The items found, in the order asked.")
    unknown: list[str] = Field(description="Ids asked for that no item has.")
