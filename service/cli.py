"""`regard`: the command-line tool (index, serve, stats, failures, recall; the terms'
commands are in cli_terms, the map's in cli_map)."""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import signal
import socket
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.runtimes import RUNTIMES  # torch-free: --help stays quick

from .cli_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    non_negative_int,
    positive_float,
    positive_int,
)
from .cli_common import error as _error
from .cli_common import store_arg as _store_arg
from .cli_map import COMMANDS as MAP_COMMANDS
from .cli_map import add_parsers as add_map_parsers
from .cli_terms import COMMANDS as TERM_COMMANDS
from .cli_terms import add_parsers as add_term_parsers
from .storage_errors import storage_problem

if TYPE_CHECKING:
    from indexer.pipeline import IndexReport
    from indexer.store import Store
    from models import Encoder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regard",
        description="Index the images of IIIF collections with a CLIP-family model, "
        "and search them by text or by likeness.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        help="harvest IIIF manifests into a store and embed their images",
        description="Read each IIIF manifest (URL or file), fetch its images at about the "
        "model's input size, embed them and store the vectors. Running it again adds "
        "nothing twice and downloads nothing twice; an interrupted run resumes.",
    )
    index.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="IIIF manifest or collection (URL or JSON file), or a folder of image files",
    )
    _store_arg(index)
    index.add_argument(
        "--from-store",
        type=Path,
        metavar="DIR",
        help="index the sources of that store (when no SOURCE is given) and carry over "
        "its vocabularies, reviewers and decisions: to move a collection to another "
        "--model without losing what people did",
    )
    index.add_argument(
        "--model",
        metavar="NAME",
        help="open_clip model name (default: the store's model, else ViT-B-32-SigLIP2-256; "
        "regard-test is the small model shipped for tests and the offline demo)",
    )
    index.add_argument(
        "--pretrained",
        metavar="TAG|PATH",
        help="open_clip pretrained tag (downloaded once and cached), or a local checkpoint "
        "file or folder (default: the store's, else webli for the default model)",
    )
    index.add_argument(
        "--device", metavar="DEVICE", help="torch device (default: cuda when available, else cpu)"
    )
    index.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="how the image tower runs: auto (int8 on CPU where measured, float16 on a GPU, "
        "each checked against float32 at load, else float32) or one of them",
    )
    index.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="images per model batch (default: 32 on CPU, 128 on a GPU)",
    )
    index.add_argument(
        "--workers",
        type=positive_int,
        default=8,
        metavar="N",
        help="parallel downloads and decodes",
    )
    index.add_argument(
        "--processes",
        type=non_negative_int,
        metavar="N",
        help="prepare pictures (fetch, decode, resize) in N processes rather than in "
        "--workers threads of one: for a GPU, which one process cannot feed (default: 0 on "
        "a CPU, where the model needs the cores; on a GPU one per usable CPU but two, at most 12)",
    )
    index.add_argument(
        "--per-host",
        type=positive_int,
        default=4,
        metavar="N",
        help="at most N requests at once to any one server (default 4): be gentle",
    )
    index.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="give up on a response that sends nothing for this long (default 30; retried)",
    )
    index.add_argument(
        "--max-pixels",
        type=positive_int,
        default=100_000_000,
        metavar="N",
        help="refuse images of more pixels than this before decoding them (default 100000000)",
    )
    index.add_argument(
        "--contact",
        metavar="EMAIL|URL",
        help="how the image servers' operators can reach you; sent in the User-Agent",
    )
    index.add_argument("--quiet", action="store_true", help="no progress bar")

    serve = commands.add_parser(
        "serve",
        help="serve the search API and the viewer over a store",
        description="Serve the JSON API under /api and the viewer at /. The store "
        "remembers its model: no model options are needed.",
    )
    _store_arg(serve)
    # No defaults here: an option not given leaves the setting to REGARD_HOST, … or to
    # service.settings' own default.
    serve.add_argument("--host", help="interface (default: REGARD_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: REGARD_PORT, else 8000)")
    serve.add_argument(
        "--device",
        metavar="DEVICE",
        help="torch device (default: REGARD_DEVICE, else cuda when available, else cpu)",
    )
    serve.add_argument(
        "--cors-origins",
        metavar="ORIGINS",
        help="web sites whose pages may call the API, as https://collections.example.org "
        "(several: separated by commas; * for any; default: REGARD_CORS_ORIGINS, else none)",
    )

    stats = commands.add_parser("stats", help="count what a store holds")
    _store_arg(stats)
    stats.add_argument("--json", action="store_true", help="print JSON instead of text")

    failures = commands.add_parser(
        "failures", help="list the images and sources that could not be indexed, and why"
    )
    _store_arg(failures)
    failures.add_argument("--json", action="store_true", help="print JSON instead of text")

    recall = commands.add_parser(
        "recall",
        help="how much of the exact search's answers the index finds, on this store's vectors",
    )
    _store_arg(recall)
    recall.add_argument(
        "queries",
        nargs="*",
        metavar="QUERY",
        help="text queries to try (default: twenty generic ones, in English and French)",
    )
    recall.add_argument(
        "--items",
        type=positive_int,
        default=100,
        help="items whose own vectors ask for their neighbours (default: 100)",
    )
    recall.add_argument("--k", type=positive_int, default=10, help="results a query (default: 10)")
    recall.add_argument(
        "--device", metavar="DEVICE", help="torch device (default: cuda when available, else cpu)"
    )
    recall.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_term_parsers(commands)
    add_map_parsers(commands)
    return parser


