"""Local files are read only where the operator named them, never from a remote document.

A manifest or collection fetched over HTTP may name file:// images or local paths: each
is refused with its reason (the run goes on) and never opened, and the service serves
the files of folder items only, even from a store filled before this rule.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.folders import read_folder
from indexer.harvest import image_row, manifest_row
from indexer.iiif import parse_document
from indexer.store import Store
from models.shapes import ShapeSpec, render
from service.app import create_app
from service.settings import Settings
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import index

V3 = "http://iiif.io/api/presentation/3/context.json"
REFUSED = "local files are not read from remote documents"

# Files this process opens, among those a test watches: an audit hook sees every open,
# whatever code does it (hooks cannot be removed, hence one for the module).
_watched: set[str] = set()
_opened: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watched and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        if path in _watched:
            _opened.append(path)


sys.addaudithook(_audit)


@pytest.fixture
def watch() -> Iterator[Callable[..., None]]:
    """Watch paths for opening: `opened()` lists those opened since."""

    def add(*paths: Path) -> None:
        _watched.update(p for path in paths for p in (str(path), str(path.resolve())))

    _opened.clear()
    yield add
    _watched.clear()
    _opened.clear()


def opened() -> list[str]:
    return list(_opened)


def picture(path: Path, colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    render(ShapeSpec("circle", colour, 1), 64).save(path)
    return path


def manifest(manifest_id: str, *images: str) -> dict[str, Any]:
    """A v3 manifest with one canvas per image URL (64 x 64 JPEGs)."""
    canvases = []
    for n, image in enumerate(images, 1):
        canvas = f"{manifest_id}/canvas/{n}"
        body = {"id": image, "type": "Image", "format": "image/jpeg", "width": 64, "height": 64}
        annotation = {
            "id": f"{canvas}/annotation",
            "type": "Annotation",
            "motivation": "painting",
            "target": canvas,
            "body": body,
        }
        page = {"id": f"{canvas}/page", "type": "AnnotationPage", "items": [annotation]}
        canvases.append(
            {"id": canvas, "type": "Canvas", "width": 64, "height": 64, "items": [page]}
        )
    label = {"en": [manifest_id]}
    return {
        "@context": V3,
        "id": manifest_id,
        "type": "Manifest",
        "label": label,
        "items": canvases,
    }


def collection(collection_id: str, members: list[Any], **extra: Any) -> dict[str, Any]:
    label = {"en": [collection_id]}
    doc = {"@context": V3, "id": collection_id, "type": "Collection", "label": label}
    return {**doc, "items": members, **extra}


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def stats(store: Path) -> dict[str, Any]:
    with closing(Store.open(store)) as opened_store:
        return opened_store.stats()


def failures(store: Path, *, items: bool) -> dict[str, dict[str, Any]]:
    """The standing failures of items (or of sources), by URL."""
    with closing(Store.open(store)) as opened_store:
        found = opened_store.failures()
    return {f["url"]: f for f in found if bool(f["item_id"]) == items}


def search_all(client: TestClient) -> list[dict[str, Any]]:
    """Every searchable item, as /api/search gives them."""
    return client.get("/api/search", params={"q": "circle", "k": 50}).json()["results"]


def image_error(client: TestClient, item_id: str) -> tuple[int, str]:
    answer = client.get(f"/api/items/{item_id}/image")
    return answer.status_code, answer.json()["error"]["code"]


# -- remote documents ----------------------------------------------------------------------


@pytest.mark.parametrize("embedded", [False, True], ids=["manifest", "embedded-in-collection"])
def test_a_file_image_in_a_remote_manifest_fails_and_is_never_opened(
    server: IIIFTestServer, tmp_path: Path, watch: Callable[..., None], embedded: bool
):
    private = picture(tmp_path / "private" / "private.jpg")
    watch(private)
    base = server.base_url
    doc = manifest(f"{base}/lf/manifest.json", private.as_uri(), f"{base}/lf/public.jpg")
    if embedded:  # given whole in its collection: the collection is what was fetched
        source = server.add_document("/lf/c.json", collection(f"{base}/lf/c.json", [doc]))
        server.add_document("/lf/manifest.json", doc)  # registers the public image
    else:
        source = server.add_document("/lf/manifest.json", doc)
    store = tmp_path / "store"

    assert index(source, store=store) == 0  # the run goes on: one item failed

    counts = stats(store)
    assert counts["items"] == 1 and counts["failed"] == 1
    [failed] = failures(store, items=True).values()
    assert failed["url"] == private.as_uri() and failed["stage"] == "fetch"
    assert failed["reason"] == f"not an http(s) URL: {REFUSED}"
    with TestClient(create_app(Settings(store=store))) as client:
        assert image_error(client, failed["item_id"]) == (404, "not_a_local_file")
    assert opened() == []


@pytest.mark.parametrize(
    ("kind", "as_url"),
    [("Manifest", False), ("Manifest", True), ("Collection", False), ("page", False)],
    ids=["manifest-path", "manifest-file-url", "collection-path", "page-path"],
)
def test_a_local_path_in_a_remote_collection_is_not_read(
    server: IIIFTestServer, tmp_path: Path, watch: Callable[..., None], kind: str, as_url: bool
):
    private = picture(tmp_path / "private" / "private.jpg")
    local_m = write_json(tmp_path / "local_m.json", manifest("urn:local-m", private.as_uri()))
    local = local_m
    if kind == "Collection":
        local = write_json(tmp_path / "local_c.json", collection("urn:local-c", [str(local_m)]))
    named = local.as_uri() if as_url else str(local)
    watch(private, local_m, local)
    base = server.base_url
    public = server.add_document(
        "/lf/public.json", manifest(f"{base}/lf/public.json", f"{base}/lf/p.jpg")
    )
    members: list[Any] = [{"id": public, "type": "Manifest"}]
    extra = {"first": named} if kind == "page" else {}
    if kind != "page":
        members.insert(0, {"id": named, "type": kind})
    source = server.add_document("/lf/c.json", collection(f"{base}/lf/c.json", members, **extra))
    store = tmp_path / "store"

    assert index(source, store=store) == 1  # an unread member is a source failure

    [(url, failed)] = failures(store, items=False).items()
    assert url == named and failed["reason"] == f"not an http(s) URL: {REFUSED}"
    counts = stats(store)
    assert counts["manifests"] == 1 and counts["items"] == 1 and counts["failed"] == 0
    assert opened() == []


def test_a_store_filled_before_the_rule_serves_no_file_a_remote_document_named(
    server: IIIFTestServer, tmp_path: Path, watch: Callable[..., None]
):
    scans = tmp_path / "scans"
    picture(scans / "scan.jpg", "blue")
    store = tmp_path / "store"
    assert index(str(scans), store=store) == 0
    private = picture(tmp_path / "private" / "private.jpg")
    watch(private)
    # What a harvest without the rule saved: a remote manifest's file:// image, and one
    # dressed as a folder item (manifest id the folder's URI, canvas id the file's).
    base = server.base_url
    plain = manifest(f"{base}/lf/poisoned.json", private.as_uri())
    dressed = manifest(private.parent.as_uri(), private.as_uri())
    dressed["items"][0]["id"] = private.as_uri()
    poisoned = []
    with closing(Store.open(store)) as writer:
        for doc in (plain, dressed):
            parsed = parse_document(doc, doc["id"])
            images = [image_row(ref) for ref in parsed.images]
            writer.save_manifest(manifest_row(parsed, f"{base}/lf/c.json", None), images)
            poisoned += [image.id for image in images]

    with TestClient(create_app(Settings(store=store))) as client:
        for item_id in poisoned:
            assert image_error(client, item_id) == (404, "not_a_local_file")
        hit = client.get("/api/search", params={"q": "circle", "k": 1}).json()["results"][0]
        assert client.get(f"/api/items/{hit['id']}/image").status_code == 200
    assert opened() == []


# -- local sources, as the operator names them -----------------------------------------------


def test_a_local_manifest_reads_remote_and_local_images(server: IIIFTestServer, tmp_path: Path):
    base = server.base_url
    local_image = picture(tmp_path / "pictures" / "local.jpg")
    doc = manifest(f"{base}/lf/local.json", f"{base}/lf/remote.jpg", local_image.as_uri())
    server.add_document("/lf/local.json", doc)  # serves the remote image
    source = write_json(tmp_path / "local.json", doc)
    store = tmp_path / "store"

    assert index(str(source), store=store) == 0

    counts = stats(store)
    assert counts["items"] == 2 and counts["failed"] == 0
    # Its local picture is served as a folder's are (a browser cannot open file:// links).
    with TestClient(create_app(Settings(store=store))) as client:
        [hit] = [h for h in search_all(client) if h["image_url"].startswith("/api/")]
        served = client.get(hit["thumbnail_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).size[0] <= 256

    # A store indexed before manifests said so learns it when the next run finds the
    # manifest unchanged.
    with closing(Store.open(store)) as opened_store, opened_store._conn() as conn:
        conn.execute("UPDATE manifests SET local_file = NULL")
    with TestClient(create_app(Settings(store=store))) as client:
        assert client.get(hit["thumbnail_url"]).status_code == 404
    assert index(str(source), store=store) == 0
    assert stats(store)["last_run"]["summary"]["unchanged_manifests"] == 1
    with TestClient(create_app(Settings(store=store))) as client:
        assert client.get(hit["thumbnail_url"]).status_code == 200


def test_a_local_collection_reaches_local_files_only_through_local_documents(
    server: IIIFTestServer, tmp_path: Path, watch: Callable[..., None]
):
    base = server.base_url
    mine = picture(tmp_path / "pictures" / "mine.jpg")
    local_m = write_json(tmp_path / "m.json", manifest("urn:local-m", mine.as_uri()))
    private = picture(tmp_path / "private" / "private.jpg", "green")
    watch(private)
    # A remote manifest, listed by the local collection, naming a file: still remote.
    remote = server.add_document(
        "/lf/remote.json", manifest(f"{base}/lf/remote.json", private.as_uri())
    )
    members = [{"id": str(local_m), "type": "Manifest"}, {"id": remote, "type": "Manifest"}]
    source = write_json(tmp_path / "c.json", collection("urn:local-c", members))
    store = tmp_path / "store"

    assert index(str(source), store=store) == 0

    counts = stats(store)
    assert counts["manifests"] == 2 and counts["items"] == 1 and counts["failed"] == 1
    [failed] = failures(store, items=True).values()
    assert failed["url"] == private.as_uri() and REFUSED in failed["reason"]
    with TestClient(create_app(Settings(store=store))) as client:
        [hit] = search_all(client)  # the local manifest's: served
        assert client.get(hit["thumbnail_url"]).status_code == 200
        # The remote manifest's file is never served, though a local collection listed it.
        assert image_error(client, failed["item_id"]) == (404, "not_a_local_file")
    assert opened() == []


def test_folder_images_are_still_served_after_the_folder_moved(tmp_path: Path):
    scans = tmp_path / "scans"
    picture(scans / "box" / "a scan.jpg")
    store = tmp_path / "store"
    assert index(str(scans), store=store) == 0
    moved = tmp_path / "moved"
    scans.rename(moved)
    assert index(str(moved), store=store) == 0

    with TestClient(create_app(Settings(store=store))) as client:
        hit = client.get("/api/search", params={"q": "circle", "k": 1}).json()["results"][0]
        answer = client.get(f"/api/items/{hit['id']}/image")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"


def test_a_folder_image_is_served_upright_as_its_exif_orientation_says(tmp_path: Path):
    # Stored 400 x 200, red at its top left, shown turned a quarter clockwise (6).
    stored = Image.new("RGB", (400, 200), "white")
    stored.paste((255, 0, 0), (0, 0, 100, 50))
    exif = Image.Exif()
    exif[0x0112] = 6
    scans = tmp_path / "scans"
    scans.mkdir()
    stored.save(scans / "sideways.jpg", quality=95, exif=exif)
    store = tmp_path / "store"
    assert index(str(scans), store=store) == 0
    [ref] = read_folder(scans).images

    with TestClient(create_app(Settings(store=store))) as client:
        for params, size in (({}, (200, 400)), ({"size": 100}, (50, 100))):
            answer = client.get(f"/api/items/{ref.item_id}/image", params=params)
            assert answer.status_code == 200
            served = Image.open(io.BytesIO(answer.content))
            assert served.size == size
            assert 0x0112 not in served.getexif()  # a browser turns nothing again
            width, height = size
            red, white = served.getpixel((width - 5, 5)), served.getpixel((5, height - 5))
            assert red[0] > 200 > max(red[1:]) and min(white) > 230  # red now top right
