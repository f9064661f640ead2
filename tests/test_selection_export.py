"""A selection of images exported (POST /api/export/selection): as CSV, in the order
sent, with the cluster CSV's columns; as a IIIF Presentation 3 Manifest that Regard's own
IIIF reader reads back as the same images; and the requests it refuses.

The stores are the shapes store (Image API 3 services), a copy of it whose manifest left
the collection and whose images are now those of the Presentation 2 shapes manifest
(Image API 2 services), and a folder of pictures that the service serves itself.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.iiif import Manifest, best_label, parse_document
from indexer.iiif_out import SelectedImage, selection_manifest
from indexer.store import ItemRecord, Store
from service.app import create_app
from service.presenters import ITEM_COLUMNS
from service.routes.selection import MAX_SELECTION
from service.settings import Settings
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import index
from tests.test_local_files import picture

EXPORT = "/api/export/selection"
CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"
BY = "http://creativecommons.org/licenses/by/4.0/"


def searchable(store: Path) -> list[ItemRecord]:
    """The store's searchable items, in the order they were indexed."""
    opened = Store.open(store)
    rows = opened.reader().execute("SELECT id FROM items WHERE state = 'indexed' ORDER BY key")
    ids = [item_id for (item_id,) in rows]
    found = opened.items_by_ids(ids)
    return [found[item_id] for item_id in ids]


def csv_rows(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def read_back(manifest: dict[str, Any]) -> Manifest:
    """The manifest as a IIIF consumer reads it: Regard's own reader, from its JSON text."""
    read = parse_document(json.loads(json.dumps(manifest)), manifest["id"])
    assert isinstance(read, Manifest)
    return read


# ---- stores -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moved_store(tmp_path_factory, shapes_store: Path, iiif_server: IIIFTestServer) -> Path:
    """The shapes store after its manifest left the collection (every image of it
    removed) and the Presentation 2 shapes manifest came in (one image a shape)."""
    store = tmp_path_factory.mktemp("selection") / "store"
    shutil.copytree(shapes_store, store)
    opened = Store.open(store)
    [old_manifest] = {item.manifest_id for item in searchable(store)}
    assert opened.remove_manifests([old_manifest]) > 0
    opened.close()
    assert index(iiif_server.shapes_manifest_url(per_pair=1, version=2), store=store) == 0
    return store


@pytest.fixture(scope="module")
def moved(moved_store: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store=moved_store))) as client:
        yield client


# ---- CSV --------------------------------------------------------------------------------


def test_a_selection_exports_as_csv_in_the_order_sent_each_once(
    api: TestClient, shapes_store: Path
) -> None:
    items = searchable(shapes_store)
    chosen = [items[5].id, items[0].id, items[9].id]
    answer = api.post(EXPORT, json={"ids": [*chosen, items[0].id, chosen[2]]})
    rows = csv_rows(answer)
    assert tuple(rows[0]) == ITEM_COLUMNS
    assert [row["item_id"] for row in rows] == chosen
    by_id = {item.id: item for item in items}
    for row in rows:
        item = by_id[row["item_id"]]
        assert (row["manifest_id"], row["canvas_id"]) == (item.manifest_id, item.canvas_id)
        assert row["label"] == best_label(item.canvas_label)
        assert row["thumbnail_url"].startswith(item.service["id"] + "/")
    assert answer.headers["content-disposition"] == 'attachment; filename="regard-selection-3.csv"'
    assert answer.headers["x-regard-skipped"] == "0"
    # The same lines as a cluster's export would give: the columns are one list.
    named = api.post(
        EXPORT, params={"format": "csv"}, json={"ids": chosen, "label": "Lampes à pied"}
    )
    assert named.text == answer.text
    assert 'filename="regard-lampes-a-pied.csv"' in named.headers["content-disposition"]


def test_images_no_longer_in_the_collection_are_left_out_and_counted(
    moved: TestClient, moved_store: Path, shapes_store: Path
) -> None:
    removed = searchable(shapes_store)[0].id
    live = [item.id for item in searchable(moved_store)[:2]]
    answer = moved.post(EXPORT, json={"ids": [removed, live[0], "nope/é", live[1]]})
    assert [row["item_id"] for row in csv_rows(answer)] == live
    assert answer.headers["x-regard-skipped"] == "2"
    assert answer.headers["x-regard-skipped-ids"] == f"{removed},nope%2F%C3%A9"
    # Left out of a manifest in the same way, and said in its summary.
    manifest = moved.post(
        EXPORT, params={"format": "iiif"}, json={"ids": [removed, *live, "nope"]}
    ).json()
    assert len(manifest["items"]) == 2
    assert "2 more, no longer in the collection" in manifest["summary"]["en"][0]
    # Nothing left: an error that says so, with what was sent.
    gone = moved.post(EXPORT, json={"ids": [removed, "nope"]})
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "unknown_items")
    message = gone.json()["error"]["message"]
    assert "none of the 2 ids" in message and repr(removed) in message


