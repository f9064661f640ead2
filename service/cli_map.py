"""`regard map`: the map of a store's collection, with its named clusters."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli_common import EXIT_OK, positive_int, store_arg


def add_parsers(commands: Any) -> None:
    from indexer.map_layout import LANDMARKS

    map_ = commands.add_parser(
        "map",
        help="lay the collection out on a 2-D map, in named clusters",
        description="Place every searchable image on a map where like lies near like "
        "(UMAP, fitted on landmarks; every image placed among them), group them in "
        "clusters (k-means on the vectors) named from the store's vocabularies, for the "
        "viewer's map and /api/map. Run again after indexing: new images are placed among "
        "the landmarks without moving the others, and clusters are named again when the "
        "vocabularies changed; anything else makes the map anew.",
    )
    store_arg(map_)
    map_.add_argument(
        "--clusters",
        type=positive_int,
        metavar="N",
        help="how many clusters (default: about the square root of a quarter of the "
        "images, between 2 and 40)",
    )
    map_.add_argument(
        "--landmarks",
        type=positive_int,
        default=LANDMARKS,
        metavar="N",
        help=f"images the layout is fitted on (default: {LANDMARKS:,}); more: finer and slower",
    )
    map_.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random draws (default: 0): the same seed gives the same map",
    )
    map_.add_argument(
        "--rebuild", action="store_true", help="make the map anew even where it could be kept"
    )


def cmd_map(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from indexer.map_build import MapSettings, make_map
    from indexer.store import Store
    from indexer.store_map import MapStore

    store = Store.open(args.store)
    settings = MapSettings(args.clusters, args.landmarks, args.seed, args.rebuild)
    with tqdm(unit="img", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar.set_description(stage)
            bar.total = total
            bar.update(done - bar.n)

        report = make_map(store, settings, progress)
    what = {
        "new": "made anew",
        "added": f"kept, {report.placed} new image(s) placed on it",
        "current": "already up to date",
    }[report.made]
    print(
        f"map {what}: {report.items} image(s), {report.landmarks} landmarks, "
        f"{report.clusters} clusters ({report.seconds} s)"
    )
    if not report.named:
        print(
            "clusters are unnamed: add a vocabulary (regard vocab add), then run regard map again"
        )
    for cluster in MapStore(store).clusters():
        name = cluster.names.get("fr") or next(iter(cluster.names.values()), "")
        print(f"  {cluster.id:>3}  {cluster.size:>7}  {name}")
    return EXIT_OK


COMMANDS = {"map": cmd_map}
