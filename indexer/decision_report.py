"""How the machine did, by the reviewers' own decisions: for each vocabulary, what was
accepted and rejected at each of the model's ranks, and how often the decisions on the
most similar images (term_precedents) would have said the same as each decision.

USERS.md: Wikimedia Commons switched its machine tagging off when its suggestions proved
irrelevant; a museum should see, from its own cataloguers' work, whether the suggestions
earn their place, and whether the list learns from the decisions. The second figure is a
leave-one-out replay: each decided image is looked at as if it were new, with the
decisions on its neighbours only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .store_terms import Decision, TermStore
from .term_precedents import decisions_nearby

if TYPE_CHECKING:
    from .search import Searcher

# The model's rank for the term when it was decided, in groups a cataloguer reads at a
# glance: its first choice, the next two, the rest of a panel's first ten, beyond.
RANK_GROUPS = (("1", 1, 1), ("2-3", 2, 3), ("4-10", 4, 10), ("11+", 11, None))
UNSCORED = "unscored"  # no rank: the term was chosen without the model's word


@dataclass
class Tally:
    accepted: int = 0
    rejected: int = 0

    def add(self, decision: str) -> None:
        if decision == "accepted":
            self.accepted += 1
        else:
            self.rejected += 1


@dataclass
class VocabularyReport:
    vocabulary: str
    decisions: Tally = field(default_factory=Tally)
    reviewers: set[str] = field(default_factory=set)
    by_rank: dict[str, Tally] = field(
        default_factory=lambda: {name: Tally() for name, _, _ in RANK_GROUPS} | {UNSCORED: Tally()}
    )
    # The leave-one-out replay: the neighbours' decisions leaned the same way as the
    # decision, the other way, or not at all (none, or as many each way).
    agreed: int = 0
    disagreed: int = 0
    silent: int = 0


def rank_group(rank: int | None) -> str:
    if rank is None:
        return UNSCORED
    for name, low, high in RANK_GROUPS:
        if rank >= low and (high is None or rank <= high):
            return name
    return UNSCORED


def decision_report(terms: TermStore, searcher: Searcher) -> list[VocabularyReport]:
    """One report per vocabulary with decisions, by name."""
    store = terms.store
    by_item: dict[int, list[Decision]] = defaultdict(list)
    for made in terms.all_decisions():
        by_item[made.item_key].append(made)
    concepts = terms.concepts_by_key(
        list({made.concept_key for decided in by_item.values() for made in decided})
    )
    reports: dict[str, VocabularyReport] = {}
    for item_key, decided in by_item.items():
        vector = store.vector_of(item_key)
        nearby = {} if vector is None else decisions_nearby(searcher, terms, item_key, vector)
        for made in decided:
            name = concepts[made.concept_key].vocabulary
            report = reports.setdefault(name, VocabularyReport(name))
            report.decisions.add(made.decision)
            report.reviewers.add(made.decided_by)
            rank = made.suggestion.rank if made.suggestion else None
            report.by_rank[rank_group(rank)].add(made.decision)
            precedent = nearby.get(made.concept_key)
            leaning = 0 if precedent is None else precedent.leaning
            wanted = 1 if made.decision == "accepted" else -1
            if leaning == 0:
                report.silent += 1
            elif leaning == wanted:
                report.agreed += 1
            else:
                report.disagreed += 1
    return [reports[name] for name in sorted(reports)]
