"""Decisions on terms read from a CSV file: the other half of `regard export --format
csv`. Cataloguers who review in a spreadsheet, or in an annotation tool that writes CSV
(TORNE-H reviewed in Label Studio), bring their decisions back into the store, where they
teach the terms' order (term_precedents) as the viewer's do.

The file is read whole before anything is written: each row's image and term must be in
the store; rows that cannot be taken are named with their line and why, and the others
are written. Importing the same file again changes nothing (a decision replaces the one
on the same image and term), and completes an import that was interrupted.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .store import Store, now
from .store_terms import Decision, MachineSuggestion, TermsError, TermStore

REQUIRED = ("item_id", "vocabulary", "concept_id", "decision")
# "suggested": the machine's unreviewed top terms that `regard export --suggestions`
# adds, which are not decisions; "undecided" withdraws one.
SKIPPED = "suggested"
WITHDRAWN = "undecided"


@dataclass
class ImportReport:
    decided: Counter[str] = field(default_factory=Counter)  # accepted, rejected, undecided
    skipped: int = 0  # the machine's suggestions, not decisions
    problems: list[str] = field(default_factory=list)  # "line 12: no image 'x' in this store"


def import_decisions(store: Store, path: Path, reviewer: str | None = None) -> ImportReport:
    """Read `path` and record its decisions; `reviewer` names the person for rows whose
    `decided_by` is empty (or for a file without the column)."""
    terms = TermStore(store)
    report = ImportReport()
    made: list[Decision] = []
    withdrawn: list[tuple[int, int]] = []
    with _opened(path) as rows:
        for line, row in rows:
            decision = (row.get("decision") or "").strip().lower()
            if decision == SKIPPED:
                report.skipped += 1
                continue
            problem, keys = _keys(store, terms, row)
            by = (row.get("decided_by") or "").strip() or reviewer
            if problem is None and decision not in ("accepted", "rejected", WITHDRAWN):
                problem = f"the decision {decision!r} is none of accepted, rejected, undecided"
            if problem is None and not by and decision != WITHDRAWN:
                problem = "no reviewer: fill decided_by, or give --reviewer NAME"
            if problem is not None or keys is None:
                report.problems.append(f"{path.name}:{line}: {problem}")
                continue
            report.decided[decision] += 1
            if decision == WITHDRAWN:
                withdrawn.append(keys)
            else:
                assert by is not None
                made.append(Decision(*keys, decision, by, _when(row), _suggestion(row)))
    terms.record(made)
    terms.forget(withdrawn)
    return report


@contextmanager
def _opened(path: Path) -> Iterator[Iterator[tuple[int, dict[str, str]]]]:
    """The CSV's rows with their line numbers; TermsError for a file that is not one."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise TermsError(f"{path}: cannot be read ({error.strerror})") from error
    with handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
        if missing:
            raise TermsError(
                f"{path}: no column {', '.join(missing)}; a file of decisions has at least "
                f"{', '.join(REQUIRED)} (as `regard export --format csv` writes them)"
            )
        yield ((reader.line_num, row) for row in reader)


def _keys(
    store: Store, terms: TermStore, row: dict[str, str]
) -> tuple[str | None, tuple[int, int] | None]:
    item_id = (row.get("item_id") or "").strip()
    item = store.get_item(item_id)
    if item is None:
        return f"no image {item_id!r} in this store", None
    vocabulary = (row.get("vocabulary") or "").strip()
    try:
        terms.require(vocabulary)
    except TermsError:
        return f"no vocabulary {vocabulary!r} in this store (`regard vocab list`)", None
    concept_id = (row.get("concept_id") or "").strip()
    concept = terms.concept(vocabulary, concept_id)
    if concept is None:
        return f"no concept {concept_id!r} in vocabulary {vocabulary!r}", None
    return None, (item.key, concept.key)


def _when(row: dict[str, str]) -> str:
    """When it was decided, as the file says (ISO 8601), else now."""
    said = (row.get("decided_at") or "").strip()
    try:
        datetime.fromisoformat(said.replace("Z", "+00:00"))
    except ValueError:
        return now()
    return said


def _suggestion(row: dict[str, str]) -> MachineSuggestion | None:
    """The model's word the decision judged, as the export writes it; None without it."""
    if (row.get("machine_suggestion") or "").strip().lower() != "yes":
        return None
    try:
        return MachineSuggestion(
            score=float(row["score"]),
            cosine=float(row["cosine"]),
            rank=int(row["rank"]),
            scoring=row["scoring"],
            fingerprint=row["model"],
            suggested_at=row["suggested_at"],
        )
    except (KeyError, ValueError):
        return None