# -- index ---------------------------------------------------------------------------------


def _remove_new_store(path: Path, folder_existed: bool) -> None:
    """Leave no half-made store behind when a first run indexed nothing at all: the
    folder if this run made it, else what it wrote in it (Store.open only makes a new
    store in an empty folder)."""
    if not folder_existed:
        shutil.rmtree(path, ignore_errors=True)
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """systemd, docker stop and kill send SIGTERM: stop as on Ctrl-C, keeping the batch
    in hand (the default would drop it, though the store stays whole either way)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_index(args: argparse.Namespace) -> int:
    from indexer.index_plan import IndexSettings
    from indexer.store import Store
    from indexer.store_lock import indexing_lock

    IndexSettings.from_env()  # read at the end of the run: a bad value is said before it

    old = _store_to_carry_from(args)
    if not args.sources:
        _error(
            "give at least one SOURCE (a IIIF manifest or collection, or a folder), or "
            "--from-store DIR to index the sources of another store"
        )
        return EXIT_USAGE
    store_existed, folder_existed = Store.exists(args.store), args.store.exists()
    store = Store.open(args.store, create=True)
    try:
        with _sigterm_as_ctrl_c(), indexing_lock(store.path):
            return _index_into(store, args, store_existed, folder_existed, old)
    finally:
        store.close()  # also when another run holds the lock
        if old is not None:
            old.close()


def _store_to_carry_from(args: argparse.Namespace) -> Store | None:
    """The store of --from-store, open; its sources become the run's when none is given."""
    from indexer.store import Store, StoreError
    from indexer.store_carry import sources_of

    if args.from_store is None:
        return None
    if args.from_store.resolve() == args.store.resolve():
        raise StoreError(
            f"--from-store and --store are the same store ({args.store}): a store never "
            "mixes two models; give a new folder as --store"
        )
    old = Store.open(args.from_store)
    if not args.sources:
        args.sources = sources_of(old)
        if not args.sources:
            old.close()
            raise StoreError(f"the store in {args.from_store} was never indexed from a source")
    return old


def _index_into(
    store: Store,
    args: argparse.Namespace,
    store_existed: bool,
    folder_existed: bool,
    carry_from: Store | None = None,
) -> int:
    from indexer.encoders import encoder_for_indexing
    from indexer.fetch import FetchSettings
    from indexer.picture_processes import auto_processes
    from indexer.pipeline import IndexOptions, run_index
    from service.progress import progress_for

    new_store = not store_existed
    try:
        encoder = encoder_for_indexing(
            store, args.model, args.pretrained, args.device, args.runtime, args.batch_size
        )
    except BaseException:
        if new_store:
            store.close()
            _remove_new_store(args.store, folder_existed)
        raise
    processes = args.processes
    if processes is None:
        processes = auto_processes(encoder.device.type)
    if not args.quiet:
        print(describe_encoder(encoder))
        if processes:
            print(f"Pictures prepared in {processes} processes")
    options = IndexOptions(
        batch_size=encoder.batch_size,
        workers=args.workers,
        max_pixels=args.max_pixels,
        fetch=FetchSettings(
            contact=args.contact, per_host=args.per_host, read_timeout=args.timeout
        ),
        processes=processes,
    )
    progress = None if args.quiet else progress_for()
    try:
        report = run_index(args.sources, store, encoder, options, progress)
    except KeyboardInterrupt:
        _error(
            f"interrupted: finished work is kept in {args.store}; run the same command to resume"
        )
        return EXIT_INTERRUPTED
    finally:
        if progress:
            progress.close()
    harvest = report.harvest
    _name_unread_sources(harvest.source_failures, args.store)
    if harvest.manifests + harvest.unchanged == 0:
        if new_store:
            store.close()
            _remove_new_store(args.store, folder_existed)
        _error(
            "nothing was indexed: no manifest or folder could be read"
            if harvest.source_failures
            else "nothing was indexed: the sources name no manifest"
        )
        return EXIT_FAILED
    print_summary(report, store.stats())
    if carry_from is not None:
        _carry_over(carry_from, store, encoder)
    if report.index_refused:
        _error(f"the search index was not built: {report.index_refused}")
    return EXIT_FAILED if harvest.source_failures or report.index_refused else EXIT_OK


