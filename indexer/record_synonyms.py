"""The museum's own thesaurus as a bridge between the words of a query and the words of
the records: "armchair" also finds the records that say "fauteuil", "lampadaire" those
that say "lampe sur pied" (another label of the same concept). The pictures are searched
in French and English by the model; the records, through the vocabularies of the store.

Only labels that a concept gives itself count, preferred or alternative, in any
language: no guess, and a person can read why a record was found (the API says which
other words were looked for).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from .record_text import folded
from .store_terms import StoredConcept, TermStore

# Enough for a concept's labels in a few languages with their synonyms; a label shared
# by many concepts ("study", "détail") would otherwise make a query of everything.
MOST_ALTERNATIVES = 12


def _labels(concept: StoredConcept) -> list[str]:
    labels = list(concept.labels.values())
    for alternatives in concept.alt_labels.values():
        labels.extend(alternatives)
    return [label.strip() for label in labels if label.strip()]


def label_bridges(concepts: Iterable[StoredConcept]) -> dict[str, list[str]]:
    """For each label (accents and case aside), the other labels of the concepts that
    carry it, each once, at most MOST_ALTERNATIVES."""
    bridges: dict[str, dict[str, None]] = {}
    for concept in concepts:
        if concept.retired:
            continue
        labels = _labels(concept)
        for label in labels:
            key = folded(label)
            others = bridges.setdefault(key, {})
            for other in labels:
                if folded(other) != key:
                    others.setdefault(other)
    return {key: list(others)[:MOST_ALTERNATIVES] for key, others in bridges.items() if others}


class ThesaurusWords:
    """The store's vocabularies' label bridges, read again when the vocabularies change
    (the terms revision)."""

    def __init__(self, terms: TermStore):
        self.terms = terms
        self._lock = threading.Lock()
        self._read: tuple[int, dict[str, list[str]]] | None = None

    def alternatives(self, text: str) -> list[str]:
        """Other labels of the concepts labelled `text` (a word, or a whole query)."""
        return self.current()(text)

    def current(self) -> Callable[[str], list[str]]:
        """`alternatives` over the vocabularies as they are now, read once: for the
        several words of one query."""
        bridges = self._bridges()
        return lambda text: bridges.get(folded(" ".join(text.split())), [])

    def _bridges(self) -> dict[str, list[str]]:
        revision = self.terms.revision()
        with self._lock:
            if self._read is None or self._read[0] != revision:
                concepts = [
                    concept
                    for name in self.terms.vocabulary_names()
                    for concept in self.terms.concepts(name, include_retired=False)
                ]
                self._read = (revision, label_bridges(concepts))
            return self._read[1]
