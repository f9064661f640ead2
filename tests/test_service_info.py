"""What the indexer takes from an image service's info.json, end to end: manifests indexed
by the CLI from the local IIIF test server, the requests it logged, what the store kept
and the links the API gives.

- a remote manifest that names a local path as its service id never has that path's
  info.json read (nor its numbers used);
- an info.json that states no level leaves a level 0 service at level 0;
- a region is left to a service that crops it, though the manifest gives the size of a
  derivative smaller than the region's place;
- an info.json that the server could not give for now (503) fails the item, and the next
  run reads it and fetches a listed size; one that is not there (404) leaves the
  manifest's word, as before.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

from fastapi.testclient import TestClient

from indexer.fetch import LOCAL_FROM_REMOTE, Fetcher
from indexer.pipeline import read_info
from indexer.store import Store
from service.app import create_app
from service.settings import Settings
from tests.iiif_images import BitmapPicture, sheet_of_drawings
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import index
from tests.test_image_requests import (
    BOTTOM_RIGHT,
    CELL,
    LISTED,
    SHEET_SIZE,
    _service,
    manifest_of,
    painted_canvas,
    refs,
    requested,
)


def item_of(store: Path, item_id: str):
    with closing(Store.open(store)) as opened:
        item = opened.get_item(item_id)
        failures = [f for f in opened.failures() if f["item_id"] == item_id]
    return item, failures


def api_item(store: Path, item_id: str) -> dict:
    with TestClient(create_app(Settings(store=store))) as client:
        return client.get(f"/api/items/{item_id}").json()


def test_a_remote_manifest_never_has_a_local_info_json_read(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    folder = tmp_path / "secret"
    folder.mkdir()
    info = {
        "@context": "http://iiif.io/api/image/2/context.json",
        "@id": str(folder),
        "profile": "http://iiif.io/api/image/2/level0.json",
        "width": 4321,
        "height": 1234,
        "sizes": [{"width": 432, "height": 123}],
    }
    (folder / "info.json").write_text(json.dumps(info))
    canvas = painted_canvas(1, _service(str(folder), 0), (100, 100))
    manifest = manifest_of("local-service", "A service at a local path", [canvas])
    store = tmp_path / "store"
    iiif_server.reset()
    try:
        url = iiif_server.add_document("/docs/local-service.json", manifest, rewrite=False)
        [image] = refs(url)
        assert index(url, store=store) == 0
    finally:
        iiif_server.reset()
    item, failures = item_of(store, image.item_id)
    # Refused as its image is: nothing of the file was used, not even to make the URL.
    assert item.state == "failed" and item.described_service is None
    assert [(f["url"], f["reason"]) for f in failures] == [
        (f"{folder}/full/full/0/default.jpg", LOCAL_FROM_REMOTE)
    ]
    with Fetcher() as fetcher:
        assert read_info(str(folder), fetcher) is None  # a valid info.json, not read

    # Named by a manifest the operator gave as a local file, it is read: the request
    # asks for the size it lists.
    local = tmp_path / "manifest.json"
    local.write_text(json.dumps(manifest))
    assert index(str(local), store=tmp_path / "local-store") == 0
    item, failures = item_of(tmp_path / "local-store", image.item_id)
    assert [f["url"] for f in failures] == [f"{folder}/full/432,/0/default.jpg"]


def test_an_info_json_without_a_profile_leaves_a_level_0_service_at_level_0(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    picture = BitmapPicture(sheet_of_drawings(CELL))
    static = iiif_server.add_image_service("/unprofiled/a", picture, level=0, sizes=LISTED)
    canvas = painted_canvas(1, _service(static, 0), (9, 9))
    manifest = manifest_of("unprofiled", "Level 0", [canvas])
    # Its info.json gives the size and sizes, but no profile (nor context): its level is
    # the manifest's word alone.
    sizes = [{"width": w, "height": h} for w, h in LISTED]
    info = {"@id": static, "width": SHEET_SIZE[0], "height": SHEET_SIZE[1], "sizes": sizes}
    store = tmp_path / "store"
    iiif_server.reset()
    try:
        iiif_server.add_document("/unprofiled/a/info.json", info, rewrite=False)
        url = iiif_server.add_document("/docs/unprofiled.json", manifest)
        [image] = refs(url)
        assert index(url, store=store) == 0
        log = list(iiif_server.log)
    finally:
        iiif_server.reset()
    assert requested(log, static) == ["info.json", "full/200,/0/default.jpg"]
    item, _ = item_of(store, image.item_id)
    assert item.state == "indexed" and item.described_service["level"] == 0
    assert api_item(store, image.item_id)["thumbnail_url"] == f"{static}/full/400,/0/default.jpg"


def test_a_region_is_left_to_a_service_that_crops_though_the_manifest_gives_a_smaller_size(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    picture = BitmapPicture(sheet_of_drawings(CELL))
    scaling = iiif_server.add_image_service("/derivative/a", picture, level=2)
    canvas = painted_canvas(1, _service(scaling, 2), (400, 400), BOTTOM_RIGHT)
    # The resource's size is a derivative's (Wellcome's 742 x 1024 for 2569 x 3543): the
    # region lies outside it, not outside the image.
    resource = canvas["items"][0]["items"][0]["body"]["source"]
    resource |= {"width": 400, "height": 400}
    manifest = manifest_of("derivative", "A derivative's size", [canvas])
    store = tmp_path / "store"
    iiif_server.reset()
    try:
        url = iiif_server.add_document("/docs/derivative.json", manifest)
        [image] = refs(url)
        assert (image.width, image.height) == (400, 400)
        assert index(url, store=store) == 0
        log = list(iiif_server.log)
    finally:
        iiif_server.reset()
    [asked] = requested(log, scaling)
    assert asked.startswith(BOTTOM_RIGHT + "/")
    item, failures = item_of(store, image.item_id)
    assert item.state == "indexed" and failures == []
    shown = api_item(store, image.item_id)
    assert shown["thumbnail_url"] == f"{scaling}/{BOTTOM_RIGHT}/!256,256/0/default.jpg"
    assert shown["crop"] is None


def test_an_info_json_the_server_could_not_give_for_now_is_read_by_the_next_run(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    picture = BitmapPicture(sheet_of_drawings(CELL))
    down = iiif_server.add_image_service("/down/a", picture, level=0, sizes=LISTED)
    gone = iiif_server.add_image_service("/gone/a", picture, level=0, sizes=LISTED)
    canvases = [
        painted_canvas(1, _service(down, 0), SHEET_SIZE),
        painted_canvas(2, _service(down, 0), SHEET_SIZE, BOTTOM_RIGHT),
        painted_canvas(3, _service(gone, 0), SHEET_SIZE),
    ]
    manifest = manifest_of("down", "A server down for now", canvases)
    store = tmp_path / "store"
    iiif_server.reset()
    try:
        url = iiif_server.add_document("/docs/down.json", manifest)
        whole, region, without = refs(url)
        iiif_server.fail(down + "/info.json", "status", status=503)
        iiif_server.fail(gone + "/info.json", "status", status=404)
        assert index(url, store=store) == 0
        # Asked once a run (with the fetcher's retries), for both items; no master file.
        assert iiif_server.count(down + "/info.json") == 3
        assert iiif_server.count(down + "/full/*") == 0
        # Not there at all: the manifest's word stands, the whole image is fetched.
        assert requested(iiif_server.log, gone) == ["full/full/0/default.jpg"]
        for ref in (whole, region):
            item, failures = item_of(store, ref.item_id)
            assert item.state == "failed"
            assert [(f["stage"], f["reason"]) for f in failures] == [
                ("fetch", "info.json: HTTP 503 Service Unavailable")
            ]
        assert item_of(store, without.item_id)[0].state == "indexed"

        iiif_server.reset()  # the server is back
        iiif_server.add_document("/docs/down.json", manifest)
        assert index(url, store=store) == 0
        assert requested(iiif_server.log, down) == ["info.json", *["full/200,/0/default.jpg"] * 2]
        assert requested(iiif_server.log, gone) == []
    finally:
        iiif_server.reset()
    for ref in (whole, region):
        item, _ = item_of(store, ref.item_id)
        assert item.state == "indexed" and item.described_service["sizes"]
    thumbnail = api_item(store, whole.item_id)["thumbnail_url"]
    assert thumbnail == f"{down}/full/400,/0/default.jpg"