def _carry_over(old: Store, new: Store, encoder: Encoder) -> None:
    """What people made in `old`, into `new`; its vocabularies' terms embedded by the new
    store's model."""
    from indexer.store_carry import carry_over
    from indexer.store_terms import TermStore
    from indexer.terms import ModelScoring
    from indexer.vocab_import import embed_missing

    carried = carry_over(old, new)
    terms = TermStore(new)
    embedded = 0
    if terms.vocabulary_names():
        terms.save_scoring(ModelScoring.of(encoder).to_dict())
        embedded = embed_missing(terms, encoder.embed_texts, encoder.fingerprint.key)
    print(
        f"carried over from {old.path}: {carried.vocabularies} vocabularies "
        f"({carried.concepts} terms; {embedded} embedded now by {encoder.name}), "
        f"{carried.reviewers} reviewers, {carried.decisions} decisions"
    )
    if carried.decisions_left:
        _error(
            f"{carried.decisions_left} decisions are on images this store does not hold yet "
            "(not carried over): run the same command again once they are indexed"
        )


UNREAD_NAMED = 20  # sources named one by one on stderr; a paged collection may fail hundreds


def _name_unread_sources(failures: list[tuple[str, str]], store: Path) -> None:
    for source, problem in failures[:UNREAD_NAMED]:
        _error(f"{source}: {problem}")
    if len(failures) > UNREAD_NAMED:
        _error(
            f"… and {len(failures) - UNREAD_NAMED} more sources not read: "
            f"`regard failures --store {store}` lists them all"
        )


def describe_encoder(encoder: Encoder) -> str:
    """One line on how the images will be embedded: which model, where and how fast."""
    how = f"{encoder.runtime} runtime"
    if encoder.runtime_cosine is not None:
        how += f" (checked against float32: cosine {encoder.runtime_cosine:.4f})"
    threads = f", {encoder.threads} threads" if encoder.threads else ""
    return (
        f"Embedding with {encoder.name} on {encoder.device}: {how}, "
        f"batches of {encoder.batch_size}{threads}."
    )


def print_summary(report: IndexReport, stats: dict) -> None:
    harvest = report.harvest
    failed = sum(report.failed.values())
    print(
        f"{harvest.manifests} manifest(s) read, {harvest.unchanged} unchanged; "
        f"{report.embedded} image(s) embedded now, {failed} failed, "
        f"{harvest.removed} removed; the store holds {stats['items']} searchable image(s)."
    )
    for reason, count in report.failed.most_common():
        print(f"  failed:  {count} × {reason}")
    for reason, count in harvest.skipped.most_common():
        print(f"  skipped: {count} × {reason}")
    for folder, count in harvest.taken_over.items():
        print(
            f"  took over {count:,} image(s) of {folder}, already in this store "
            "(not embedded again)"
        )
    # Each unread source is named above, on stderr; here, how many for each problem.
    for problem, count in Counter(problem for _, problem in harvest.source_failures).most_common():
        print(f"  unread:  {count} × {problem}")
    if harvest.manifests and not harvest.images_found:
        print("  note:    the manifests read name no image to index")
    if report.index:
        print("\n".join(describe_index(report.index)))


