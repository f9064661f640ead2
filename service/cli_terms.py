"""`regard vocab`, `regard reviewer`, `regard suggest` and `regard export`: draft subject
terms from a museum's thesaurus, the people who review them, and what they decided."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_common import EXIT_FAILED, EXIT_OK, error, positive_int, store_arg

if TYPE_CHECKING:
    from indexer.term_precedents import ListedTerm

VOCAB_FORMATS = ("csv", "skos", "joconde")
DEFAULT_TERMS = 10


def add_parsers(commands: Any) -> None:
    """Add this module's commands to `regard`'s subparsers."""
    _vocab_parsers(commands)
    _reviewer_parsers(commands)

    suggest = commands.add_parser(
        "suggest",
        help="draft subject terms for items, from the store's vocabularies",
        description="The terms of each vocabulary that the model finds closest to each "
        "item, best first, with their scores: machine suggestions, for a cataloguer to "
        "accept or reject (in the viewer, or through the API). Terms that cataloguers "
        "accepted on the most similar images come first; those they rejected there, last.",
    )
    store_arg(suggest)
    suggest.add_argument("items", nargs="+", metavar="ITEM", help="item ids (as the API gives)")
    suggest.add_argument(
        "--vocabulary", metavar="NAME", help="only this vocabulary (default: every one)"
    )
    suggest.add_argument(
        "--k",
        type=positive_int,
        default=DEFAULT_TERMS,
        help=f"terms per vocabulary (default: {DEFAULT_TERMS})",
    )
    suggest.add_argument("--device", metavar="DEVICE", help="torch device (default: cpu or cuda)")
    suggest.add_argument("--json", action="store_true", help="print JSON instead of text")

    decisions = commands.add_parser(
        "decisions",
        help="what reviewers decided, and how the model's suggestions fared",
        description="For each vocabulary: the terms accepted and rejected, at each of the "
        "model's ranks when they were decided, and how often the decisions on the most "
        "similar images would have said the same (each decided image looked at as if "
        "new): whether the suggestions earn their place, and whether the list learns.",
    )
    store_arg(decisions)
    decisions.add_argument("--json", action="store_true", help="print JSON instead of text")

    importing = commands.add_parser(
        "import",
        help="read decisions on terms from a CSV file (as regard export writes them)",
        description="Decisions made elsewhere (a spreadsheet, an annotation tool) brought "
        "into the store: a CSV with at least item_id, vocabulary, concept_id and decision "
        "(accepted, rejected, or undecided to withdraw one), and decided_by and decided_at "
        "when it has them, as `regard export --format csv` writes it. Rows the store cannot "
        "take are named with their line; the others are recorded. The machine's "
        "suggestions of an export (decision 'suggested') are skipped.",
    )
    importing.add_argument("file", type=Path, metavar="FILE", help="the CSV file")
    store_arg(importing)
    importing.add_argument(
        "--reviewer", metavar="NAME", help="who decided, for rows whose decided_by is empty"
    )

    export = commands.add_parser(
        "export",
        help="write the terms cataloguers decided: W3C Web Annotations or CSV",
        description="Accepted terms as W3C Web Annotations (one AnnotationPage, "
        "motivation 'classifying', for Mirador, Universal Viewer or a collection "
        "database), or every decision, rejections included, as CSV.",
    )
    store_arg(export)
    export.add_argument(
        "--format",
        choices=("annotations", "csv"),
        default="annotations",
        help="annotations (JSON-LD, accepted terms) or csv (every decision); default: annotations",
    )
    export.add_argument(
        "--output", type=Path, metavar="FILE", help="write to FILE (default: standard output)"
    )
    export.add_argument(
        "--suggestions",
        type=positive_int,
        metavar="K",
        help="add the model's top K terms of each vocabulary for every item, not reviewed, "
        "marked as the machine's (default: decisions only)",
    )
    export.add_argument(
        "--vocabulary", metavar="NAME", help="only this vocabulary (default: every one)"
    )


def _vocab_parsers(commands: Any) -> None:
    vocab = commands.add_parser(
        "vocab",
        help="add, list or remove the thesauri that terms are suggested from",
        description="The vocabularies of a store: the museum's thesauri (SKOS, CSV, or "
        "the Joconde lists), whose terms the store's model embeds to suggest them.",
    )
    actions = vocab.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="read a thesaurus into the store and embed its terms",
        description="Read SOURCE (a SKOS file: Turtle, RDF/XML, N-Triples, JSON-LD; a "
        "CSV with columns id, pref_label_fr, pref_label_en, alt_labels_fr, "
        "alt_labels_en, broader_id; or a Joconde term list), or the name of a vocabulary "
        "Regard ships (iconclass-decorative-arts, pactols-decorative-arts), and embed its "
        "preferred labels with the store's model. Adding it again updates it: decisions "
        "are kept, terms gone from the file are retired. An interrupted run keeps the "
        "terms it embedded; run it again for the rest.",
    )
    add.add_argument("source", metavar="SOURCE", help="thesaurus file, or a bundled name")
    store_arg(add)
    add.add_argument(
        "--name",
        metavar="NAME",
        help="the vocabulary's name in the store (default: from the file name)",
    )
    add.add_argument(
        "--format", choices=VOCAB_FORMATS, help="the file's format (default: from its suffix)"
    )
    add.add_argument(
        "--language",
        metavar="CODE",
        help="language of labels that carry none, as fr (default: und; fr for Joconde lists)",
    )
    add.add_argument("--device", metavar="DEVICE", help="torch device (default: cpu or cuda)")

    listing = actions.add_parser("list", help="the store's vocabularies, with their counts")
    store_arg(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")

    remove = actions.add_parser(
        "remove",
        help="remove a vocabulary from the store",
        description="Remove a vocabulary and its terms. Refused while cataloguers' "
        "decisions use it: export them first, then give --forget-decisions.",
    )
    remove.add_argument("name", metavar="NAME")
    store_arg(remove)
    remove.add_argument(
        "--forget-decisions",
        action="store_true",
        help="remove it even though decisions use it (they are deleted too)",
    )


def _reviewer_parsers(commands: Any) -> None:
    reviewer = commands.add_parser(
        "reviewer",
        help="the people who may accept or reject terms through the service",
        description="Each reviewer has a secret token, sent by the viewer (or any client) "
        "as 'Authorization: Bearer TOKEN' to accept or reject terms; decisions carry "
        "the reviewer's name. Only a hash of each token is stored.",
    )
    actions = reviewer.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="make a reviewer and print their token (again: a new token)",
    )
    add.add_argument("name", metavar="NAME", help="their name or initials, as decisions show it")
    store_arg(add)
    listing = actions.add_parser("list", help="the reviewers of a store")
    store_arg(listing)
    remove = actions.add_parser(
        "remove", help="take a reviewer's token away (their decisions stay)"
    )
    remove.add_argument("name", metavar="NAME")
    store_arg(remove)


# -- vocab -----------------------------------------------------------------------------------


def cmd_vocab(args: argparse.Namespace) -> int:
    from indexer.store import Store
    from indexer.store_terms import TermStore

    store = Store.open(args.store)
    if args.action == "add":
        return _vocab_add(store, args)
    if args.action == "remove":
        forgotten = TermStore(store).remove_vocabulary(args.name, args.forget_decisions)
        gone = f" and {forgotten} decision(s)" if forgotten else ""
        print(f"removed vocabulary {args.name}{gone}")
        return EXIT_OK
    model = store.model
    infos = TermStore(store).vocabularies(model.key if model else None)
    if args.json:
        print(json.dumps([info.__dict__ for info in infos], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not infos:
        print("no vocabulary yet: `regard vocab add FILE --store DIR`")
    for info in infos:
        missing = info.concepts - info.embedded
        print(
            f"{info.name}: {info.concepts} terms ({', '.join(info.languages)}), "
            f"{info.decisions} decision(s)"
            + (f", {info.retired} retired" if info.retired else "")
            + (f", {missing} not embedded yet (run `regard vocab add` again)" if missing else "")
        )
        print(f"    from {info.source}, updated {info.updated_at}")
    return EXIT_OK


def _vocab_add(store: Any, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from indexer.encoders import encoder_for_store
    from indexer.terms import ModelScoring
    from indexer.vocab_import import add_vocabulary, resolve_source

    resolve_source(args.source)  # a wrong name fails before the model loads
    encoder = encoder_for_store(store, args.device, runtime="float32")
    with tqdm(desc="terms", unit="term", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = add_vocabulary(
            store,
            encoder.embed_texts,
            ModelScoring.of(encoder),
            args.source,
            name=args.name,
            file_format=args.format,
            default_language=args.language,
            progress=progress,
        )
    for warning in report.warnings[:20]:
        print(f"warning: {warning}", file=sys.stderr)
    if len(report.warnings) > 20:
        print(f"warning: … and {len(report.warnings) - 20} more", file=sys.stderr)
    c = report.counts
    print(
        f"vocabulary {report.name} from {report.source}: {c.added} new, {c.changed} changed, "
        f"{c.unchanged} unchanged, {c.retired} retired; {report.embedded} term(s) embedded"
    )
    return EXIT_OK


# -- reviewer --------------------------------------------------------------------------------


def cmd_reviewer(args: argparse.Namespace) -> int:
    from indexer.reviewers import add_reviewer, remove_reviewer, reviewers
    from indexer.store import Store

    store = Store.open(args.store)
    if args.action == "add":
        token = add_reviewer(store, args.name)
        print(f"reviewer {args.name.strip()}: token {token}")
        print(
            "Give it to them: it is shown only this once (`add` again makes a new one).",
            file=sys.stderr,
        )
    elif args.action == "remove":
        remove_reviewer(store, args.name)
        print(f"reviewer {args.name} removed; their decisions stay")
    else:
        people = reviewers(store)
        if not people:
            print("no reviewer yet: `regard reviewer add NAME --store DIR`")
        for person in people:
            print(f"{person.name}  (since {person.added_at})")
    return EXIT_OK


# -- suggest ---------------------------------------------------------------------------------


def cmd_suggest(args: argparse.Namespace) -> int:
    from indexer.encoders import encoder_for_store
    from indexer.search import Searcher
    from indexer.store import Store
    from indexer.store_terms import TermStore
    from indexer.term_precedents import decisions_nearby, listed_terms
    from indexer.terms import ModelScoring, TermScorer

    store = Store.open(args.store)
    terms = TermStore(store)
    names = [args.vocabulary] if args.vocabulary else [v.name for v in terms.vocabularies()]
    if not names:
        error("this store has no vocabulary: add one with `regard vocab add FILE --store DIR`")
        return EXIT_FAILED
    for name in names:
        terms.require(name)
    items = []
    for item_id in args.items:
        item = store.get_item(item_id)
        vector = None if item is None else store.vector_of(item.key)
        if item is None or vector is None:
            error(f"no searchable item {item_id!r} in {args.store}: ids are as the API gives them")
            return EXIT_FAILED
        items.append((item, vector))
    encoder = encoder_for_store(store, args.device, runtime="float32")
    scorer = TermScorer(terms, ModelScoring.of(encoder))
    # As the API lists them: decisions on the most similar images move terms up or down.
    searcher = Searcher(store, encoder)
    out: list[dict[str, Any]] = []
    for item, vector in items:
        nearby = decisions_nearby(searcher, terms, item.key, vector)
        for name in names:
            listed = listed_terms(scorer, vector, name, args.k, nearby)
            out.append(
                {"item": item.id, "vocabulary": name, "terms": [_printed(t) for t in listed]}
            )
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"machine suggestions by {encoder.fingerprint.key} ({scorer.model.scoring} scores)")
    for group in out:
        print(f"{group['item']}  [{group['vocabulary']}]")
        for term in group["terms"]:
            label = " / ".join(term["labels"].values())
            print(f"  {term['rank']:>3}. {term['score']:.4f}  {label}  <{term['id']}>")
            if term["precedent"]:
                p = term["precedent"]
                print(
                    f"       on the {p['looked_at']} most similar images: accepted "
                    f"{p['accepted']}, rejected {p['rejected']}"
                )
    return EXIT_OK


def _printed(listed: ListedTerm) -> dict[str, Any]:
    s, precedent = listed.suggestion, listed.precedent
    return {
        "rank": s.rank,
        "id": s.concept.id,
        "labels": s.concept.labels,
        "score": s.score,
        "cosine": s.cosine,
        "scoring": s.scoring,
        # The nearest image's key is the store's own number, not an id to print.
        "precedent": None
        if precedent is None
        else {k: v for k, v in dataclasses.asdict(precedent).items() if k != "nearest_key"},
    }


# -- decisions -------------------------------------------------------------------------------


def cmd_decisions(args: argparse.Namespace) -> int:
    from indexer.decision_report import RANK_GROUPS, UNSCORED, decision_report
    from indexer.search import Searcher, VectorsOnly
    from indexer.store import Store
    from indexer.store_terms import TermStore

    store = Store.open(args.store)
    reports = decision_report(TermStore(store), Searcher(store, VectorsOnly()))
    if args.json:
        out = [
            {
                "vocabulary": r.vocabulary,
                "accepted": r.decisions.accepted,
                "rejected": r.decisions.rejected,
                "reviewers": sorted(r.reviewers),
                "by_rank": {name: vars(tally) for name, tally in r.by_rank.items()},
                "similar_images": {
                    "agreed": r.agreed,
                    "disagreed": r.disagreed,
                    "silent": r.silent,
                },
            }
            for r in reports
        ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not reports:
        print("no decision yet: reviewers accept or reject terms in the viewer")
    for r in reports:
        people = len(r.reviewers)
        print(
            f"{r.vocabulary}: {r.decisions.accepted} accepted, {r.decisions.rejected} "
            f"rejected, by {people} reviewer{'s' if people != 1 else ''}"
        )
        for name in [*(group for group, _, _ in RANK_GROUPS), UNSCORED]:
            tally = r.by_rank[name]
            if tally.accepted or tally.rejected:
                at = "chosen without the model's word" if name == UNSCORED else f"rank {name}"
                print(f"  {at:<34} {tally.accepted:>6} accepted {tally.rejected:>6} rejected")
        print(
            f"  decisions on the most similar images agreed with {r.agreed}, went against "
            f"{r.disagreed}, said nothing of {r.silent}"
        )
    return EXIT_OK


# -- import ----------------------------------------------------------------------------------

SHOWN_PROBLEMS = 20


def cmd_import(args: argparse.Namespace) -> int:
    from indexer.decision_import import import_decisions
    from indexer.store import Store

    report = import_decisions(Store.open(args.store), args.file, args.reviewer)
    decided = report.decided
    print(
        f"{sum(decided.values())} decisions recorded: {decided['accepted']} accepted, "
        f"{decided['rejected']} rejected, {decided['undecided']} withdrawn; "
        f"{report.skipped} machine suggestions skipped"
    )
    for problem in report.problems[:SHOWN_PROBLEMS]:
        error(problem)
    if len(report.problems) > SHOWN_PROBLEMS:
        error(f"… and {len(report.problems) - SHOWN_PROBLEMS} more rows not taken")
    return EXIT_FAILED if report.problems else EXIT_OK


# -- export ----------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from itertools import chain

    from indexer.store import Store
    from indexer.store_terms import TermStore
    from indexer.term_export import annotation_page, csv_rows, decided_terms, suggested_terms
    from indexer.terms import ModelScoring, TermScorer

    store = Store.open(args.store)
    terms = TermStore(store)
    if args.vocabulary:
        terms.require(args.vocabulary)
    # Annotations publish what stands: accepted terms (and, asked for, the machine's).
    # The CSV keeps every decision.
    kind = "accepted" if args.format == "annotations" else None
    exported = decided_terms(store, kind, args.vocabulary)
    if args.suggestions:
        scorer = TermScorer(terms, ModelScoring.stored(terms))
        names = [args.vocabulary] if args.vocabulary else terms.vocabulary_names()
        exported = chain(exported, suggested_terms(store, scorer, names, args.suggestions))
    _write(args.output, csv_rows(exported) if args.format == "csv" else annotation_page(exported))
    return EXIT_OK


def _write(output: Path | None, chunks: Any) -> None:
    if output is None:
        for chunk in chunks:
            sys.stdout.write(chunk)
        return
    # Written beside, then renamed: an interrupted export never leaves half a file.
    partial = output.with_name(output.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        for chunk in chunks:
            handle.write(chunk)
    partial.replace(output)
    print(f"written to {output}", file=sys.stderr)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "vocab": cmd_vocab,
    "reviewer": cmd_reviewer,
    "suggest": cmd_suggest,
    "decisions": cmd_decisions,
    "import": cmd_import,
    "export": cmd_export,
}
