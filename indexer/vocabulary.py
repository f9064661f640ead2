"""Thesaurus files read into one in-memory shape, whatever their format.

Cataloguers bring their museum's own thesaurus: a CSV export, a SKOS file (Turtle,
RDF/XML, …) or one of the Service des musées de France's plain term lists (Joconde).
Each reader (`vocab_csv`, `vocab_skos`, `vocab_joconde`) turns its format into a
`Vocabulary`; `read_vocabulary` picks the reader from the file's suffix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import IndexerError


@dataclass(frozen=True)
class Concept:
    id: str  # the concept's URI (or, for a file without ids, a stable made-up one)
    labels: dict[str, str]  # preferred label per language: {"fr": "fauteuil", "en": "armchair"}
    alt_labels: dict[str, tuple[str, ...]]  # other labels per language
    broader: tuple[str, ...] = ()  # ids of its parents (may name ids not in the file, e.g. AAT)
    notation: str | None = None


@dataclass(frozen=True)
class Vocabulary:
    concepts: tuple[Concept, ...]  # in file order, ids unique
    format: str  # "csv" | "skos" | "joconde"
    title: dict[str, str]  # the scheme's title per language if the file gives one, else {}
    languages: tuple[str, ...]  # languages with at least one preferred label, most labels first
    warnings: tuple[str, ...] = ()  # rows skipped and why, one line each (file:line: what)


class VocabularyError(IndexerError):
    """The file cannot be read as a vocabulary: the message names the file, the place
    (line or concept) when known, what is wrong and what to do."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        place = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{place}: {problem}")


FORMATS = ("csv", "skos", "joconde")

SUFFIXES = {
    ".csv": "csv",
    ".ttl": "skos",
    ".turtle": "skos",
    ".rdf": "skos",
    ".xml": "skos",
    ".owl": "skos",
    ".nt": "skos",
    ".jsonld": "skos",
    ".txt": "joconde",
}

# Shown in errors so that a person knows what a readable CSV looks like.
CSV_HINT = (
    "give a CSV with a header row and columns id, pref_label_fr, pref_label_en, "
    "alt_labels_fr, alt_labels_en, broader_id (any language code after pref_label_; "
    "indexer/vocabularies/*.csv are examples)"
)


def read_vocabulary(
    path: Path, format: str | None = None, default_language: str | None = None
) -> Vocabulary:
    """Read a thesaurus file; `format` overrides the suffix, `default_language` is the
    language of labels that carry none: untagged SKOS literals ("und" when not given) and
    Joconde lists ("fr" when not given). CSV labels always name theirs in the column."""
    path = Path(path)
    chosen = format if format is not None else SUFFIXES.get(path.suffix.lower())
    if chosen not in FORMATS:
        if format is not None:
            what = f"format {format!r} is unknown"
        else:
            what = f"unknown suffix {path.suffix!r}" if path.suffix else "the name has no suffix"
        raise VocabularyError(
            path,
            f"{what}: name the file with one of {', '.join(SUFFIXES)} "
            f"or give its format (regard vocab add --format {'|'.join(FORMATS)})",
        )
    # Imported here: the readers import this module, and rdflib is slow to import.
    if chosen == "csv":
        from indexer.vocab_csv import read_csv

        return read_csv(path)
    if chosen == "skos":
        from indexer.vocab_skos import read_skos

        return read_skos(path, default_language)
    from indexer.vocab_joconde import read_joconde

    return read_joconde(path, default_language)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or a VocabularyError when there is nothing to read."""
    if not path.exists():
        raise VocabularyError(path, "no such file: check the path")
    if not path.is_file():
        raise VocabularyError(path, "is not a file: give the thesaurus file itself")
    data = path.read_bytes()
    if not data.strip():
        raise VocabularyError(path, "the file is empty: export the thesaurus again")
    return data


def read_text(path: Path) -> str:
    """The file as UTF-8 text without a byte-order mark (spreadsheets write one)."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise VocabularyError(
            path,
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8 "
            "(in a spreadsheet: 'CSV UTF-8') and try again",
            line,
        ) from None


def unique(values: Iterable[str], leave_out: str | None = None) -> tuple[str, ...]:
    """Non-empty values, stripped, first occurrence kept, without `leave_out`."""
    seen: dict[str, None] = {}
    for value in values:
        value = value.strip()
        if value and value != leave_out:
            seen.setdefault(value)
    return tuple(seen)


def make_vocabulary(
    path: Path,
    concepts: list[Concept],
    format: str,
    title: dict[str, str],
    warnings: list[str],
    expected: str,
) -> Vocabulary:
    """The finished vocabulary; zero concepts is an error that says what was `expected`."""
    if not concepts:
        skipped = f" ({len(warnings)} entries skipped, first: {warnings[0]})" if warnings else ""
        raise VocabularyError(path, f"no concepts found{skipped}: {expected}")
    counts = Counter(language for concept in concepts for language in concept.labels)
    languages = tuple(sorted(counts, key=lambda language: (-counts[language], language)))
    return Vocabulary(tuple(concepts), format, title, languages, tuple(warnings))
