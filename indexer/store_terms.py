"""The store's vocabularies, their concepts' vectors, and cataloguers' decisions on terms.

A vocabulary read again (the museum updated its thesaurus) keeps its concepts' keys, so
that decisions keep pointing at them; a concept gone from the file is retired (no longer
suggested, still exported with its decisions). A concept whose labels changed loses its
vector, to be embedded again.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import IndexerError
from .store import Store, now
from .vocabulary import Vocabulary

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
DECISIONS = ("accepted", "rejected")


class TermsError(IndexerError):
    """A vocabulary or decision request that cannot be carried out, and why."""


@dataclass(frozen=True)
class StoredConcept:
    key: int
    vocabulary: str
    id: str
    labels: dict[str, str]
    alt_labels: dict[str, list[str]]
    broader: list[str]
    notation: str | None
    retired: bool


@dataclass(frozen=True)
class VocabularyInfo:
    name: str
    title: dict[str, str]
    source: str
    format: str
    languages: list[str]
    concepts: int  # not retired
    retired: int
    embedded: int  # concepts with a vector of the store's model
    decisions: int
    added_at: str
    updated_at: str


@dataclass(frozen=True)
class SaveCounts:
    added: int
    changed: int  # labels changed: embedded again
    unchanged: int
    retired: int


@dataclass(frozen=True)
class MachineSuggestion:
    """What the model said of an item and a concept, kept with a person's decision."""

    score: float
    cosine: float
    rank: int
    scoring: str
    fingerprint: str
    suggested_at: str


@dataclass(frozen=True)
class Decision:
    item_key: int
    concept_key: int
    decision: str
    decided_by: str
    decided_at: str
    suggestion: MachineSuggestion | None


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise TermsError(
            f"{name!r} cannot name a vocabulary: use lower-case letters, digits, '.', '_' "
            "or '-' (at most 64, starting with a letter or digit), as iconclass-furniture"
        )
    return name