# ---- IIIF -------------------------------------------------------------------------------


def test_a_selection_exports_as_a_presentation_3_manifest(
    api: TestClient, shapes_store: Path
) -> None:
    items = searchable(shapes_store)[:4]
    answer = api.post(EXPORT, params={"format": "iiif"}, json={"ids": [i.id for i in items]})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/ld+json")
    assert answer.headers["content-disposition"].endswith('.json"')
    manifest = answer.json()
    assert manifest["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert manifest["type"] == "Manifest"
    assert manifest["id"].startswith("http://testserver/api/export/selection/")
    assert manifest["label"] == {"fr": ["Sélection (4 images)"], "en": ["Selection (4 images)"]}
    canvases = manifest["items"]
    assert [c["type"] for c in canvases] == ["Canvas"] * 4
    ids = []
    for canvas, item in zip(canvases, items, strict=True):
        # A canvas's id has no fragment: #xywh= after it names a part of it.
        assert canvas["id"].startswith(manifest["id"] + "/") and "#" not in canvas["id"]
        assert canvas["label"] == item.canvas_label
        assert (canvas["width"], canvas["height"]) == (item.width, item.height)
        assert canvas["partOf"] == [
            {"id": item.manifest_id, "type": "Manifest", "label": item.manifest_label}
        ]
        # The source canvas's own metadata, then the way back to it.
        own = len(item.canvas_metadata)
        assert canvas["metadata"][:own] == item.canvas_metadata
        links = canvas["metadata"][own:]
        sources = {e["label"]["en"][0]: e["value"]["none"][0] for e in links}
        assert sources["Source canvas"] == item.canvas_id
        assert sources["Regard id"] == item.id
        [thumbnail] = canvas["thumbnail"]
        assert thumbnail["type"] == "Image" and thumbnail["id"].startswith(item.service["id"])
        [page] = canvas["items"]
        [painting] = page["items"]
        assert (page["type"], painting["type"]) == ("AnnotationPage", "Annotation")
        assert (painting["motivation"], painting["target"]) == ("painting", canvas["id"])
        body = painting["body"]
        assert (body["id"], body["type"], body["format"]) == (item.image_url, "Image", "image/jpeg")
        assert (body["width"], body["height"]) == (item.width, item.height)
        assert body["service"] == [
            {
                "id": item.service["id"],
                "type": "ImageService3",
                "profile": "level2",
                "width": item.width,
                "height": item.height,
            }
        ]
        ids += [canvas["id"], page["id"], painting["id"]]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("http://testserver/") for i in ids)
    # The same selection names the same manifest; another, another.
    again = api.post(EXPORT, params={"format": "iiif"}, json={"ids": [i.id for i in items]})
    other = api.post(EXPORT, params={"format": "iiif"}, json={"ids": [items[0].id], "label": "X"})
    assert again.json()["id"] == manifest["id"] != other.json()["id"]
    assert other.json()["label"] == {"none": ["X"]}


def test_behind_a_proxy_the_manifest_is_named_at_the_public_address(
    shapes_store: Path,
) -> None:
    public = "https://collections.example.org/regard"
    items = searchable(shapes_store)[:2]
    with TestClient(create_app(Settings(store=shapes_store, public_url=public))) as client:
        answer = client.post(EXPORT, params={"format": "iiif"}, json={"ids": [i.id for i in items]})
    manifest = answer.json()
    assert manifest["id"].startswith(public + "/api/export/selection/")
    assert all(canvas["id"].startswith(manifest["id"] + "/") for canvas in manifest["items"])