def describe_index(plan: dict) -> list[str]:
    """How the search index answers: exact, or which cells of an IVF index, and why."""
    if plan["kind"] == "exact":
        count = plan["count"]
        vectors = f"{count:,} {'vector' if count == 1 else 'vectors'}"
        lines = [f"index:  exact, {vectors}: every one is scanned"]
    else:
        lines = _ivf_lines(plan)
    if plan.get("origin") == "added":
        lines.append("        the new vectors were added to the saved index: no rebuild")
    return lines


def _ivf_lines(plan: dict) -> list[str]:
    lines = [
        f"index:  IVF{plan['nlist']},{plan['code']}, {plan['count']:,} vectors; cells "
        f"scanned: {plan['nprobe']} per image query, {plan['text_nprobe']} per text query; "
        f"{plan['rerank']} candidates re-ranked"
    ]
    measured = [
        f"{plan[cells]} {'cell' if plan[cells] == 1 else 'cells'} for {kind} probes, "
        f"recall@10 {plan[recall]:.3f}"
        for kind, cells, recall in (
            ("image-like", "measured_nprobe", "measured_recall"),
            ("text-like", "measured_text_nprobe", "measured_text_recall"),
        )
        if plan.get(cells)
    ]
    if measured:
        on = plan.get("measured_count")
        when = f"measured on {on:,} vectors" if on else "chosen at build"
        lines.append(f"        {when}: {'; '.join(measured)}")
    return lines


# -- serve, stats, failures ----------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from indexer.index_plan import IndexSettings
    from indexer.store import Store
    from service.app import create_app
    from service.context import ServiceContext
    from service.settings import Settings

    given = {
        "store": args.store,
        "host": args.host,
        "port": args.port,
        "device": args.device,
        "cors_origins": args.cors_origins,
    }
    settings = Settings(**{name: value for name, value in given.items() if value is not None})
    IndexSettings.from_env()  # a bad REGARD_INDEX_* value is said before anything loads
    Store.open(settings.store).close()  # a missing store is reported before anything loads
    _check_port_free(settings.host, settings.port)  # before the model loads, not after
    context = ServiceContext.load(settings)
    count = context.searcher.index().size
    print(
        f"Serving {count} images from {settings.store} on http://{settings.host}:{settings.port}/"
    )
    app = create_app(settings, context)
    # The modules, the model and the index live as long as the server: left out of the
    # garbage collector's full passes (see indexer.heap). Each pass walked them all, 20 to
    # 230 ms as the model loaded (100,000 items, 2 cores); over a server's life a request
    # that sets one off would wait for it.
    gc.freeze()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return EXIT_OK


class CannotListenError(Exception):
    pass


def _check_port_free(host: str, port: int) -> None:
    # SO_REUSEADDR as uvicorn sets it: a port left in TIME_WAIT is free, a listening one not.
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CannotListenError(
                f"cannot listen on {host}:{port}: {error.strerror or error} "
                "(choose another --port, or --host)"
            ) from None


def cmd_stats(args: argparse.Namespace) -> int:
    from indexer.stats import store_stats
    from indexer.store import Store

    stats = store_stats(Store.open(args.store))
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
        return EXIT_OK
    model = stats["model"]
    print(f"store:     {args.store}")
    print(f"model:     {model['name'] + ' (' + model['fingerprint'] + ')' if model else 'none'}")
    print(f"manifests: {stats['manifests']}")
    print(f"items:     {stats['items']} searchable, {stats['pending']} pending")
    print(f"failed:    {stats['failed']}")
    for reason, count in stats["failed_by_reason"].items():
        print(f"           {count} × {reason}")
    print(f"removed:   {stats['removed']}")
    print(f"skipped:   {stats['skipped']} canvas(es) with nothing to index")
    for reason, count in stats["skipped_by_reason"].items():
        print(f"           {count} × {reason}")
    terms = stats["terms"]
    print(
        f"terms:     {terms['vocabularies']} vocabularies ({terms['concepts']} terms), "
        f"{terms['accepted']} accepted, {terms['rejected']} rejected, "
        f"{terms['reviewers']} reviewer(s)"
    )
    made = stats["map"]
    if made is None:
        print("map:       none (regard map makes it)")
    else:
        behind = ", behind the store: run regard map again" if made["stale"] else ""
        print(f"map:       {made['items']} images in {made['clusters']} clusters{behind}")
    return EXIT_OK