class TermStore:
    """The terms' tables of one store, read and written through its connection."""

    def __init__(self, store: Store):
        self.store = store

    # -- vocabularies ----------------------------------------------------------------------

    def save_vocabulary(self, name: str, vocabulary: Vocabulary, source: str) -> SaveCounts:
        check_name(name)
        stamp = now()
        with self.store.writing() as conn:
            conn.execute(
                "INSERT INTO vocabularies (name, title, source, format, languages, added_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "title = excluded.title, source = excluded.source, format = excluded.format, "
                "languages = excluded.languages, updated_at = excluded.updated_at",
                (
                    name,
                    _dumps(vocabulary.title),
                    source,
                    vocabulary.format,
                    _dumps(list(vocabulary.languages)),
                    stamp,
                    stamp,
                ),
            )
            old = {
                row[0]: (row[1], row[2])
                for row in conn.execute(
                    "SELECT id, key, labels FROM concepts WHERE vocabulary = ?", (name,)
                )
            }
            added = changed = unchanged = 0
            for position, concept in enumerate(vocabulary.concepts):
                labels = _dumps(concept.labels)
                values = (
                    labels,
                    _dumps({lang: list(alts) for lang, alts in concept.alt_labels.items()}),
                    _dumps(list(concept.broader)),
                    concept.notation,
                    position,
                )
                if concept.id not in old:
                    conn.execute(
                        "INSERT INTO concepts (labels, alt_labels, broader, notation, position, "
                        "vocabulary, id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (*values, name, concept.id),
                    )
                    added += 1
                    continue
                key, old_labels = old.pop(concept.id)
                conn.execute(
                    "UPDATE concepts SET labels = ?, alt_labels = ?, broader = ?, notation = ?, "
                    "position = ?, retired = 0 WHERE key = ?",
                    (*values, key),
                )
                if old_labels == labels:
                    unchanged += 1
                else:
                    conn.execute("DELETE FROM concept_vectors WHERE concept_key = ?", (key,))
                    changed += 1
            retired = [key for key, _ in old.values()]
            conn.executemany("UPDATE concepts SET retired = 1 WHERE key = ?", _rows(retired))
            bump_revision(conn)
        return SaveCounts(added, changed, unchanged, len(retired))

    def remove_vocabulary(self, name: str, forget_decisions: bool = False) -> int:
        """Remove a vocabulary and its concepts; returns how many decisions went with it.
        Refused while decisions use it, unless `forget_decisions`."""
        with self.store.writing() as conn:
            known = conn.execute("SELECT 1 FROM vocabularies WHERE name = ?", (name,))
            if known.fetchone() is None:
                raise TermsError(self._unknown(conn, name))
            in_vocabulary = "SELECT key FROM concepts WHERE vocabulary = ?"
            decided = conn.execute(
                f"SELECT COUNT(*) FROM term_decisions WHERE concept_key IN ({in_vocabulary})",
                (name,),
            ).fetchone()[0]
            if decided and not forget_decisions:
                raise TermsError(
                    f"cataloguers made {decided} decision(s) with vocabulary {name!r}: export "
                    "them first (regard export), then remove it with --forget-decisions"
                )
            for table in ("term_decisions", "concept_vectors"):
                conn.execute(f"DELETE FROM {table} WHERE concept_key IN ({in_vocabulary})", (name,))
            conn.execute("DELETE FROM concepts WHERE vocabulary = ?", (name,))
            conn.execute("DELETE FROM vocabularies WHERE name = ?", (name,))
            bump_revision(conn)
        return decided

    def vocabularies(self, fingerprint: str | None = None) -> list[VocabularyInfo]:
        conn = self.store.reader()
        rows = conn.execute(
            "SELECT v.*, "
            "(SELECT COUNT(*) FROM concepts c WHERE c.vocabulary = v.name AND NOT c.retired) "
            "  AS live, "
            "(SELECT COUNT(*) FROM concepts c WHERE c.vocabulary = v.name AND c.retired) "
            "  AS retired, "
            "(SELECT COUNT(*) FROM concepts c JOIN concept_vectors cv ON cv.concept_key = c.key "
            "  WHERE c.vocabulary = v.name AND NOT c.retired AND cv.fingerprint = ?) AS embedded, "
            "(SELECT COUNT(*) FROM term_decisions d JOIN concepts c ON c.key = d.concept_key "
            "  WHERE c.vocabulary = v.name) AS decisions "
            "FROM vocabularies v ORDER BY v.name",
            (fingerprint,),
        )
        return [
            VocabularyInfo(
                name=row["name"],
                title=json.loads(row["title"]),
                source=row["source"],
                format=row["format"],
                languages=json.loads(row["languages"]),
                concepts=row["live"],
                retired=row["retired"],
                embedded=row["embedded"],
                decisions=row["decisions"],
                added_at=row["added_at"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    def vocabulary_names(self) -> list[str]:
        rows = self.store.reader().execute("SELECT name FROM vocabularies ORDER BY name")
        return [row[0] for row in rows]

    def require(self, name: str) -> None:
        """Raise TermsError, naming the vocabularies there are, unless `name` is one."""
        if name not in self.vocabulary_names():
            raise TermsError(self._unknown(self.store.reader(), name))

    def revision(self) -> int:
        """Grows with every change to the vocabularies, their concepts or their vectors:
        what a reader of them keeps is good while this stays the same."""
        row = (
            self.store.reader()
            .execute("SELECT value FROM meta WHERE key = 'terms_revision'")
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def save_scoring(self, scoring: dict[str, Any]) -> None:
        """How the store's model scores terms (its logit scale and bias): suggestions can
        then be made from the stored vectors without loading the model."""
        with self.store.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('term_scoring', ?)", (json.dumps(scoring),)
            )

    def scoring(self) -> dict[str, Any] | None:
        row = (
            self.store.reader()
            .execute("SELECT value FROM meta WHERE key = 'term_scoring'")
            .fetchone()
        )
        return None if row is None else json.loads(row[0])

    def summary(self) -> dict[str, Any]:
        """Counts for `regard stats` and /api/stats."""
        conn = self.store.reader()
        decided = dict(
            conn.execute("SELECT decision, COUNT(*) FROM term_decisions GROUP BY decision")
        )
        return {
            "vocabularies": conn.execute("SELECT COUNT(*) FROM vocabularies").fetchone()[0],
            "concepts": conn.execute("SELECT COUNT(*) FROM concepts WHERE NOT retired").fetchone()[
                0
            ],
            "accepted": decided.get("accepted", 0),
            "rejected": decided.get("rejected", 0),
            "reviewers": conn.execute("SELECT COUNT(*) FROM reviewers").fetchone()[0],
        }

    # -- concepts and their vectors ----------------------------------------------------------

    def concepts_to_embed(self, fingerprint: str, prompt_set: str) -> list[StoredConcept]:
        """Live concepts without a vector made by this model and prompt set."""
        rows = self.store.reader().execute(
            "SELECT c.* FROM concepts c LEFT JOIN concept_vectors cv ON cv.concept_key = c.key "
            "AND cv.fingerprint = ? AND cv.prompts = ? WHERE NOT c.retired "
            "AND cv.concept_key IS NULL ORDER BY c.vocabulary, c.position",
            (fingerprint, prompt_set),
        )
        return [_concept(row) for row in rows]

    def save_concept_vectors(
        self, keys: Sequence[int], vectors: np.ndarray, fingerprint: str, prompt_set: str
    ) -> None:
        rows = [
            (key, np.asarray(vector, dtype=np.float32).tobytes(), fingerprint, prompt_set)
            for key, vector in zip(keys, vectors, strict=True)
        ]
        with self.store.writing() as conn:
            conn.executemany("INSERT OR REPLACE INTO concept_vectors VALUES (?, ?, ?, ?)", rows)
            bump_revision(conn)

    def concept_matrix(self, name: str, fingerprint: str) -> tuple[list[StoredConcept], np.ndarray]:
        """A vocabulary's live concepts that have a vector of this model, with the vectors
        as rows of a float32 matrix."""
        rows = (
            self.store.reader()
            .execute(
                "SELECT c.*, cv.vector FROM concepts c JOIN concept_vectors cv "
                "ON cv.concept_key = c.key WHERE c.vocabulary = ? AND NOT c.retired "
                "AND cv.fingerprint = ? ORDER BY c.position",
                (name, fingerprint),
            )
            .fetchall()
        )
        concepts = [_concept(row) for row in rows]
        if not rows:
            return concepts, np.zeros((0, 0), dtype=np.float32)
        matrix = np.frombuffer(b"".join(row["vector"] for row in rows), dtype=np.float32)
        return concepts, matrix.reshape(len(rows), -1)

    def concepts(self, name: str, include_retired: bool = True) -> list[StoredConcept]:
        where = "" if include_retired else " AND NOT retired"
        rows = self.store.reader().execute(
            f"SELECT * FROM concepts WHERE vocabulary = ?{where} ORDER BY position", (name,)
        )
        return [_concept(row) for row in rows]

    def concept(self, name: str, concept_id: str) -> StoredConcept | None:
        row = (
            self.store.reader()
            .execute("SELECT * FROM concepts WHERE vocabulary = ? AND id = ?", (name, concept_id))
            .fetchone()
        )
        return None if row is None else _concept(row)

    def concepts_by_key(self, keys: Sequence[int]) -> dict[int, StoredConcept]:
        rows = self.store.reader().execute(
            "SELECT * FROM concepts WHERE key IN (SELECT value FROM json_each(?))",
            (json.dumps(list(keys)),),
        )
        return {row["key"]: _concept(row) for row in rows}

    # -- decisions ---------------------------------------------------------------------------

    def decide(
        self,
        item_key: int,
        concept_key: int,
        decision: str,
        decided_by: str,
        suggestion: MachineSuggestion | None,
    ) -> Decision:
        if decision not in DECISIONS:
            raise TermsError(f"{decision!r} is not a decision: give one of {', '.join(DECISIONS)}")
        made = Decision(item_key, concept_key, decision, decided_by, now(), suggestion)
        self.record([made])
        return made

    def record(self, decisions: Sequence[Decision]) -> None:
        """Write decisions as they are (each replacing any on the same item and concept),
        in one transaction: a reviewer's now, or those read from a file."""
        with self.store.writing() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO term_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        made.item_key,
                        made.concept_key,
                        made.decision,
                        made.decided_by,
                        made.decided_at,
                        *(
                            (s.score, s.cosine, s.rank, s.scoring, s.fingerprint, s.suggested_at)
                            if (s := made.suggestion)
                            else (None,) * 6
                        ),
                    )
                    for made in decisions
                ],
            )

    def forget(self, pairs: Sequence[tuple[int, int]]) -> int:
        """Withdraw the decisions on these (item key, concept key); how many there were."""
        with self.store.writing() as conn:
            return sum(
                conn.execute(
                    "DELETE FROM term_decisions WHERE item_key = ? AND concept_key = ?", pair
                ).rowcount
                for pair in pairs
            )

    def undecide(self, item_key: int, concept_key: int) -> bool:
        return self.forget([(item_key, concept_key)]) > 0

    def decisions_for_item(self, item_key: int) -> list[Decision]:
        rows = self.store.reader().execute(
            "SELECT * FROM term_decisions WHERE item_key = ? ORDER BY decided_at", (item_key,)
        )
        return [_decision(row) for row in rows]

    def decisions_for_items(self, item_keys: Sequence[int]) -> list[Decision]:
        if not item_keys:
            return []
        marks = ",".join("?" * len(item_keys))
        rows = self.store.reader().execute(
            f"SELECT * FROM term_decisions WHERE item_key IN ({marks})", list(item_keys)
        )
        return [_decision(row) for row in rows]

    def all_decisions(self, decision: str | None = None) -> Iterator[Decision]:
        """Every decision (or every one of a kind), by item then concept order."""
        where, params = ("WHERE decision = ?", (decision,)) if decision else ("", ())
        rows = self.store.reader().execute(
            f"SELECT * FROM term_decisions {where} ORDER BY item_key, concept_key", params
        )
        for row in rows:
            yield _decision(row)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _unknown(conn: sqlite3.Connection, name: str) -> str:
        names = [row[0] for row in conn.execute("SELECT name FROM vocabularies ORDER BY name")]
        known = f"this store has {', '.join(names)}" if names else "this store has none yet"
        return f"no vocabulary named {name!r} ({known}): add one with `regard vocab add FILE`"


def bump_revision(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO meta VALUES ('terms_revision', '1') ON CONFLICT(key) DO UPDATE SET "
        "value = CAST(value AS INTEGER) + 1"
    )


def _concept(row: sqlite3.Row) -> StoredConcept:
    return StoredConcept(
        key=row["key"],
        vocabulary=row["vocabulary"],
        id=row["id"],
        labels=json.loads(row["labels"]),
        alt_labels=json.loads(row["alt_labels"]),
        broader=json.loads(row["broader"]),
        notation=row["notation"],
        retired=bool(row["retired"]),
    )


def _decision(row: sqlite3.Row) -> Decision:
    suggestion = None
    if row["fingerprint"] is not None:
        suggestion = MachineSuggestion(
            score=row["score"],
            cosine=row["cosine"],
            rank=row["rank"],
            scoring=row["scoring"],
            fingerprint=row["fingerprint"],
            suggested_at=row["suggested_at"],
        )
    return Decision(
        item_key=row["item_key"],
        concept_key=row["concept_key"],
        decision=row["decision"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        suggestion=suggestion,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))


def _rows(keys: Sequence[int]) -> list[tuple[int]]:
    return [(key,) for key in keys]
