"""A collection moved to another model: what people made in its old store, carried over.

A store never mixes two models' vectors (DESIGN): to try a larger model, the same
sources are indexed into a new store (`regard index --from-store OLD --store NEW --model
…`). What the machine made there is made again; what people made is carried over, never
lost: the vocabularies (their concepts as they stood, retired ones too, embedded again by
the new model), the reviewers (their tokens still work) and every decision on a term,
moved to the same image and concept in the new store. A decision keeps the suggestion it
judged, which names the old model: it is what that model said then.

Carrying over is one transaction, and does nothing twice: run again after an interrupted
index run, it adds what the old store has that the new one does not yet.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from .store import Store
from .store_terms import bump_revision


@dataclass(frozen=True)
class CarriedOver:
    vocabularies: int  # added to the new store now
    concepts: int
    reviewers: int
    decisions: int
    # Decisions on images the new store does not hold (yet): an index run that did not
    # read every source. Running the command again carries them once the images are in.
    decisions_left: int


def sources_of(store: Store) -> list[str]:
    """What the store was indexed from: the sources its complete runs followed, else (a
    first run interrupted) every source a run was given."""
    roots = store.roots()
    if roots:
        return roots
    given: dict[str, None] = {}
    for (sources,) in store.reader().execute("SELECT sources FROM runs ORDER BY id"):
        given.update(dict.fromkeys(json.loads(sources)))
    return list(given)


def _columns(conn: sqlite3.Connection, table: str, leave_out: tuple[str, ...] = ()) -> str:
    names = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    return ", ".join(name for name in names if name not in leave_out)


def carry_over(old: Store, new: Store) -> CarriedOver:
    """Copy `old`'s vocabularies, reviewers and decisions into `new` (see above). Both
    are open, so both are at the same schema."""
    # URIs, so that the old store is attached read-only: it is left exactly as it was.
    main_uri = new.db_path.resolve().as_uri()
    conn = sqlite3.connect(main_uri, uri=True, isolation_level=None, timeout=30)
    try:
        conn.execute("ATTACH DATABASE ? AS old", (old.db_path.resolve().as_uri() + "?mode=ro",))
        conn.execute("BEGIN IMMEDIATE")
        try:
            carried = _copy(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return carried


def _copy(conn: sqlite3.Connection) -> CarriedOver:
    vocabularies = _columns(conn, "vocabularies")
    vocabularies_added = conn.execute(
        f"INSERT OR IGNORE INTO main.vocabularies ({vocabularies}) "
        f"SELECT {vocabularies} FROM old.vocabularies"
    ).rowcount
    concepts = _columns(conn, "concepts", leave_out=("key",))
    concepts_added = conn.execute(
        f"INSERT OR IGNORE INTO main.concepts ({concepts}) "
        f"SELECT {concepts} FROM old.concepts ORDER BY key"
    ).rowcount
    reviewers = _columns(conn, "reviewers")
    reviewers_added = conn.execute(
        f"INSERT OR IGNORE INTO main.reviewers ({reviewers}) SELECT {reviewers} FROM old.reviewers"
    ).rowcount
    # The same image (its id) and the same concept (its vocabulary and URI), by their
    # keys in the new store.
    decided = conn.execute(
        """
        INSERT OR IGNORE INTO main.term_decisions (item_key, concept_key, decision, decided_by,
            decided_at, score, cosine, rank, scoring, fingerprint, suggested_at)
        SELECT ni.key, nc.key, d.decision, d.decided_by, d.decided_at, d.score, d.cosine,
            d.rank, d.scoring, d.fingerprint, d.suggested_at
        FROM old.term_decisions d
        JOIN old.items oi ON oi.key = d.item_key
        JOIN main.items ni ON ni.id = oi.id
        JOIN old.concepts oc ON oc.key = d.concept_key
        JOIN main.concepts nc ON nc.vocabulary = oc.vocabulary AND nc.id = oc.id
        """
    ).rowcount
    left = conn.execute(
        "SELECT COUNT(*) FROM old.term_decisions d JOIN old.items oi ON oi.key = d.item_key "
        "WHERE oi.id NOT IN (SELECT id FROM main.items)"
    ).fetchone()[0]
    if vocabularies_added or concepts_added or decided:
        bump_revision(conn)  # a server over the new store reads the terms anew
    return CarriedOver(vocabularies_added, concepts_added, reviewers_added, decided, left)