def cmd_failures(args: argparse.Namespace) -> int:
    from indexer.store import Store

    failures = Store.open(args.store).failures()
    if args.json:
        print(json.dumps(failures, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not failures:
        print("no failures")
    for failure in failures:
        print(f"{failure['stage']:<7} {failure['url']}  {failure['reason']}")
    return EXIT_OK


def cmd_recall(args: argparse.Namespace) -> int:
    from indexer.encoders import encoder_for_store
    from indexer.index_plan import IndexSettings
    from indexer.recall import DEFAULT_QUERIES, measure_recall
    from indexer.store import Store
    from indexer.store_vectors import StoreVectors
    from indexer.vector_index import VectorIndex

    store = Store.open(args.store)
    vectors = StoreVectors(store.db_path)
    # The index the service would answer from: the same REGARD_INDEX_* settings.
    index = VectorIndex.load_or_build(store, IndexSettings.from_env(), vectors)
    if index.size < 2:
        _error(f"the store in {args.store} has {index.size} searchable item(s): index more first")
        return EXIT_FAILED
    queries = args.queries or list(DEFAULT_QUERIES)
    encoder = encoder_for_store(store, args.device, runtime="float32")
    report = measure_recall(index, vectors, encoder.embed_texts(queries), args.items, args.k)
    if args.json:
        print(json.dumps({**report.to_dict(), "texts": queries}, indent=2, ensure_ascii=False))
        return EXIT_OK
    plan = report.index
    print("\n".join(describe_index(plan)))
    print(f"recall@{report.k} against an exact scan of the stored vectors (mean, worst):")
    for name, recall, what in (
        ("text", report.text, "texts"),
        ("image", report.image, "items' own vectors"),
    ):
        if recall is not None:
            print(f"  {name:<6} {recall.mean:.3f}  {recall.worst:.2f}  ({recall.queries} {what})")
    if plan["kind"] == "ivf":
        for name, recall, cells, setting in (
            ("text", report.text, plan["text_nprobe"], "REGARD_INDEX_TEXT_NPROBE"),
            ("image", report.image, plan["nprobe"], "REGARD_INDEX_NPROBE"),
        ):
            if recall is not None:
                print(f"  {name:<6} {cells_advice(recall.cells_needed, cells, setting)}")
        print(
            "More cells, slower queries: REGARD_INDEX_TEXT_NPROBE and REGARD_INDEX_NPROBE "
            "(docs/api.md)."
        )
    return EXIT_OK


def cells_advice(needed: int | None, scanned: int, setting: str) -> str:
    """What the cells these queries need mean for the operator."""
    from indexer.index_tuning import RECALL_TARGET

    if needed is None:
        return (
            f"under {RECALL_TARGET} even with every cell scanned: more candidates "
            "(REGARD_INDEX_RERANK) or an exact index (REGARD_INDEX_KIND=exact)"
        )
    cells = f"{needed} {'cell' if needed == 1 else 'cells'}"
    if needed > scanned:
        return f"{RECALL_TARGET} needs {cells}, {scanned} scanned now: {setting}={needed}"
    return f"{RECALL_TARGET} reached with {cells} ({scanned} scanned now)"


def _settings_problem(error: Exception) -> str:
    problems: list[dict[str, Any]] = getattr(error, "errors", list)()
    return "; ".join(
        f"REGARD_{'_'.join(str(p) for p in problem['loc']).upper()}: {problem['msg']}"
        for problem in problems
    ) or str(error)


COMMANDS = {
    "index": cmd_index,
    "serve": cmd_serve,
    "stats": cmd_stats,
    "failures": cmd_failures,
    "recall": cmd_recall,
    **TERM_COMMANDS,
    **MAP_COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError

    from indexer.errors import IndexerError
    from indexer.index_plan import IndexSettingError
    from models.errors import ModelError

    try:
        return COMMANDS[args.command](args)
    except IndexSettingError as error:  # a REGARD_INDEX_* value: bad usage, as a bad option
        _error(str(error))
        return EXIT_USAGE
    except ValidationError as error:  # a REGARD_* setting of the service
        _error(f"a setting means nothing: {_settings_problem(error)}")
        return EXIT_USAGE
    except (IndexerError, ModelError, CannotListenError) as error:
        _error(str(error))
        return EXIT_FAILED
    except (sqlite3.Error, OSError) as error:  # a full disk, most likely
        problem = storage_problem(error, getattr(args, "store", None))
        if problem is None:
            raise
        _error(problem)
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
