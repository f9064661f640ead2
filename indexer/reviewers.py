"""Who may change a store through the service: reviewers, each with a secret token.

Only a hash of each token is stored, so that a copy of the store gives nobody a way in.
A decision carries its reviewer's name, as W3C annotations name their Person.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from .store import Store, now
from .store_terms import TermsError

MAX_NAME = 80


@dataclass(frozen=True)
class Reviewer:
    name: str
    added_at: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_reviewer(store: Store, name: str) -> str:
    """Make a reviewer and return their new token (shown once: only its hash is kept).
    A reviewer already there gets a new token; the old one stops working."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ch in name for ch in "\r\n\t"):
        raise TermsError(
            f"{name!r} cannot name a reviewer: give their name or initials, on one line, "
            f"at most {MAX_NAME} characters"
        )
    token = secrets.token_urlsafe(24)
    with store.writing() as conn:
        conn.execute(
            "INSERT INTO reviewers VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "token_hash = excluded.token_hash",
            (name, _hash(token), now()),
        )
    return token


def remove_reviewer(store: Store, name: str) -> None:
    """Take a reviewer's token away; their decisions stay, under their name."""
    with store.writing() as conn:
        if conn.execute("DELETE FROM reviewers WHERE name = ?", (name,)).rowcount == 0:
            raise TermsError(f"no reviewer named {name!r}: `regard reviewer list` shows them")


def reviewers(store: Store) -> list[Reviewer]:
    rows = store.reader().execute("SELECT name, added_at FROM reviewers ORDER BY name")
    return [Reviewer(row[0], row[1]) for row in rows]


def reviewer_of(store: Store, token: str) -> str | None:
    """The name of the reviewer whose token this is, if any."""
    row = (
        store.reader()
        .execute("SELECT name FROM reviewers WHERE token_hash = ?", (_hash(token),))
        .fetchone()
    )
    return None if row is None else row[0]
