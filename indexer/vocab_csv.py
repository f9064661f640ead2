"""Thesauri as CSV: one concept a row, labels in columns named by language.

The layout is the one of the bundled vocabularies (indexer/vocabularies/*.csv):
``id``, ``pref_label_<lang>``, ``alt_labels_<lang>``, ``broader_id``, optional ``notation``;
multi-valued cells are joined with `` | ``. Other columns (scheme, exact_match, …) are
ignored, so a richer export reads as it is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indexer.vocabulary import (
    CSV_HINT,
    Concept,
    Vocabulary,
    VocabularyError,
    make_vocabulary,
    read_text,
    unique,
)

_PREF = re.compile(r"pref_label_(.+)")
# "alt_label_fr" is accepted too: people write it either way.
_ALT = re.compile(r"alt_labels?_(.+)")


def _rows(path: Path, reader: Any) -> Iterator[tuple[int, list[str]]]:
    """The rows with their line numbers; a row the csv module cannot read is an error."""
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise VocabularyError(
            path, f"cannot be read as CSV ({exc}): check the quotes on this line", reader.line_num
        ) from None


def read_csv(path: Path) -> Vocabulary:
    text = read_text(path)
    # French spreadsheets save "CSV" with semicolons: the header line tells which it is.
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    pref = {i: m.group(1) for i, name in enumerate(header) if (m := _PREF.fullmatch(name))}
    alt = {i: m.group(1) for i, name in enumerate(header) if (m := _ALT.fullmatch(name))}
    if "id" not in header or not pref:
        missing = "an 'id' column" if "id" not in header else "a 'pref_label_<lang>' column"
        raise VocabularyError(
            path, f"the header ({', '.join(header)}) has no {missing}: {CSV_HINT}", 1
        )
    column: dict[str, int] = {
        name: header.index(name) for name in ("id", "broader_id", "notation") if name in header
    }

    def cell(row: list[str], name: str | int) -> str:
        i = column.get(name) if isinstance(name, str) else name
        return row[i].strip() if i is not None and i < len(row) else ""

    concepts: dict[str, Concept] = {}
    warnings: list[str] = []
    for line, row in _rows(path, reader):
        if not any(value.strip() for value in row):
            continue
        id_ = cell(row, "id")
        if not id_:
            warnings.append(f"{path}:{line}: row skipped: its id cell is empty")
            continue
        if id_ in concepts:
            warnings.append(f"{path}:{line}: row skipped: id {id_} already on an earlier row")
            continue
        labels = {lang: cell(row, i) for i, lang in pref.items() if cell(row, i)}
        if not labels:
            warnings.append(f"{path}:{line}: row skipped: {id_} has no pref_label_* value")
            continue
        alt_labels = {}
        for i, lang in alt.items():
            # Multi-valued cells are joined with " | ".
            values = unique(cell(row, i).split("|"), labels.get(lang))
            if values:
                alt_labels[lang] = values
        concepts[id_] = Concept(
            id=id_,
            labels=labels,
            alt_labels=alt_labels,
            broader=unique(cell(row, "broader_id").split("|"), id_),
            notation=cell(row, "notation") or None,
        )
    return make_vocabulary(path, list(concepts.values()), "csv", {}, warnings, CSV_HINT)
