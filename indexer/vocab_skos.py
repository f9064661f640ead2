"""Thesauri in SKOS (Turtle, RDF/XML, N-Triples, JSON-LD), read with rdflib.

Concepts are the subjects typed skos:Concept or, in files that type nothing, the subjects
with a skos:prefLabel. rdflib does not keep the file's order, so concepts come sorted by id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from xml.sax import SAXParseException

from rdflib import RDF, RDFS, SKOS, Graph, Literal, URIRef
from rdflib.namespace import DC, DCTERMS
from rdflib.term import Node

from indexer.vocabulary import (
    Concept,
    Vocabulary,
    VocabularyError,
    make_vocabulary,
    read_bytes,
    read_text,
    unique,
)

_PARSERS = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".rdf": "xml",
    ".xml": "xml",
    ".owl": "xml",
    ".nt": "nt",
    ".jsonld": "json-ld",
}
_NAMES = {"turtle": "Turtle", "xml": "RDF/XML", "nt": "N-Triples", "json-ld": "JSON-LD"}
_NOT_CONCEPTS = (SKOS.ConceptScheme, SKOS.Collection, SKOS.OrderedCollection)
_EXPECTED = "give a SKOS file whose concepts are typed skos:Concept or carry a skos:prefLabel"


def _parse(path: Path) -> Graph:
    parser = _PARSERS.get(path.suffix.lower(), "turtle")
    # RDF/XML declares its own encoding; the other formats are UTF-8 by definition.
    data: str | bytes = read_bytes(path) if parser == "xml" else read_text(path)
    graph = Graph()
    try:
        graph.parse(data=data, format=parser, publicID=path.resolve().as_uri())
    except Exception as exc:  # rdflib's parsers raise many kinds; all mean the same here
        line, why = _where(exc)
        raise VocabularyError(
            path,
            f"is not valid {_NAMES[parser]} ({why}): fix the file there, or export it "
            "again from the thesaurus tool; a file in another RDF syntax needs the matching "
            f"suffix ({', '.join(_PARSERS)})",
            line,
        ) from None
    return graph


def _where(exc: Exception) -> tuple[int | None, str]:
    """The line and the short reason that each parser's exception carries."""
    if isinstance(exc, SAXParseException):
        return exc.getLineNumber(), exc.getMessage()
    if isinstance(exc, json.JSONDecodeError):
        return exc.lineno, exc.msg
    lines = getattr(exc, "lines", None)  # rdflib's Turtle BadSyntax: 0-based line
    why = getattr(exc, "_why", None) or str(exc).splitlines()[0]
    return (lines + 1 if isinstance(lines, int) else None), str(why)


class _Languages:
    """Gives untagged literals a language, and counts them for one warning."""

    def __init__(self, default: str | None):
        self.default = default
        self.untagged = 0

    def of(self, literal: Literal) -> str:
        if literal.language:
            return literal.language.lower()
        self.untagged += 1
        return self.default or "und"

    def grouped(self, values: Iterable[Node]) -> dict[str, list[str]]:
        """Literals per language, tagged before untagged, then sorted: deterministic."""
        literals = sorted(
            (v for v in values if isinstance(v, Literal)),
            key=lambda v: (not v.language, str(v)),
        )
        groups: dict[str, list[str]] = {}
        for literal in literals:
            if str(literal).strip():
                groups.setdefault(self.of(literal), []).append(str(literal).strip())
        return groups


def _concept(
    graph: Graph, node: URIRef, langs: _Languages, warnings: list[str], source: str
) -> Concept | None:
    pref = langs.grouped(graph.objects(node, SKOS.prefLabel))
    alt = langs.grouped(graph.objects(node, SKOS.altLabel))
    if not pref:
        # A name is better than no concept: rdfs:label, else the first altLabel.
        pref = langs.grouped(graph.objects(node, RDFS.label)) or alt
    if not pref:
        warnings.append(f"{source}: concept {node} skipped: it has no label")
        return None
    labels = {lang: values[0] for lang, values in sorted(pref.items())}
    # Extra prefLabels in one language (a SKOS error) are kept as alternatives.
    others = {lang: values[1:] for lang, values in pref.items()}
    alt_labels = {}
    for lang in sorted(set(alt) | set(others)):
        values = unique([*others.get(lang, ()), *alt.get(lang, ())], labels.get(lang))
        if values:
            alt_labels[lang] = values
    parents = {*graph.objects(node, SKOS.broader), *graph.subjects(SKOS.narrower, node)}
    notations = sorted(str(n) for n in graph.objects(node, SKOS.notation))
    return Concept(
        id=str(node),
        labels=labels,
        alt_labels=alt_labels,
        broader=unique(sorted(str(p) for p in parents if isinstance(p, URIRef)), str(node)),
        notation=notations[0] if notations else None,
    )


def _title(graph: Graph, langs: _Languages) -> dict[str, str]:
    for scheme in sorted(graph.subjects(RDF.type, SKOS.ConceptScheme), key=str):
        for prop in (DCTERMS.title, DC.title, SKOS.prefLabel, RDFS.label):
            titles = langs.grouped(graph.objects(scheme, prop))
            if titles:
                return {lang: values[0] for lang, values in sorted(titles.items())}
    return {}


def read_skos(path: Path, default_language: str | None = None) -> Vocabulary:
    graph = _parse(path)
    nodes = set(graph.subjects(RDF.type, SKOS.Concept))
    if not nodes:
        excluded = {s for kind in _NOT_CONCEPTS for s in graph.subjects(RDF.type, kind)}
        nodes = set(graph.subjects(SKOS.prefLabel, None)) - excluded
    warnings: list[str] = []
    blank = [n for n in nodes if not isinstance(n, URIRef)]
    if blank:
        warnings.append(f"{path}: {len(blank)} concepts without a URI (blank nodes) skipped")
    langs = _Languages(default_language)
    concepts = []
    for node in sorted(n for n in nodes if isinstance(n, URIRef)):
        concept = _concept(graph, node, langs, warnings, str(path))
        if concept is not None:
            concepts.append(concept)
    title = _title(graph, langs)
    if langs.untagged and default_language is None:
        warnings.append(
            f"{path}: {langs.untagged} labels have no language tag and are filed under "
            "'und': pass default_language (e.g. 'fr') to give them one"
        )
    return make_vocabulary(path, concepts, "skos", title, warnings, _EXPECTED)
