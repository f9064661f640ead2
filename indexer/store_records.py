"""The catalogue records' words in the store (the FTS5 table `item_records`), kept with
the items they describe, and searched: which searchable items hold every word of a query.

The table is derived, like the index: one row per item (rowid = the item's key), its
`title` (manifest and canvas labels) and `body` (summary and metadata values), rewritten
for a manifest's items in the transaction that saves the manifest. Accents and case are
ignored (FTS5's unicode61 tokenizer, remove_diacritics 2): "Royere" finds "Royère".
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from .record_text import (
    match_expression,
    phrase_expression,
    query_words,
    quoted,
    record_body,
    record_title,
)

# Counting the items that match stops here: "fauteuil" in a million records is "more
# than 10,000", found in milliseconds, where ranking them all would take a second.
COUNT_CAP = 10_000
# Labels weigh more than the rest: a record titled "Lampadaire" is about a floor lamp;
# one whose notes mention a lamp may not be.
_RANK = "bm25(item_records, 4.0, 1.0)"

_RECORD_ROWS = """
    SELECT i.key, i.canvas_label, i.canvas_metadata, m.label, m.summary, m.metadata
    FROM items i JOIN manifests m ON m.id = i.manifest_id
"""


def _loads(text: str | None) -> object:
    return None if text is None else json.loads(text)


def _write(conn: sqlite3.Connection, rows: Iterable[sqlite3.Row | tuple]) -> None:
    conn.executemany(
        "INSERT INTO item_records(rowid, title, body) VALUES (?, ?, ?)",
        (
            (
                key,
                record_title(_loads(manifest_label), _loads(canvas_label)),
                record_body(_loads(summary), _loads(metadata), _loads(canvas_metadata)),
            )
            for key, canvas_label, canvas_metadata, manifest_label, summary, metadata in rows
        ),
    )


def refresh_manifest_records(conn: sqlite3.Connection, manifest_id: str) -> None:
    """Rewrite the records of a manifest's items, within the caller's transaction."""
    conn.execute(
        "DELETE FROM item_records WHERE rowid IN (SELECT key FROM items WHERE manifest_id = ?)",
        (manifest_id,),
    )
    _write(conn, conn.execute(_RECORD_ROWS + " WHERE i.manifest_id = ?", (manifest_id,)))


def fill_records(conn: sqlite3.Connection) -> None:
    """Write every item's record (a store made before the table was)."""
    _write(conn, conn.execute(_RECORD_ROWS).fetchall())


@dataclass(frozen=True)
class RecordMatches:
    words: list[str]  # what every record found holds
    total: int  # searchable items found, counted up to COUNT_CAP + 1
    more: bool  # total is a lower bound: more were found than counted
    keys: list[int]  # the best first, at most the number asked for
    # Every key found, when they were all counted (not `more`): hits are checked
    # against it rather than asked of FTS5 again.
    found: frozenset[int] | None
    expression: str = ""  # the FTS5 expression searched
    # Other words looked for, from the store's vocabularies: by word of the query (or
    # the whole query), the labels of the concepts it names.
    also: dict[str, list[str]] = field(default_factory=dict)


NO_MATCHES = RecordMatches([], 0, False, [], frozenset())
Alternatives = Callable[[str], list[str]]


def find_records(
    conn: sqlite3.Connection,
    query: str,
    k: int,
    exclude: Collection[int] = (),
    alternatives: Alternatives | None = None,
) -> RecordMatches:
    """The searchable items whose record holds every word of `query` (or, where
    `alternatives` gives them, another label of the concept a word or the whole query
    names), with how many there are, and the `k` best: first those that hold the query
    word for word ("RY 500", an inventory number typed with its space; "table basse"),
    then by FTS5's bm25, words in labels weighing most. Past COUNT_CAP, those that hold
    it word for word, then the first in the collection's order: ranking more would cost
    more than it tells. `exclude`: keys never counted nor returned (a search's example
    images)."""
    words = query_words(query)
    if not words:
        return NO_MATCHES
    left_out = ",".join(str(int(key)) for key in exclude)
    # "+i.state": found through the records (MATCH), then each item by its key; with the
    # index on state, SQLite would walk every searchable item and ask FTS5 of each.
    matching = (
        "FROM item_records r JOIN items i ON i.key = r.rowid "
        "WHERE item_records MATCH ? AND +i.state = 'indexed'"
        + (f" AND r.rowid NOT IN ({left_out})" if left_out else "")
    )

    def keys(expression: str, order: str, limit: int) -> list[int]:
        rows = conn.execute(f"SELECT r.rowid {matching} {order} LIMIT ?", (expression, limit))
        return [key for (key,) in rows]

    also = _also(query, words, alternatives)
    expression = match_expression(words, also)
    whole = " ".join(query.split())
    if len(words) > 1 and also.get(whole):
        # The whole query is a label ("floor lamp"): its concept's other labels too.
        expression = f"({expression}) OR " + " OR ".join(quoted(a) for a in also[whole])
    found = keys(expression, "", COUNT_CAP + 1)
    more = len(found) > COUNT_CAP
    order = "" if more else f"ORDER BY {_RANK}"
    # Word for word: the query as typed, stopwords and signs included, as one phrase.
    exact = keys(phrase_expression(query), order, k) if len(words) > 1 else []
    if more:
        first = list(dict.fromkeys([*exact, *found]))[:k]
        return RecordMatches(words, COUNT_CAP, True, first, None, expression, also)
    best = list(dict.fromkeys([*exact, *keys(expression, order, k)]))[:k]
    return RecordMatches(words, len(found), False, best, frozenset(found), expression, also)


def _also(query: str, words: list[str], alternatives: Alternatives | None) -> dict[str, list[str]]:
    if alternatives is None:
        return {}
    asked = [*words, " ".join(query.split())] if len(words) > 1 else words
    return {text: found for text in asked if (found := alternatives(text))}


def holding_records(conn: sqlite3.Connection, matches: RecordMatches, keys: list[int]) -> set[int]:
    """Which of `keys` are among `matches` (their records hold every word)."""
    if not matches.words:
        return set()
    if matches.found is not None:
        return {key for key in keys if key in matches.found}
    expression = matches.expression
    return {
        key
        for key in keys
        if conn.execute(
            "SELECT 1 FROM item_records WHERE item_records MATCH ? AND rowid = ?",
            (expression, key),
        ).fetchone()
    }
