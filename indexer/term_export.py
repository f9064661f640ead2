"""Cataloguers' decisions on terms, out: W3C Web Annotations and CSV.

An accepted term becomes a `classifying` annotation of the item's canvas (in its
manifest), so that Mirador or Universal Viewer shows it: the concept as a
SpecificResource, its labels as tagging TextualBodies. The Person who accepted it is
its creator; Regard and the model that suggested it are its generator, with the score.
The CSV holds every decision, rejections too: they are what a retrained model needs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .folders import is_folder_item
from .iiif_labels import best_label
from .store import ItemRecord, Store, now
from .store_terms import Decision, StoredConcept, TermStore

ANNOTATION_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
CSV_COLUMNS = (
    "item_id",
    "item_label",
    "manifest_id",
    "canvas_id",
    "vocabulary",
    "concept_id",
    "label_fr",
    "label_en",
    "decision",
    "decided_by",
    "decided_at",
    "machine_suggestion",
    "score",
    "cosine",
    "rank",
    "scoring",
    "model",
    "suggested_at",
)
CHUNK = 500


@dataclass(frozen=True)
class DecidedTerm:
    decision: Decision
    item: ItemRecord
    concept: StoredConcept


def decided_terms(store: Store, decision: str | None = None) -> Iterator[DecidedTerm]:
    """Every decision with its item and concept, in chunks (a store may hold many)."""
    terms = TermStore(store)
    chunk: list[Decision] = []
    for made in terms.all_decisions(decision):
        chunk.append(made)
        if len(chunk) == CHUNK:
            yield from _joined(store, terms, chunk)
            chunk = []
    yield from _joined(store, terms, chunk)


def _joined(store: Store, terms: TermStore, chunk: list[Decision]) -> Iterator[DecidedTerm]:
    items = store.items_by_key(sorted({d.item_key for d in chunk}))
    concepts = terms.concepts_by_key(sorted({d.concept_key for d in chunk}))
    for made in chunk:
        yield DecidedTerm(made, items[made.item_key], concepts[made.concept_key])


def annotation(term: DecidedTerm) -> dict[str, Any]:
    """One accepted term as a W3C Web Annotation (JSON-LD)."""
    item, concept, made = term.item, term.concept, term.decision
    bodies: list[dict[str, Any]] = [
        {
            "type": "SpecificResource",
            "purpose": "classifying",
            "source": {
                "id": concept.id,
                "label": {lang: [text] for lang, text in concept.labels.items()},
            },
        }
    ]
    bodies += [
        {"type": "TextualBody", "purpose": "tagging", "value": text, "language": lang}
        for lang, text in concept.labels.items()
    ]
    generator: dict[str, Any] = {"type": "Software", "name": "Regard"}
    suggestion = made.suggestion
    if suggestion is not None:
        generator["name"] = f"Regard, machine suggestion by {suggestion.fingerprint}"
        generator["summary"] = (
            f"{suggestion.scoring} score {suggestion.score:.4f} (cosine {suggestion.cosine:.4f}, "
            f"rank {suggestion.rank}) on {suggestion.suggested_at}"
        )
    return {
        "@context": ANNOTATION_CONTEXT,
        # Stable: the same item and concept give the same id in every export.
        "id": f"urn:regard:term:{_digest(item.id, concept.vocabulary, concept.id)}",
        "type": "Annotation",
        "motivation": "classifying",
        "body": bodies,
        "target": _target(item),
        "creator": {"type": "Person", "name": made.decided_by},
        "created": made.decided_at,
        "generator": generator,
        "generated": now(),
    }


def annotation_page(terms: Iterator[DecidedTerm]) -> dict[str, Any]:
    """The accepted terms as one AnnotationPage (IIIF viewers read these)."""
    return {
        "@context": ANNOTATION_CONTEXT,
        "type": "AnnotationPage",
        # Inside a page, annotations take the page's context.
        "items": [_without_context(annotation(term)) for term in terms],
    }


def csv_rows(terms: Iterator[DecidedTerm]) -> Iterator[str]:
    """The CSV, header first, one decision a line."""
    yield _csv_line(CSV_COLUMNS)
    for term in terms:
        item, concept, made = term.item, term.concept, term.decision
        s = made.suggestion
        yield _csv_line(
            (
                item.id,
                best_label(item.canvas_label) or best_label(item.manifest_label),
                item.manifest_id,
                item.canvas_id,
                concept.vocabulary,
                concept.id,
                concept.labels.get("fr", ""),
                concept.labels.get("en", ""),
                made.decision,
                made.decided_by,
                made.decided_at,
                "yes" if s else "no",
                *(
                    (s.score, s.cosine, s.rank, s.scoring, s.fingerprint, s.suggested_at)
                    if s
                    else ("",) * 6
                ),
            )
        )


def _without_context(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "@context"}


def _target(item: ItemRecord) -> dict[str, Any]:
    if is_folder_item(item.id, item.manifest_id, item.image_url):
        return {"id": item.canvas_id, "type": "Image"}
    return {
        "type": "SpecificResource",
        "source": {
            "id": item.canvas_id,
            "type": "Canvas",
            "partOf": [{"id": item.manifest_id, "type": "Manifest"}],
        },
    }


def _digest(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def _csv_line(values: tuple[Any, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()
