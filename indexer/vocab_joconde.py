"""The plain French term lists of the Service des musées de France (Joconde lexiques).

One term a line, the hierarchy written by indentation, ``a = b`` for a preferred term and
its synonyms, and a few header lines (title, "Mise à jour mai 2014", usage notes) before
the terms. The files have no identifiers, so each term gets
``urn:regard:<file stem>:<percent-encoded label>``: a term listed under two parents is one
concept with both.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from indexer.vocabulary import Concept, Vocabulary, make_vocabulary, read_text, unique

_EXPECTED = (
    "give a list with one term a line, children indented by one tab more than their parent "
    "and synonyms written 'term = synonym'"
)


def _term_start(lines: list[str]) -> int:
    """Where the terms begin: at the first paragraph with an indented line.

    The header (title, update date, usage notes) is a few unindented paragraphs; the term
    list is the first paragraph whose hierarchy shows. A list with no hierarchy at all
    keeps its first paragraph as the title when more paragraphs follow.
    """
    paragraphs: list[list[int]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if paragraphs and paragraphs[-1][-1] == i - 1:
            paragraphs[-1].append(i)
        else:
            paragraphs.append([i])
    for paragraph in paragraphs:
        if any(lines[i][:1] in (" ", "\t") for i in paragraph):
            return paragraph[0]
    return paragraphs[1][0] if len(paragraphs) > 1 else 0


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _level(line: str, space_unit: int | None) -> tuple[int, str]:
    """The depth of a line and its text.

    A tab is one level; spaces mixed with tabs (lexrepr writes "\\t \\t \\t") are filler.
    A file indented with spaces only counts `space_unit` spaces a level. The "  - name"
    bullets of lexepoq and lexrepr sit one level below their tabs.
    """
    indent = _indent(line)
    text = line[len(indent) :].strip()
    level = len(indent) // space_unit if space_unit else indent.count("\t")
    if text.startswith("-"):
        level += 1
        text = text.lstrip("- ")
    return level, text


def read_joconde(path: Path, default_language: str | None = None) -> Vocabulary:
    lines = read_text(path).splitlines()
    start = _term_start(lines)
    language = default_language or "fr"
    title = {language: next(line.strip() for line in lines if line.strip())} if start else {}
    terms = [(n, line) for n, line in enumerate(lines[start:], start + 1) if line.strip()]
    spaces = [len(_indent(line)) for _, line in terms]
    tabbed = any(line.startswith("\t") for _, line in terms)
    space_unit = None if tabbed else min((s for s in spaces if s), default=None)

    alt: dict[str, list[str]] = {}  # preferred label -> synonyms, in file order
    broader: dict[str, list[str]] = {}
    warnings: list[str] = []
    stack: list[tuple[int, str]] = []  # the open ancestors: (level, label)
    for number, line in terms:
        level, text = _level(line, space_unit)
        # "a = b = c": the first is the term, the others its synonyms; spaces collapsed.
        pref, *synonyms = (" ".join(part.split()) for part in text.split("="))
        if not any(ch.isalnum() for ch in pref):
            # Such as the "?" placeholders at the end of several lists.
            warnings.append(f"{path}:{number}: line skipped: {text!r} is not a term")
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        alt.setdefault(pref, []).extend(synonyms)
        parents = broader.setdefault(pref, [])
        if stack and stack[-1][1] != pref:
            parents.append(stack[-1][1])
        stack.append((level, pref))

    stem = quote(path.stem, safe="")

    def id_of(label: str) -> str:
        return f"urn:regard:{stem}:{quote(label, safe='')}"

    concepts = []
    for pref, synonyms in alt.items():
        alt_labels = unique(synonyms, pref)
        concepts.append(
            Concept(
                id=id_of(pref),
                labels={language: pref},
                alt_labels={language: alt_labels} if alt_labels else {},
                broader=unique(id_of(parent) for parent in broader[pref]),
            )
        )
    return make_vocabulary(path, concepts, "joconde", title, warnings, _EXPECTED)
