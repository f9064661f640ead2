"""The words of an item's catalogue record, and a person's query over them.

What a museum already wrote about an image (the manifest's label, summary and metadata
values; the canvas's label and metadata values) is searched word by word beside the
pictures (SQLite FTS5, see store_records). Here: which texts count, and how a query typed
in a search box becomes an FTS5 expression that cannot be read as FTS5's own syntax.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_TAG = re.compile(r"<[^>]*>")
_WORD_CHARACTER = re.compile(r"\w")

# Words that hold no subject, dropped from queries: "fauteuil en fer forgé" finds the
# record "Fauteuil, fer forgé". French and English, the viewer's languages; compared
# without accents or case.
STOPWORDS = frozenset(
    """
    a à au aux avec ce ces d dans de des du en et l la le les ou par pour sa sans se ses
    son sur un une
    an and at by for from in of on or the to with
    """.split()
)


def language_map_texts(lmap: Any) -> list[str]:
    """Every value of a language map, in every language, without HTML (IIIF allows a
    few tags in values: `<a href>`, `<b>`…; their names and URLs are not words of the
    record)."""
    if not isinstance(lmap, dict):
        return []
    texts = []
    for values in lmap.values():
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str):
                text = " ".join(html.unescape(_TAG.sub(" ", value)).split())
                if text:
                    texts.append(text)
    return texts


def metadata_values(entries: Any) -> list[str]:
    """The values of {label, value} metadata entries. Not their labels: "Date" or
    "Technique" head every record of a collection and would make every one match."""
    if not isinstance(entries, list):
        return []
    return [
        text
        for entry in entries
        if isinstance(entry, dict)
        for text in language_map_texts(entry.get("value"))
    ]


def record_title(manifest_label: Any, canvas_label: Any) -> str:
    return _joined(language_map_texts(manifest_label) + language_map_texts(canvas_label))


def record_body(summary: Any, metadata: Any, canvas_metadata: Any) -> str:
    return _joined(
        language_map_texts(summary) + metadata_values(metadata) + metadata_values(canvas_metadata)
    )


def _joined(texts: Iterable[str]) -> str:
    # Each text once (a canvas label often repeats its manifest's), one per line.
    return "\n".join(dict.fromkeys(texts))


def folded(word: str) -> str:
    """Lower case without accents: how FTS5's tokenizer compares words."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# French elision: "d'applique" is "applique" after "de", which a record may not follow.
_ELISION = re.compile(r"^(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu)['’]", re.IGNORECASE)


def query_words(query: str) -> list[str]:
    """The words of a query that a record must hold: whitespace-separated, each with at
    least one letter or digit, stopwords and French elisions dropped ("d'applique" is
    "applique"). "2009.12.3" stays one word, searched as a phrase of its parts."""
    words = (_ELISION.sub("", word) for word in query.split())
    return [
        word for word in words if _WORD_CHARACTER.search(word) and folded(word) not in STOPWORDS
    ]


def _number_forms(word: str) -> list[str]:
    """A word and its plural or singular in French and English, by their regular
    endings: "fauteuil" also finds "fauteuils", "lampes" also "lampe", "bijou" "bijoux",
    "boxes" "box". Whole words only: "table" does not find "tableau" (as a prefix would).
    Words with digits or signs ("2009.12.3", "Louis-XV") stay as they are."""
    if not word.isalpha() or len(word) < 3:
        return [word]
    # Singulars of four letters at least: "prix", "gris", "lits" are too short to tell
    # a plural from a word, and stay as they are.
    lower = word.casefold()
    if lower.endswith("es") and len(word) >= 6:
        forms = [word, word[:-1], word[:-2]]  # lampes: lampe; glasses: glass
    elif lower.endswith(("s", "x")) and len(word) >= 5:
        forms = [word, word[:-1]]  # fauteuils, bijoux
    elif lower.endswith(("s", "x")):
        forms = [word]
    else:
        forms = [word, word + "s", word + "x"]
        if lower.endswith(("ch", "sh", "z")):
            forms.append(word + "es")  # bench: benches
    return forms


def quoted(text: str) -> str:
    """Text as one FTS5 string: a phrase of its words, whatever signs it holds."""
    return '"' + text.replace('"', '""') + '"'


def match_expression(
    words: list[str], alternatives: Mapping[str, Sequence[str]] | None = None
) -> str:
    """An FTS5 expression that every word must match (in one of its number forms, or
    as one of its `alternatives`), each form a quoted phrase: quotes, `*`, `-`, `AND`,
    `NEAR` or `column:` typed by a person are then text, not syntax."""
    groups = []
    for word in words:
        forms = [*_number_forms(word), *(alternatives or {}).get(word, ())]
        groups.append("(" + " OR ".join(quoted(form) for form in dict.fromkeys(forms)) + ")")
    return " AND ".join(groups)


def phrase_expression(query: str) -> str:
    """The whole query as one FTS5 phrase: its words in order, next to each other."""
    return quoted(" ".join(query.split()))
