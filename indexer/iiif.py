"""A tolerant reader of IIIF Presentation 2.1 and 3.0 manifests and collections.

Pure functions over JSON that is already parsed: nothing here touches the network.
`parse_document` returns a `Manifest` (one `ImageRef` per painted image, and the canvases
skipped with their reasons) or a `Collection` (references to manifests and collections,
and paging links); JSON that is not IIIF raises `NotIIIFError` with a problem a person
understands.

Tolerated, because real publishers do it: a missing or odd ``@context`` (the version is
then inferred from the keys), ``type`` where ``@type`` belongs, single objects where lists
belong, v3 language maps inside v2 documents, http ids (kept as they are). An id that is
not an absolute http(s) URL (a template, a relative id) is replaced by the document's URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.errors import NotIIIFError
from indexer.iiif_canvas import (
    CanvasReader,
    ImageRef,
    Skipped,
    as_list,
    node_id,
    node_types,
)
from indexer.iiif_labels import LanguageMap, best_label, language_map, metadata_entries
from indexer.iiif_record import Link, Provider, homepage, providers, required_label, rights
from indexer.iiif_sequences import read_canvases
from indexer.imageapi import ImageService

__all__ = [
    "Collection",
    "ImageRef",
    "ImageService",
    "LanguageMap",
    "Manifest",
    "Reference",
    "Skipped",
    "best_label",
    "language_map",
    "parse_document",
]


@dataclass
class Manifest:
    """A manifest as the indexer needs it: descriptive fields in all their languages, one
    `ImageRef` per painted image, and what was skipped, with why."""

    id: str
    version: int
    label: LanguageMap
    summary: LanguageMap = field(default_factory=dict)
    metadata: list[dict[str, LanguageMap]] = field(default_factory=list)
    rights: list[str] = field(default_factory=list)
    required_statement: LanguageMap | None = None
    required_label: LanguageMap | None = None
    homepage: list[Link] = field(default_factory=list)
    provider: list[Provider] = field(default_factory=list)
    images: list[ImageRef] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    canvas_count: int = 0  # distinct canvases, of every sequence


@dataclass(frozen=True)
class Reference:
    """A manifest or collection named by a collection, to be fetched by the harvester."""

    id: str
    label: LanguageMap = field(default_factory=dict)


@dataclass
class Collection:
    """A collection, or one page of a paged collection (`first`/`next` link the pages)."""

    id: str
    version: int
    label: LanguageMap
    manifests: list[Reference] = field(default_factory=list)
    collections: list[Reference] = field(default_factory=list)
    first: str | None = None
    next: str | None = None
    total: int | None = None


_DOCUMENT_TYPES = {"manifest": "Manifest", "collection": "Collection"}


def parse_document(doc: Any, source: str) -> Manifest | Collection:
    """Read a parsed JSON document fetched from (or named) `source`.

    Raises `NotIIIFError(source, problem)` when it is not a IIIF manifest or collection.
    A document whose id is not an absolute http(s) URL (missing, relative, a template
    such as ``{{ id.url }}``) takes `source` as its id: its URL, or a local file's
    ``file://`` URI.
    """
    if not isinstance(doc, dict):
        raise NotIIIFError(source, f"is a JSON {_json_kind(doc)}, not a IIIF manifest")
    kind = _document_type(doc, source)
    version = _presentation_version(doc)
    doc_id = _own_id(node_id(doc), source)
    if kind == "Manifest":
        return _read_manifest(doc, doc_id, version)
    return _read_collection(doc, doc_id, version)


def _own_id(declared: str | None, source: str) -> str:
    # Such an id links nowhere, and documents sharing one (every cookbook recipe says
    # "{{ id.url }}") would pass for one manifest: where it was read from is unique.
    if declared and _ABSOLUTE_HTTP.fullmatch(declared):
        return declared
    if re.match(r"(https?|file)://", source, re.IGNORECASE):
        return source
    return Path(source).resolve().as_uri()


_ABSOLUTE_HTTP = re.compile(r"https?://[^/\s{}<>]+[^\s{}<>]*", re.IGNORECASE)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "value"


def _document_type(doc: dict[str, Any], source: str) -> str:
    types = node_types(doc)
    for name in types:
        if name in _DOCUMENT_TYPES:
            return _DOCUMENT_TYPES[name]
    looks_like_info = "width" in doc and "height" in doc and ("profile" in doc or "protocol" in doc)
    if looks_like_info or any(name.startswith("imageservice") for name in types):
        raise NotIIIFError(source, "is an Image API info.json, not a manifest or collection")
    if types:
        raw = doc.get("@type", doc.get("type"))
        raise NotIIIFError(source, f"has type {raw!r}; expected a Manifest or Collection")
    # No type at all: infer it only where the keys leave no doubt.
    if "sequences" in doc:
        return "Manifest"
    if any(key in doc for key in ("manifests", "collections", "members")):
        return "Collection"
    raise NotIIIFError(
        source,
        "is not a IIIF manifest or collection: it has no @type/type "
        "(expected Manifest or Collection)",
    )


def _presentation_version(doc: dict[str, Any]) -> int:
    """2 or 3, from the @context when it says, else from the keys the document uses."""
    for context in as_list(doc.get("@context")):
        if isinstance(context, str):
            if match := re.search(r"iiif\.io/api/presentation/([23])/", context):
                return int(match.group(1))
    raw_type = doc.get("@type", doc.get("type"))
    if isinstance(raw_type, str) and raw_type.startswith("sc:"):
        return 2
    if "sequences" in doc or "@id" in doc:
        return 2
    return 3


def _required_statement(doc: dict[str, Any]) -> LanguageMap | None:
    statement = doc.get("requiredStatement")  # v3, and some v2 publishers use it too
    if isinstance(statement, dict):
        lmap = language_map(statement.get("value"))
        if lmap:
            return lmap
    return language_map(doc.get("attribution")) or None


def _read_manifest(doc: dict[str, Any], doc_id: str, version: int) -> Manifest:
    reader = CanvasReader(doc_id)
    canvas_count = read_canvases(reader, doc, version)
    return Manifest(
        id=doc_id,
        version=version,
        label=language_map(doc.get("label")),
        summary=language_map(doc.get("summary", doc.get("description"))),
        metadata=metadata_entries(doc),
        rights=rights(doc),
        required_statement=_required_statement(doc),
        required_label=required_label(doc),
        homepage=homepage(doc, doc_id),
        provider=providers(doc),
        images=reader.images,
        skipped=reader.skipped,
        canvas_count=canvas_count,
    )


def _reference(entry: Any) -> Reference | None:
    ref_id = node_id(entry)
    if not ref_id:
        return None
    label = language_map(entry.get("label")) if isinstance(entry, dict) else {}
    return Reference(ref_id, label)


def _read_collection(doc: dict[str, Any], doc_id: str, version: int) -> Collection:
    """Members from v2 ``manifests``, ``collections`` and ``members`` and v3 ``items``;
    each id once, in document order. An untyped member of ``members`` or ``items`` is
    taken for a manifest."""
    manifests: dict[str, Reference] = {}
    collections: dict[str, Reference] = {}
    for key in ("manifests", "collections", "members", "items"):
        for entry in as_list(doc.get(key)):
            ref = _reference(entry)
            if ref is None:
                continue
            typed_collection = isinstance(entry, dict) and "collection" in node_types(entry)
            if key == "collections" or (key in ("members", "items") and typed_collection):
                collections.setdefault(ref.id, ref)
            else:
                manifests.setdefault(ref.id, ref)
    total = doc.get("total")
    return Collection(
        id=doc_id,
        version=version,
        label=language_map(doc.get("label")),
        manifests=list(manifests.values()),
        collections=list(collections.values()),
        first=node_id(doc.get("first")),
        next=node_id(doc.get("next")),
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )
