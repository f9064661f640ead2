"""Draft subject terms: an item's vector scored against a vocabulary's concept vectors.

Zero-shot, as the model was trained: a SigLIP model scores each concept on its own
(sigmoid of scale * cosine + bias: "how likely is this term"), a CLIP model shares one
unit of belief among the candidates (softmax of scale * cosine over the vocabulary).
Either way the ranking is the cosine's. The top concepts of a vocabulary that has a
hierarchy ("Society, Civilization, Culture", "entités matérielles") are facets, not
subjects: they are not suggested.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .store import now
from .store_terms import MachineSuggestion, StoredConcept, TermsError, TermStore

if TYPE_CHECKING:
    from models import Encoder

MAX_DEPTH = 12  # a broader chain longer than this is a cycle in the file


@dataclass(frozen=True)
class ModelScoring:
    """How the store's model turns a cosine into a score (models.Encoder has these)."""

    fingerprint: str
    scoring: str  # sigmoid | softmax
    logit_scale: float
    logit_bias: float

    @classmethod
    def stored(cls, terms: TermStore) -> ModelScoring:
        """As `regard vocab add` recorded it, for work that needs no model loaded."""
        recorded = terms.scoring()
        if recorded is None:
            raise TermsError(
                "this store has no vocabulary embedded yet: add one with "
                "`regard vocab add FILE --store DIR`"
            )
        return cls(**recorded)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, encoder: Encoder) -> ModelScoring:
        return cls(
            fingerprint=encoder.fingerprint.key,
            scoring=encoder.scoring,
            logit_scale=encoder.logit_scale,
            logit_bias=encoder.logit_bias,
        )


@dataclass(frozen=True)
class Suggestion:
    concept: StoredConcept
    rank: int  # 1: the model's first choice for this item in this vocabulary
    cosine: float
    score: float
    scoring: str

    def machine(self, fingerprint: str, at: str) -> MachineSuggestion:
        return MachineSuggestion(self.score, self.cosine, self.rank, self.scoring, fingerprint, at)


@dataclass
class _Candidates:
    revision: int  # the store's terms revision when read
    concepts: list[StoredConcept]
    matrix: np.ndarray
    by_id: dict[str, StoredConcept]  # every concept, retired too, for broader chains


class TermScorer:
    """Suggests terms from the store's vocabularies; safe to share between threads.

    Each vocabulary's candidates are read once and kept until it changes (a new import
    or new vectors), so that a suggestion costs one matrix-vector product."""

    def __init__(self, terms: TermStore, model: ModelScoring):
        self.terms = terms
        self.model = model
        self._cache: dict[str, _Candidates] = {}
        self._lock = threading.Lock()

    def suggest(self, vector: np.ndarray, vocabulary: str, k: int) -> list[Suggestion]:
        return self.suggest_many(np.asarray(vector)[None, :], vocabulary, k)[0]

    def suggest_many(self, vectors: np.ndarray, vocabulary: str, k: int) -> list[list[Suggestion]]:
        """The top `k` of a vocabulary for each row of `vectors` (one product for all)."""
        candidates = self._candidates(vocabulary)
        cosines, scores = self._score(vectors, candidates)
        k = min(k, cosines.shape[1])
        if k == 0:
            return [[] for _ in range(len(vectors))]
        top = np.argpartition(-cosines, k - 1, axis=1)[:, :k]
        found = []
        for row, columns in enumerate(top):
            # Best first; ties in the order of the vocabulary's file.
            order = columns[np.lexsort((columns, -cosines[row, columns]))]
            found.append(
                [
                    self._suggestion(candidates, cosines[row], scores[row], i, rank)
                    for rank, i in enumerate(order, 1)
                ]
            )
        return found

    def judge(self, vector: np.ndarray, concept: StoredConcept) -> Suggestion | None:
        """What the model says of this one concept for the item: its score and its rank
        among the vocabulary's candidates (None when it is not one: retired, a facet)."""
        candidates = self._candidates(concept.vocabulary)
        index = next((i for i, c in enumerate(candidates.concepts) if c.key == concept.key), None)
        if index is None:
            return None
        cosines, scores = self._score(vector, candidates)
        rank = 1 + int(np.count_nonzero(cosines[0] > cosines[0, index]))
        return self._suggestion(candidates, cosines[0], scores[0], index, rank)

    def broader_chain(self, concept: StoredConcept) -> list[StoredConcept]:
        """Its parents up to the vocabulary's top, through each first parent in the file."""
        by_id = self._candidates(concept.vocabulary).by_id
        chain: list[StoredConcept] = []
        current = concept
        while current.broader and len(chain) < MAX_DEPTH:
            parent = by_id.get(current.broader[0])
            if parent is None or parent is concept or parent in chain:
                break
            chain.append(parent)
            current = parent
        return chain

    def stamped_now(self, suggestion: Suggestion) -> MachineSuggestion:
        return suggestion.machine(self.model.fingerprint, now())

    # -- inside --------------------------------------------------------------------------------

    def _score(self, vectors: np.ndarray, candidates: _Candidates) -> tuple[np.ndarray, np.ndarray]:
        """Cosines and scores, one row per vector, one column per candidate."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if not candidates.concepts:
            empty = np.zeros((len(vectors), 0), dtype=np.float32)
            return empty, empty
        cosines = vectors @ candidates.matrix.T
        logits = self.model.logit_scale * cosines.astype(np.float64) + self.model.logit_bias
        if self.model.scoring == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
        return cosines, scores

    def _suggestion(
        self, candidates: _Candidates, cosines: np.ndarray, scores: np.ndarray, i: int, rank: int
    ) -> Suggestion:
        return Suggestion(
            concept=candidates.concepts[i],
            rank=rank,
            cosine=round(float(cosines[i]), 6),
            score=round(float(scores[i]), 6),
            scoring=self.model.scoring,
        )

    def _candidates(self, vocabulary: str) -> _Candidates:
        revision = self.terms.revision()  # one row: read on every call, cheaply
        with self._lock:
            cached = self._cache.get(vocabulary)
            if cached is not None and cached.revision == revision:
                return cached
        self.terms.require(vocabulary)
        everything = self.terms.concepts(vocabulary)
        concepts, matrix = self.terms.concept_matrix(vocabulary, self.model.fingerprint)
        keep = _suggestable(concepts, everything)
        candidates = _Candidates(
            revision=revision,
            concepts=[concepts[i] for i in keep],
            matrix=matrix[keep] if len(keep) else np.zeros((0, 0), dtype=np.float32),
            by_id={c.id: c for c in everything},
        )
        with self._lock:
            self._cache[vocabulary] = candidates
        return candidates


def _suggestable(
    concepts: Sequence[StoredConcept], everything: Sequence[StoredConcept]
) -> list[int]:
    """Indexes of the concepts to suggest: all but the tops of a hierarchy (no parent,
    some children). A flat list keeps every term."""
    parents = {parent for c in everything for parent in c.broader}
    return [i for i, c in enumerate(concepts) if c.broader or c.id not in parents]
