"""Terms out, as W3C Web Annotations and CSV: reviewers' decisions, and on request the
model's own suggestions for every item.

Each term becomes a `classifying` annotation of the item's canvas in its manifest, so
that Mirador or Universal Viewer shows it: the concept as a SpecificResource, its labels
as tagging TextualBodies. An accepted term's creator is the Person who accepted it,
with Regard as generator; an unreviewed suggestion's creator is Regard itself, a
Software: machine output is always marked as such. The model's word (model, score,
rank, date) goes with both, as `regard:suggestion`. The CSV has every decision,
rejections too: they are what a model retrained on the museum's judgements needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .csv_lines import csv_line
from .folders import is_folder_item
from .iiif_labels import best_label
from .store import ItemRecord, Store, now
from .store_terms import Decision, MachineSuggestion, StoredConcept, TermStore
from .store_vectors import StoreVectors
from .terms import TermScorer

# Regard's few words of its own (the model's word on a term) under a prefix of its own.
ANNOTATION_CONTEXT: list[Any] = ["http://www.w3.org/ns/anno.jsonld", {"regard": "urn:regard:"}]
CSV_COLUMNS = (
    "item_id",
    "item_label",
    "manifest_id",
    "canvas_id",
    "vocabulary",
    "concept_id",
    "label_fr",
    "label_en",
    "decision",  # accepted | rejected | suggested (the model's, not reviewed)
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
VECTORS_PER_CHUNK = 2048


@dataclass(frozen=True)
class ExportedTerm:
    item: ItemRecord
    concept: StoredConcept
    decision: Decision | None  # None: the model's suggestion, not reviewed
    suggestion: MachineSuggestion | None


def decided_terms(
    store: Store, decision: str | None = None, vocabulary: str | None = None
) -> Iterator[ExportedTerm]:
    """Every decision (or every one of a kind) with its item and concept, by chunks."""
    terms = TermStore(store)
    chunk: list[Decision] = []
    for made in terms.all_decisions(decision):
        chunk.append(made)
        if len(chunk) == CHUNK:
            yield from _joined(store, terms, chunk, vocabulary)
            chunk = []
    yield from _joined(store, terms, chunk, vocabulary)


def _joined(
    store: Store, terms: TermStore, chunk: list[Decision], vocabulary: str | None
) -> Iterator[ExportedTerm]:
    items = store.items_by_key(sorted({d.item_key for d in chunk}))
    concepts = terms.concepts_by_key(sorted({d.concept_key for d in chunk}))
    for made in chunk:
        concept = concepts[made.concept_key]
        if vocabulary is None or concept.vocabulary == vocabulary:
            yield ExportedTerm(items[made.item_key], concept, made, made.suggestion)


def suggested_terms(
    store: Store, scorer: TermScorer, vocabularies: Sequence[str], k: int
) -> Iterator[ExportedTerm]:
    """The model's top `k` terms of each vocabulary for every searchable item, less those
    a reviewer already decided (they go out as decisions). Vectors are read and scored
    a chunk at a time: a million items never sit in memory at once."""
    decided = {(d.item_key, d.concept_key) for d in TermStore(store).all_decisions()}
    stamp = now()
    with StoreVectors(store.db_path).snapshot() as snapshot:
        for keys, vectors in snapshot.chunks(VECTORS_PER_CHUNK):
            items = store.items_by_key(keys.tolist())
            matrix = vectors.astype(np.float32)
            by_vocabulary = [scorer.suggest_many(matrix, name, k) for name in vocabularies]
            for row, key in enumerate(keys.tolist()):
                for suggestions in by_vocabulary:
                    for s in suggestions[row]:
                        if (key, s.concept.key) not in decided:
                            machine = s.machine(scorer.model.fingerprint, stamp)
                            yield ExportedTerm(items[key], s.concept, None, machine)


def annotation(term: ExportedTerm) -> dict[str, Any]:
    """One term as a W3C Web Annotation (JSON-LD)."""
    item, concept, made, suggestion = term.item, term.concept, term.decision, term.suggestion
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
    note: dict[str, Any] = {
        "@context": ANNOTATION_CONTEXT,
        # Stable: the same item and concept give the same id in every export.
        "id": f"urn:regard:term:{_digest(item.id, concept.vocabulary, concept.id)}",
        "type": "Annotation",
        "motivation": "classifying",
        "body": bodies,
        "target": _target(item),
    }
    if made is not None:
        note["creator"] = {"type": "Person", "name": made.decided_by}
        note["created"] = made.decided_at
        note["generator"] = {"type": "Software", "name": "Regard"}
    elif suggestion is not None:
        note["creator"] = {"type": "Software", "name": f"Regard ({suggestion.fingerprint})"}
        note["created"] = suggestion.suggested_at
    note["generated"] = now()
    if suggestion is not None:
        note["regard:suggestion"] = {
            "model": suggestion.fingerprint,
            "scoring": suggestion.scoring,
            "score": suggestion.score,
            "cosine": suggestion.cosine,
            "rank": suggestion.rank,
            "suggestedAt": suggestion.suggested_at,
        }
    return note


def annotation_page(terms: Iterable[ExportedTerm]) -> Iterator[str]:
    """The terms as one AnnotationPage (IIIF viewers read these), as text written one
    annotation at a time: an export of every item's suggestions can be large."""
    header = {"@context": ANNOTATION_CONTEXT, "type": "AnnotationPage"}
    yield json.dumps(header, ensure_ascii=False)[:-1] + ', "items": [\n'
    separator = ""
    for term in terms:
        # Inside a page, annotations take the page's context.
        note = {key: value for key, value in annotation(term).items() if key != "@context"}
        yield separator + json.dumps(note, ensure_ascii=False)
        separator = ",\n"
    yield "\n]}\n"


def csv_rows(terms: Iterable[ExportedTerm]) -> Iterator[str]:
    """The CSV, header first, one term a line."""
    yield csv_line(CSV_COLUMNS)
    for term in terms:
        item, concept, made, s = term.item, term.concept, term.decision, term.suggestion
        yield csv_line(
            (
                item.id,
                best_label(item.canvas_label) or best_label(item.manifest_label),
                item.manifest_id,
                item.canvas_id,
                concept.vocabulary,
                concept.id,
                concept.labels.get("fr", ""),
                concept.labels.get("en", ""),
                made.decision if made else "suggested",
                made.decided_by if made else "",
                made.decided_at if made else "",
                "yes" if s else "no",
                *(
                    (s.score, s.cosine, s.rank, s.scoring, s.fingerprint, s.suggested_at)
                    if s
                    else ("",) * 6
                ),
            )
        )


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
