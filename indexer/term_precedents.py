"""Decisions made on similar images, as evidence for an item's draft terms: the loop that
makes the suggestions better as cataloguers work (USERS.md: "a correct-and-retrain loop
is what makes the machine useful over time").

The model is not retrained. Each decision is kept with the image it was made on; an
item's terms are read beside the decisions made on the images most like it (its nearest
neighbours in the index). A term accepted on more of them than it was rejected is put
forward, even where the model ranked it low; one rejected on more than it was accepted
goes to the end. Each such term says on how many of those images, and how like the item
the closest of them is, so that a cataloguer can judge the evidence (USERS.md: "a
suggestion nobody can judge is worse than none").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .store_terms import Decision, TermStore
from .terms import Suggestion, TermScorer

if TYPE_CHECKING:
    from .search import Searcher

# The images looked at for decisions: few enough to stay like the item in a collection
# of thousands of drawings, enough to catch a cataloguer's pattern.
NEIGHBOURS = 10


@dataclass(frozen=True)
class Precedent:
    """What was decided for one term on an item's neighbours."""

    accepted: int
    rejected: int
    looked_at: int  # how many neighbours were looked at
    nearest_key: int  # the most similar neighbour with a decision on the term
    similarity: float  # its cosine to the item

    @property
    def leaning(self) -> int:
        """+1 accepted more often than rejected, -1 the other way, 0 as often."""
        return (self.accepted > self.rejected) - (self.rejected > self.accepted)


def precedents(
    neighbours: Sequence[tuple[int, float]], decisions: Iterable[Decision]
) -> dict[int, Precedent]:
    """By concept key: the decisions made on `neighbours` ((item key, cosine), closest
    first)."""
    closeness = dict(neighbours)
    counts: dict[int, list[int]] = {}
    nearest: dict[int, int] = {}
    for made in decisions:
        if made.item_key not in closeness:
            continue
        tally = counts.setdefault(made.concept_key, [0, 0])
        tally[0 if made.decision == "accepted" else 1] += 1
        best = nearest.get(made.concept_key)
        if best is None or closeness[made.item_key] > closeness[best]:
            nearest[made.concept_key] = made.item_key
    return {
        concept: Precedent(
            accepted=accepted,
            rejected=rejected,
            looked_at=len(neighbours),
            nearest_key=nearest[concept],
            similarity=round(closeness[nearest[concept]], 6),
        )
        for concept, (accepted, rejected) in counts.items()
    }


def put_in_order(
    suggested: Sequence[int], backed: Sequence[int], found: dict[int, Precedent]
) -> list[int]:
    """The concept keys of an item's list: first those its neighbours' decisions back
    (most accepted first, then the closest), then the model's suggestions in its order,
    then those the decisions speak against. `suggested`: the model's top terms, best
    first; `backed`: terms outside them that the decisions back (the caller judged them
    suggestable)."""
    backing = sorted(
        (key for key in dict.fromkeys([*suggested, *backed]) if _leaning(found, key) > 0),
        key=lambda key: (-(found[key].accepted - found[key].rejected), -found[key].similarity),
    )
    neutral = [key for key in suggested if _leaning(found, key) == 0]
    against = [key for key in suggested if _leaning(found, key) < 0]
    return [*backing, *neutral, *against]


def _leaning(found: dict[int, Precedent], key: int) -> int:
    precedent = found.get(key)
    return 0 if precedent is None else precedent.leaning


@dataclass(frozen=True)
class ListedTerm:
    suggestion: Suggestion  # the model's word on the term, whatever put it in the list
    precedent: Precedent | None


def decisions_nearby(
    searcher: Searcher, terms: TermStore, item_key: int, vector: np.ndarray
) -> dict[int, Precedent]:
    """The decisions made on the NEIGHBOURS images most like the item, by concept key."""
    found = searcher.search_vector(vector, NEIGHBOURS, exclude=(item_key,))
    neighbours = [(hit.item.key, hit.score) for hit in found]
    return precedents(neighbours, terms.decisions_for_items([key for key, _ in neighbours]))


def listed_terms(
    scorer: TermScorer,
    vector: np.ndarray,
    vocabulary: str,
    k: int,
    nearby: dict[int, Precedent],
) -> list[ListedTerm]:
    """An item's terms of one vocabulary, in the order put_in_order gives: the model's
    top `k`, and the terms outside them that decisions on similar images back (the model
    scores them too; a retired term or a facet is not put forward)."""
    suggested = {s.concept.key: s for s in scorer.suggest(vector, vocabulary, k)}
    outside = [key for key, p in nearby.items() if p.leaning > 0 and key not in suggested]
    backed = {}
    for concept in scorer.terms.concepts_by_key(outside).values():
        judged = scorer.judge(vector, concept) if concept.vocabulary == vocabulary else None
        if judged is not None:
            backed[concept.key] = judged
    listed = suggested | backed
    order = put_in_order(list(suggested), list(backed), nearby)
    return [ListedTerm(listed[key], nearby.get(key)) for key in order]