def test_the_manifest_reads_back_as_the_same_images(
    api: TestClient, moved: TestClient, shapes_store: Path, moved_store: Path
) -> None:
    for client, store, service_type in (
        (api, shapes_store, "ImageService3"),
        (moved, moved_store, "ImageService2"),
    ):
        items = searchable(store)
        manifest = client.post(
            EXPORT, params={"format": "iiif"}, json={"ids": [i.id for i in items]}
        ).json()
        read = read_back(manifest)
        assert read.version == 3 and read.skipped == []
        assert len(read.images) == len(items)
        for image, item in zip(read.images, items, strict=True):
            assert image.service is not None
            assert (image.image_url, image.service.id, image.region) == (
                item.image_url,
                item.service["id"],
                item.region,
            )
            assert (image.width, image.height) == (item.width, item.height)
            assert image.service.version == item.service["version"]
            assert image.canvas_label == item.canvas_label
        first_service = manifest["items"][0]["items"][0]["items"][0]["body"]["service"][0]
        assert first_service.get("type", first_service.get("@type")) == service_type


def test_local_files_are_painted_from_the_service_that_serves_them(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    for name, colour in (("a.png", "red"), ("b.png", "blue")):
        picture(scans / name, colour)
    store = tmp_path / "store"
    assert index(str(scans), store=store) == 0
    items = searchable(store)
    with TestClient(create_app(Settings(store=store))) as client:
        manifest = client.post(
            EXPORT, params={"format": "iiif"}, json={"ids": [i.id for i in items]}
        ).json()
        read = read_back(manifest)
        assert [image.image_url for image in read.images] == [
            f"http://testserver/api/items/{item.id}/image" for item in items
        ]
        assert all(image.service is None for image in read.images)
        for canvas in manifest["items"]:
            body = canvas["items"][0]["items"][0]["body"]
            assert body["format"] == "image/jpeg"
            # What the manifest paints is there, and is the picture.
            shown = client.get(body["id"].removeprefix("http://testserver"))
            assert shown.headers["content-type"] == "image/jpeg"
            # A folder's ids are paths on the server: no partOf, no source links.
            assert "partOf" not in canvas
            labels = {e["label"]["en"][0] for e in canvas["metadata"]}
            assert labels == {"Regard id"}


def test_the_manifest_carries_the_rights_its_sources_share(
    api: TestClient, shapes_store: Path
) -> None:
    items = searchable(shapes_store)[:2]
    assert items[0].rights == [CC0] == items[1].rights
    manifest = api.post(
        EXPORT, params={"format": "iiif"}, json={"ids": [i.id for i in items]}
    ).json()
    assert manifest["rights"] == CC0
    assert not any(
        "Rights" in e["label"].get("en", []) for c in manifest["items"] for e in c["metadata"]
    )
    # Sources that differ: each canvas says its own, where viewers show it.
    other = replace(
        items[1],
        rights=[BY],
        required_statement={"fr": ["Musée des Arts Décoratifs"]},
        required_label=None,
    )
    images = [SelectedImage(item, None, item.width, item.height) for item in (items[0], other)]
    mixed = selection_manifest(images, "https://example.org/selection/1")
    assert "rights" not in mixed and "requiredStatement" not in mixed
    said = [
        {e["label"]["en"][0]: next(iter(e["value"].values()))[0] for e in canvas["metadata"]}
        for canvas in mixed["items"]
    ]
    assert said[0]["Rights"] == CC0 and "Attribution" not in said[0]
    assert said[1]["Rights"] == BY and said[1]["Attribution"] == "Musée des Arts Décoratifs"
    assert all("thumbnail" not in canvas for canvas in mixed["items"])


# ---- refused ----------------------------------------------------------------------------


def test_requests_it_cannot_export_say_what_to_do(api: TestClient) -> None:
    empty = api.post(EXPORT, json={"ids": []})
    assert (empty.status_code, empty.json()["error"]["code"]) == (400, "empty_selection")
    too_many = api.post(EXPORT, json={"ids": [str(n) for n in range(MAX_SELECTION + 1)]})
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (
        413,
        "selection_too_large",
    )
    assert "at most 100,000" in too_many.json()["error"]["message"]
    unknown = api.post(EXPORT, json={"ids": ["nope", "nada", "rien", "niente"]})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_items")
    assert "none of the 4 ids" in unknown.json()["error"]["message"]
    assert "'nope', 'nada', 'rien'" in unknown.json()["error"]["message"]
    wrong = api.post(EXPORT, params={"format": "xml"}, json={"ids": ["nope"]})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "invalid_request")
    no_body = api.post(EXPORT)
    assert no_body.status_code == 422
