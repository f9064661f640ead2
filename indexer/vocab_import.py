"""Adding a thesaurus to a store: read it, save its concepts, embed their labels.

Embedding is committed a batch of terms at a time: an interrupted import keeps what it
did, and the same command embeds only what is missing (a thesaurus of 15,000 terms takes
minutes on a CPU). Regard ships two small default vocabularies for decorative arts
(indexer/vocabularies/), added by name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.term_prompts import PROMPT_SET, embed_terms

from .store import Store
from .store_terms import SaveCounts, TermsError, TermStore, check_name
from .terms import ModelScoring
from .vocabulary import read_vocabulary

BUNDLED_FOLDER = Path(__file__).parent / "vocabularies"
TERMS_PER_BATCH = 128


def bundled_vocabularies() -> dict[str, Path]:
    """The vocabularies shipped with Regard, by name."""
    return {path.stem: path for path in sorted(BUNDLED_FOLDER.glob("*.csv"))}


@dataclass(frozen=True)
class ImportReport:
    name: str
    source: str
    counts: SaveCounts
    embedded: int  # terms embedded by this run
    warnings: tuple[str, ...]


def resolve_source(source: str) -> Path:
    """A file, or the name of a vocabulary Regard ships."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    bundled = bundled_vocabularies()
    if source in bundled:
        return bundled[source]
    raise TermsError(
        f"{source}: no such file, nor a vocabulary Regard ships ({', '.join(bundled)}): "
        "give a SKOS (Turtle, RDF/XML) or CSV thesaurus file"
    )


def default_name(path: Path) -> str:
    """A vocabulary name from a file name: 'Thésaurus Meubles.ttl' → 'thesaurus-meubles'."""
    plain = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9._-]+", "-", plain.lower()).strip("-._")[:64]
    return check_name(name or "vocabulary")


def add_vocabulary(
    store: Store,
    embed_texts: Callable[[list[str]], np.ndarray],
    scoring: ModelScoring,
    source: str,
    name: str | None = None,
    file_format: str | None = None,
    default_language: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Read `source`, save it as vocabulary `name` and embed the terms still missing a
    vector of the store's model (`embed_texts` and `scoring` are that model's).
    `progress(done, total)` follows the embedding."""
    path = resolve_source(source)
    name = check_name(name) if name else default_name(path)
    vocabulary = read_vocabulary(path, file_format, default_language)
    terms = TermStore(store)
    counts = terms.save_vocabulary(name, vocabulary, str(path))
    terms.save_scoring(scoring.to_dict())
    embedded = embed_missing(terms, embed_texts, scoring.fingerprint, progress)
    return ImportReport(name, str(path), counts, embedded, vocabulary.warnings)


def embed_missing(
    terms: TermStore,
    embed_texts: Callable[[list[str]], np.ndarray],
    fingerprint: str,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed every live concept of the store that has no vector of this model yet."""
    missing = terms.concepts_to_embed(fingerprint, PROMPT_SET)
    for start in range(0, len(missing), TERMS_PER_BATCH):
        batch = missing[start : start + TERMS_PER_BATCH]
        vectors = embed_terms(embed_texts, [concept.labels for concept in batch])
        terms.save_concept_vectors([c.key for c in batch], vectors, fingerprint, PROMPT_SET)
        if progress is not None:
            progress(start + len(batch), len(missing))
    return len(missing)
