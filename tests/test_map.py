"""The map of a collection (`regard map`, /api/map): like lies near like, clusters are
named from the store's thesauri, new items are placed without moving the others.

The store is a copy of the shapes collection (4 pictures of each colour and shape, two
of them served twice), indexed by the CLI with the `regard-test` model; one map is made
for the module (UMAP's first run in a process compiles for some seconds).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.map_clusters import cluster_count
from indexer.store import Store
from service.app import create_app
from service.cli import main as regard
from service.settings import Settings
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import TWINS, index

THESAURUS = Path(__file__).parent / "fixtures" / "terms" / "shapes-thesaurus.ttl"
EX = "https://example.org/regard/shapes/"


def run(*args: str) -> int:
    return regard(list(args))


@pytest.fixture(scope="module")
def store(tmp_path_factory, shapes_store: Path) -> Path:
    path = tmp_path_factory.mktemp("map") / "store"
    shutil.copytree(shapes_store, path)
    assert run("vocab", "add", str(THESAURUS), "--store", str(path)) == 0
    assert run("map", "--store", str(path)) == 0
    return path


@pytest.fixture(scope="module")
def api(store: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store=store))) as client:
        yield client


def all_points(api: TestClient, page: int = 7) -> dict[str, Any]:
    """Every point, fetched a page at a time as the viewer does (each page after the
    last point of the one before); the same as pages by offset."""
    columns: dict[str, list] = {"ids": [], "x": [], "y": [], "cluster": []}
    after: int | None = 0
    while after is not None:
        body = api.get(f"/api/map/points?after={after}&limit={page}").json()
        by_offset = api.get(f"/api/map/points?offset={len(columns['ids'])}&limit={page}").json()
        assert by_offset["ids"] == body["ids"]
        for name in columns:
            columns[name] += body[name]
        after = body["next"]
    assert len(columns["ids"]) == body["total"]
    return {**columns, "total": body["total"]}


def labels(store: Path) -> dict[str, str]:
    """Item id → English label ("red circle 1", "twin of red circle 1"...)."""
    rows = Store.open(store).reader().execute("SELECT id, canvas_label FROM items")
    return {item_id: json.loads(label)["en"][0] for item_id, label in rows}


def kind(label: str) -> str:
    """ "red circle" from "red circle 1" (twins included)."""
    words = label.split()
    return " ".join(words[-3:-1])


def test_every_searchable_item_is_on_the_map_once(store: Path, api) -> None:
    points = all_points(api)
    searchable = api.get("/api/stats").json()["items"]
    assert points["total"] == searchable == len(points["ids"]) == len(set(points["ids"]))
    assert all(0.0 <= v <= 1.0 for v in points["x"] + points["y"])
    summary = api.get("/api/map").json()
    assert (summary["items"], summary["searchable"], summary["stale"]) == (
        searchable,
        searchable,
        False,
    )
    assert len(summary["clusters"]) == cluster_count(searchable)
    assert sum(c["size"] for c in summary["clusters"]) == searchable


def test_like_lies_near_like(store: Path, api) -> None:
    points = all_points(api)
    where = {
        i: np.array([x, y]) for i, x, y in zip(points["ids"], points["x"], points["y"], strict=True)
    }
    named = labels(store)
    same, other = [], []
    ids = list(where)
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            distance = float(np.linalg.norm(where[ids[a]] - where[ids[b]]))
            (same if kind(named[ids[a]]) == kind(named[ids[b]]) else other).append(distance)
    assert np.mean(same) < 0.5 * np.mean(other)


def test_the_same_picture_twice_lies_in_one_place(store: Path, api) -> None:
    points = all_points(api)
    where = dict(zip(points["ids"], zip(points["x"], points["y"], strict=True), strict=True))
    by_label: dict[str, list[tuple[float, float]]] = {}
    for item_id, label in labels(store).items():
        by_label.setdefault(label.removeprefix("twin of ").strip(), []).append(where[item_id])
    twins = [places for places in by_label.values() if len(places) == 2]
    assert len(twins) == len(TWINS)
    for a, b in twins:
        assert np.hypot(a[0] - b[0], a[1] - b[1]) < 0.01


def test_clusters_hold_like_items_and_are_named_from_the_thesaurus(store: Path, api) -> None:
    points = all_points(api)
    named = labels(store)
    # Items of one kind mostly share a cluster.
    kinds: dict[str, Counter] = {}
    for item_id, cluster in zip(points["ids"], points["cluster"], strict=True):
        kinds.setdefault(kind(named[item_id]), Counter())[cluster] += 1
    together = sum(max(c.values()) for c in kinds.values()) / len(points["ids"])
    assert together >= 0.8
    for cluster in api.get("/api/map").json()["clusters"]:
        assert set(cluster["names"]) == {"fr", "en"}
        assert all(term["id"].startswith(EX) for term in cluster["terms"])
        assert len(cluster["terms"]) == 2
        # Its name's terms are what its items are: most items carry one of them.
        words = {term["labels"]["en"] for term in cluster["terms"]}
        members = [
            named[i]
            for i, c in zip(points["ids"], points["cluster"], strict=True)
            if c == cluster["id"]
        ]
        carrying = sum(any(word in label.split() for word in words) for label in members)
        assert carrying >= 0.6 * len(members), (cluster["names"], Counter(map(kind, members)))
        assert 1 <= len(cluster["samples"]) <= 4


def test_a_clusters_items_come_nearest_its_centre_first(api) -> None:
    summary = api.get("/api/map").json()
    cluster = max(summary["clusters"], key=lambda c: c["size"])
    body = api.get(f"/api/clusters/{cluster['id']}?k=6").json()
    scores = [h["score"] for h in body["results"]]
    assert len(scores) == min(6, cluster["size"])
    assert scores == sorted(scores, reverse=True)
    assert [h["id"] for h in body["results"][:4]] == [h["id"] for h in cluster["samples"]]
    points = all_points(api)
    in_cluster = {
        i for i, c in zip(points["ids"], points["cluster"], strict=True) if c == cluster["id"]
    }
    assert {h["id"] for h in body["results"]} <= in_cluster


def test_the_map_is_made_again_the_same_from_the_same_seed(store: Path, tmp_path, capsys) -> None:
    scratch = tmp_path / "store"
    shutil.copytree(store, scratch)
    with TestClient(create_app(Settings(store=scratch))) as client:
        before = all_points(client)
    assert run("map", "--store", str(scratch)) == 0
    assert "already up to date" in capsys.readouterr().out
    assert run("map", "--store", str(scratch), "--rebuild") == 0
    assert "made anew" in capsys.readouterr().out
    with TestClient(create_app(Settings(store=scratch))) as client:
        after = all_points(client)
    assert after["ids"] == before["ids"] and after["cluster"] == before["cluster"]
    assert np.allclose(after["x"], before["x"], atol=1e-4)


def test_new_items_are_placed_without_moving_the_others(
    store: Path, tmp_path, iiif_server: IIIFTestServer, capsys
) -> None:
    scratch = tmp_path / "store"
    shutil.copytree(store, scratch)
    # One service throughout: what it counted for the map is counted again as the
    # store and the map change under it.
    with TestClient(create_app(Settings(store=scratch))) as client:
        before = all_points(client)
        more = iiif_server.shapes_manifest_url(per_pair=1, seed=7)
        assert index(more, store=scratch) == 0
        stale = client.get("/api/map").json()
        assert stale["stale"] is True and stale["items"] == before["total"] < stale["searchable"]
        capsys.readouterr()
        assert run("map", "--store", str(scratch)) == 0
        assert "new image(s) placed on it" in capsys.readouterr().out
        after = all_points(client)
        summary = client.get("/api/map").json()
    assert summary["stale"] is False and after["total"] == summary["searchable"]
    assert summary["items"] == after["total"] > before["total"]
    old = dict(zip(before["ids"], zip(before["x"], before["y"], strict=True), strict=True))
    moved = [
        i
        for i, x, y in zip(after["ids"], after["x"], after["y"], strict=True)
        if i in old and old[i] != (x, y)
    ]
    assert moved == []
    assert len(after["ids"]) == len(before["ids"]) + 16  # one of each colour and shape
    # A new red circle lands among the old red circles.
    named = labels(scratch)
    new_ids = set(after["ids"]) - set(old)
    where = dict(zip(after["ids"], zip(after["x"], after["y"], strict=True), strict=True))
    newcomer = next(i for i in new_ids if kind(named[i]) == "red circle")
    nearest_old = min(
        old,
        key=lambda i: np.hypot(where[i][0] - where[newcomer][0], where[i][1] - where[newcomer][1]),
    )
    assert kind(named[nearest_old]) == "red circle"


def test_a_vocabulary_added_later_names_the_clusters(shapes_store: Path, tmp_path, capsys) -> None:
    scratch = tmp_path / "store"
    shutil.copytree(shapes_store, scratch)
    assert run("map", "--store", str(scratch), "--clusters", "4") == 0
    assert "clusters are unnamed" in capsys.readouterr().out
    with TestClient(create_app(Settings(store=scratch))) as client:
        assert all(c["names"] == {} for c in client.get("/api/map").json()["clusters"])
    assert run("vocab", "add", str(THESAURUS), "--store", str(scratch)) == 0
    capsys.readouterr()
    assert run("map", "--store", str(scratch), "--clusters", "4") == 0
    said = capsys.readouterr().out
    assert "already up to date" in said and "unnamed" not in said
    with TestClient(create_app(Settings(store=scratch))) as client:
        clusters = client.get("/api/map").json()["clusters"]
    assert len(clusters) == 4 and all(c["names"]["fr"] for c in clusters)


def test_no_map_yet_and_wrong_requests_say_what_to_do(shapes_store: Path, api, tmp_path, capsys):
    with TestClient(create_app(Settings(store=shapes_store))) as client:
        missing = client.get("/api/map")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "no_map")
        assert "regard map" in missing.json()["error"]["message"]
    assert api.get("/api/clusters/999").json()["error"]["code"] == "unknown_cluster"
    assert api.get("/api/map/points?limit=0").json()["error"]["code"] == "limit_out_of_range"
    assert api.get("/api/clusters/0?k=49").json()["error"]["code"] == "k_out_of_range"
    empty = tmp_path / "empty"
    Store.open(empty, create=True)
    assert run("map", "--store", str(empty)) == 1
    assert "no searchable image to map" in capsys.readouterr().err


def test_the_maps_pictures_come_several_at_a_time(api) -> None:
    ids = all_points(api)["ids"][:5]
    body = api.get("/api/items", params=[("id", i) for i in [*ids, "nope", ids[0]]]).json()
    assert [item["id"] for item in body["items"]] == ids
    assert body["unknown"] == ["nope"]
    assert all(item["thumbnail_url"] for item in body["items"])
    too_many = api.get("/api/items", params=[("id", str(n)) for n in range(201)])
    assert too_many.json()["error"]["code"] == "too_many_ids"


def test_stats_say_what_the_map_and_terms_hold(store: Path, api, capsys) -> None:
    stats = api.get("/api/stats").json()
    assert stats["map"]["items"] == stats["items"] and stats["map"]["stale"] is False
    assert stats["map"]["clusters"] == len(api.get("/api/map").json()["clusters"])
    assert stats["terms"]["vocabularies"] == 1 and stats["terms"]["concepts"] == 10
    assert run("stats", "--store", str(store)) == 0
    said = capsys.readouterr().out
    assert f"map:       {stats['items']} images in {stats['map']['clusters']} clusters" in said
    assert "terms:     1 vocabularies (10 terms)" in said


def test_a_clusters_items_export_as_csv(api) -> None:
    import csv
    import io

    summary = api.get("/api/map").json()
    cluster = max(summary["clusters"], key=lambda c: c["size"])
    answer = api.get(f"/api/clusters/{cluster['id']}/items.csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == cluster["size"]
    points = all_points(api)
    members = {
        i for i, c in zip(points["ids"], points["cluster"], strict=True) if c == cluster["id"]
    }
    assert {row["item_id"] for row in rows} == members
    assert all(row["canvas_id"] and row["thumbnail_url"] for row in rows)
    assert api.get("/api/clusters/999/items.csv").json()["error"]["code"] == "unknown_cluster"


def test_a_cluster_is_a_iiif_manifest_at_its_own_address(api) -> None:
    """A IIIF viewer opens a cluster by its URL: the manifest's id is that URL, and
    reading it back gives the cluster's images, each with its source manifest."""
    from indexer.iiif import Manifest, parse_document

    summary = api.get("/api/map").json()
    cluster = max(summary["clusters"], key=lambda c: c["size"])
    url = f"/api/clusters/{cluster['id']}/manifest"
    answer = api.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/ld+json")
    manifest = answer.json()
    assert manifest["id"] == "http://testserver" + url
    name = cluster["names"]["fr"]
    assert manifest["label"] == {"none": [f"Groupe « {name} »"]}
    read = parse_document(manifest, manifest["id"])
    assert isinstance(read, Manifest) and len(read.images) == cluster["size"]
    import csv
    import io

    listed = csv.DictReader(io.StringIO(api.get(f"/api/clusters/{cluster['id']}/items.csv").text))
    regard_ids = [
        entry["value"]["none"][0]
        for canvas in manifest["items"]
        for entry in canvas["metadata"]
        if entry["label"].get("en") == ["Regard id"]
    ]
    assert regard_ids == [row["item_id"] for row in listed]  # the same images, in order
    assert all(canvas["partOf"][0]["type"] == "Manifest" for canvas in manifest["items"])
    assert api.get("/api/clusters/999/manifest").json()["error"]["code"] == "unknown_cluster"


def test_two_clusters_never_get_the_same_name(store: Path) -> None:
    from indexer.map_clusters import name_clusters
    from indexer.store_map import MapStore
    from indexer.store_terms import TermStore
    from indexer.terms import ModelScoring, TermScorer

    opened = Store.open(store)
    terms = TermStore(opened)
    scorer = TermScorer(terms, ModelScoring.stored(terms))
    clusters = MapStore(opened).clusters()
    centre = clusters[0].centroid
    mean = np.mean([c.centroid for c in clusters], axis=0)
    mean /= np.linalg.norm(mean)
    # The same centre twice, as two clusters too alike would be.
    alone, first, second = (
        *name_clusters(centre[None, :], mean, scorer, ["shapes-thesaurus"]),
        *name_clusters(np.stack([centre, centre]), mean, scorer, ["shapes-thesaurus"]),
    )
    assert first.names == alone.names
    assert second.names["fr"] != first.names["fr"]
    assert second.terms[0].id == first.terms[0].id  # the best term stays, the other changes
