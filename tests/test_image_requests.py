"""Which pictures are asked for, end to end: real manifests indexed by the CLI from the
local IIIF server (which serves exactly the size asked and refuses what a level 0
service need not serve), the URLs it logged, and the links the API then gives.

- a painted region (TU Delft's ImageApiSelector, V&A's region in the image URL) is
  fetched, shown and sized as that region;
- a level 0 service that the manifest describes by id and profile alone is read first
  (its info.json) and asked for a listed size, not its master file; one that lists only
  tiles (a static tree) is asked for the few tiles that make the model's picture, and
  for its master file only when one of them is missing;
- a canvas's size is not taken for the image's: a 200 x 297 canvas painted with an
  11458 x 17014 image is asked for a bounded size, not "full";
- a region that a level 0 service cannot crop is cut from the whole image by the
  indexer: its vector is the region's, as from a service that crops it.
"""

from __future__ import annotations

import io
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.iiif import parse_document
from indexer.images import REGION_OUTSIDE
from indexer.store import Store
from service.app import create_app
from service.settings import Settings
from tests.iiif_images import BitmapPicture, sheet_of_drawings
from tests.iiif_server import IIIFTestServer, key_of
from tests.regard_fixtures import index

TUDELFT = "edge/tudelft_exhibition-1.json"
VAM = "edge/vam_presentation3-paging.json"
STATIC = "/docs/static-services.json"  # added to the server below

# Services of the image-info fixtures, described in a manifest as briefly as many are.
DLCS = "https://dlcs.io/thumbs/2/1/9cdfff15-8abe-464a-94ce-28b14f246374"  # v2 level 0
UVA = "https://uvacreate.gitlab.io/freedom-of-the-streets/iiif-level0-maps/iiif/mmph_wae681"
ROTTERDAM = "https://rotterdamspubliek.nl/iiif/NL-RtSA_4001_1985-1014-01"  # 9102 x 6922
SPK = (  # 11458 x 17014, level 2, maxWidth/maxHeight 10000
    "https://digital.iai.spk-berlin.de:443/viewer/api/v1/records/630107580/files/images"
    "/00000001.tif"
)
LEVEL_0 = "http://iiif.io/api/image/2/level0.json"
LEVEL_2 = "http://iiif.io/api/image/2/level2.json"


def painted_canvas(n: int, service: dict, size: tuple[int, int], region: str | None = None) -> dict:
    """Canvas `n` (of `size`) painted with the image of `service`, or its `region`."""
    base = service.get("id") or service["@id"]
    canvas = f"https://example.org/static/canvas/{n}"
    body = {"id": f"{base}/full/full/0/default.jpg", "type": "Image", "format": "image/jpeg"}
    body["service"] = [service]  # no width nor height: the canvas's are not the image's
    if region:  # only part of the image is painted (TU Delft's form)
        selector = {"type": "ImageApiSelector", "region": region}
        body = {"type": "SpecificResource", "source": body, "selector": selector}
    annotation = {"id": f"{canvas}/a", "type": "Annotation", "motivation": "painting"}
    annotation |= {"body": body, "target": canvas}
    page = {"id": f"{canvas}/p", "type": "AnnotationPage", "items": [annotation]}
    return {"id": canvas, "type": "Canvas", "width": size[0], "height": size[1], "items": [page]}


def manifest_of(name: str, label: str, canvases: list[dict]) -> dict:
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": f"https://example.org/{name}/manifest",
        "type": "Manifest",
        "label": {"en": [label]},
        "items": canvases,
    }


STATIC_MANIFEST = manifest_of(
    "static",
    "Level 0 services described by id and profile only",
    [
        painted_canvas(0, {"@id": DLCS, "@type": "ImageService2", "profile": LEVEL_0}, (648, 1024)),
        painted_canvas(1, {"id": UVA, "type": "ImageService3", "profile": "level0"}, (1999, 1485)),
        painted_canvas(
            2, {"@id": ROTTERDAM, "@type": "ImageService2", "profile": LEVEL_0}, (9102, 6922)
        ),
        painted_canvas(3, {"@id": SPK, "@type": "ImageService2", "profile": LEVEL_2}, (200, 297)),
    ],
)


def refs(url: str) -> list:
    """The images of a served document, as the indexer reads them."""
    return parse_document(httpx.get(url).json(), url).images


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, iiif_server: IIIFTestServer):
    """The three manifests indexed by the CLI (regard-test: a 64 px model), with the
    requests the server had meanwhile."""
    store = tmp_path_factory.mktemp("requests") / "store"
    iiif_server.reset()
    static = iiif_server.add_document(STATIC, STATIC_MANIFEST)
    sources = [iiif_server.url(TUDELFT), iiif_server.url(VAM), static]
    items = {source: refs(source) for source in sources}
    try:
        assert index(*sources, store=store) == 0
        log = list(iiif_server.log)
    finally:
        iiif_server.reset()
    return store, items, log


@pytest.fixture(scope="module")
def api(indexed) -> TestClient:
    with TestClient(create_app(Settings(store=indexed[0]))) as client:
        yield client


def requested(log: list[tuple[str, str, int]], service: str) -> list[str]:
    """What was asked of a service (the part after its id), and answered."""
    base = key_of(service) + "/"
    return [key[len(base) :] for _, key, status in log if key.startswith(base) and status == 200]


def index_served(
    server: IIIFTestServer, manifest: dict, store: Path, *, not_found: str | None = None
) -> tuple[list, list[tuple[str, str, int]]]:
    """Serve `manifest` and index it into `store` by the CLI, the URL `not_found` answered
    404; its images, and the requests the server had meanwhile."""
    server.reset()
    try:
        url = server.add_document(f"/docs/{manifest['id'].split('/')[-2]}.json", manifest)
        images = refs(url)
        if not_found:
            server.fail(not_found, "status", status=404)
        assert index(url, store=store) == 0
        return images, list(server.log)
    finally:
        server.reset()


def served_size(url: str) -> tuple[int, int]:
    response = httpx.get(url)
    assert response.status_code == 200, (url, response.text)
    return Image.open(io.BytesIO(response.content)).size


# --- regions ---------------------------------------------------------------------------


def test_a_selector_region_is_fetched_shown_and_sized_as_that_region(
    indexed, api, iiif_server: IIIFTestServer
):
    _, items, log = indexed
    tudelft = items[iiif_server.url(TUDELFT)]
    cropped = [ref for ref in tudelft if ref.region]
    assert [ref.region for ref in cropped] == [
        "4164,352,3702,5420",
        "4415,422,3758,5440",
        "4479,548,3718,5404",
    ]
    first = cropped[0]
    assert requested(log, first.service.id) == ["4164,352,3702,5420/64,/0/default.jpg"]

    item = api.get(f"/api/items/{first.item_id}").json()
    assert item["region"] == "4164,352,3702,5420"
    assert (item["width"], item["height"]) == (3702, 5420)  # the region's, not 8174 x 6036
    # A level 1 service: ",h" for a portrait picture ("!w,h" is required at level 2 only).
    base = first.service.id
    assert item["thumbnail_url"] == f"{base}/4164,352,3702,5420/,256/0/default.jpg"
    assert item["preview_url"] == f"{base}/4164,352,3702,5420/,1024/0/default.jpg"
    assert served_size(item["thumbnail_url"]) == (175, 256)

    whole = next(ref for ref in tudelft if not ref.region)  # landscape, 8722 x 6423
    item = api.get(f"/api/items/{whole.item_id}").json()
    assert item["region"] is None and (item["width"], item["height"]) == (8722, 6423)
    assert item["thumbnail_url"] == f"{whole.service.id}/full/256,/0/default.jpg"


def test_a_region_in_the_image_url_is_the_painted_region(indexed, api, iiif_server):
    _, items, log = indexed
    vam = items[iiif_server.url(VAM)]
    cropped = [ref for ref in vam if ref.region]
    assert len(cropped) == 3 and {ref.region for ref in cropped} == {"140,870,1800,1778"}
    first = cropped[0]
    assert first.image_url == f"{first.service.id}/140,870,1800,1778/full/0/default.jpg"
    # 1800 x 1778 is the crop's size, not the image's: the image's is not known.
    assert (first.width, first.height) == (None, None)
    assert requested(log, first.service.id) == ["140,870,1800,1778/,64/0/default.jpg"]
    assert not any("/full/" in key for key in requested(log, first.service.id))

    item = api.get(f"/api/items/{first.item_id}").json()
    assert (item["region"], item["width"], item["height"]) == ("140,870,1800,1778", 1800, 1778)
    assert item["thumbnail_url"] == f"{first.service.id}/140,870,1800,1778/!256,256/0/default.jpg"


# --- level 0 and sizes -----------------------------------------------------------------


def test_a_level_0_service_without_sizes_is_read_before_it_is_asked(indexed, api, iiif_server):
    _, items, log = indexed
    dlcs, uva, rotterdam, _ = items[iiif_server.base_url + STATIC]
    # DLCS lists its sizes in its info.json only, and says sizeByWhListed: "w,h".
    assert requested(log, dlcs.service.id) == ["info.json", "full/127,200/0/default.jpg"]
    assert requested(log, uva.service.id) == ["info.json", "full/125,93/0/default.jpg"]
    # No sizes even there, but tiles (a static tree): the two that make the image at
    # scale factor 16, 569 x 433, not its 63 MP master file.
    assert requested(log, rotterdam.service.id) == [
        "info.json",
        "0,0,8192,6922/512,/0/default.jpg",
        "8192,0,910,6922/57,/0/default.jpg",
    ]

    # Cards show a listed size of a thumbnail's scale (the store kept the sizes its
    # info.json lists), not the model's small picture nor the master file.
    item = api.get(f"/api/items/{dlcs.item_id}").json()
    assert item["thumbnail_url"] == f"{dlcs.service.id}/full/253,400/0/default.jpg"
    assert served_size(item["thumbnail_url"]) == (253, 400)
    # Rotterdam's show the whole image: the only picture it serves in one file.
    item = api.get(f"/api/items/{rotterdam.item_id}").json()
    assert item["thumbnail_url"] == f"{rotterdam.service.id}/full/full/0/default.jpg"


def test_a_picture_made_of_tiles_is_stored_as_the_service_at_its_scale_factor(indexed, iiif_server):
    store, items, _ = indexed
    rotterdam = items[iiif_server.base_url + STATIC][2]
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        query = "SELECT fetched_url, fetched_width, fetched_height FROM items WHERE id = ?"
        fetched = conn.execute(query, [rotterdam.item_id]).fetchone()
    # Not one tile's URL: a link would take that piece for the picture.
    assert fetched == (f"{rotterdam.service.id}#scaleFactor=16", 569, 433)


def test_a_missing_tile_is_made_up_for_by_the_whole_image_with_the_same_vector(
    indexed, tmp_path: Path, iiif_server: IIIFTestServer
):
    tiled_store, items, _ = indexed
    tiled = items[iiif_server.base_url + STATIC][2]
    service = tiled.service.id
    described = {"@id": ROTTERDAM, "@type": "ImageService2", "profile": LEVEL_0}
    canvas = painted_canvas(2, described, (9102, 6922))
    manifest = manifest_of("tree-missing-a-tile", "A static tree without a tile", [canvas])
    store = tmp_path / "store"
    missing = f"{service}/8192,0,910,6922/57,/0/default.jpg"
    [whole], log = index_served(iiif_server, manifest, store, not_found=missing)
    assert requested(log, service) == [
        "info.json",
        "0,0,8192,6922/512,/0/default.jpg",
        "full/full/0/default.jpg",  # the tile at the right edge was not found (404)
    ]
    [from_tiles], [from_whole] = vectors(tiled_store, [tiled]), vectors(store, [whole])
    assert cosine(from_tiles, from_whole) > 0.99


def pictures(item: dict) -> list[str]:
    return [item["thumbnail_url"], item["preview_url"], item["large_url"]]


def links_of(store: Path, images: list) -> list[list[str]]:
    with TestClient(create_app(Settings(store=store))) as client:
        return [pictures(client.get(f"/api/items/{ref.item_id}").json()) for ref in images]


# A 2400 x 2400 master behind a level 0 service that lists its sizes in its info.json only.
MASTER_SIZES = [(150, 150), (300, 300), (1200, 1200), (1800, 1800), (2400, 2400)]


def test_every_link_to_a_level_0_picture_is_a_listed_size_and_a_re_harvest_keeps_them(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    picture = BitmapPicture(sheet_of_drawings(1200))
    static = iiif_server.add_image_service("/listed/master", picture, level=0, sizes=MASTER_SIZES)
    service = {"@id": static, "@type": "ImageService2", "profile": LEVEL_0}
    manifest = manifest_of("listed-once", "Read twice", [painted_canvas(40, service, (24, 24))])
    store = tmp_path / "store"
    iiif_server.reset()
    try:
        url = iiif_server.add_document("/docs/listed-once.json", manifest)
        images = refs(url)
        assert index(url, store=store) == 0
        assert requested(iiif_server.log, static) == ["info.json", "full/150,/0/default.jpg"]
        # Each link asks for the listed size of its scale (about 256, 1024 and up to 2000
        # pixels), never the master file; and the service serves each.
        expected = [(300, 300), (1200, 1200), (1800, 1800)]
        [links] = links_of(store, images)
        assert links == [f"{static}/full/{w},/0/default.jpg" for w, _ in expected]
        assert [served_size(link) for link in links] == expected

        # The manifest changes (its label), not its picture: read and saved again, with
        # its service as briefly described as before; nothing else is fetched.
        iiif_server.reset()
        renamed = {**manifest, "label": {"en": ["Renamed"]}}
        iiif_server.add_document("/docs/listed-once.json", renamed)
        assert index(url, store=store) == 0
        assert iiif_server.count(static + "/*") == 0
        with TestClient(create_app(Settings(store=store))) as client:
            item = client.get(f"/api/items/{images[0].item_id}").json()
        assert item["manifest_label"] == "Renamed" and pictures(item) == links
    finally:
        iiif_server.reset()

    # A store indexed before the info.json was kept: its thumbnails are the pictures the
    # indexer fetched (small), the other links the whole image, all a level 0 must serve.
    with closing(sqlite3.connect(store / "store.sqlite")) as conn, conn:
        conn.execute("ALTER TABLE items DROP COLUMN described_service")
        conn.execute("PRAGMA user_version = 2")
    whole = f"{static}/full/full/0/default.jpg"
    assert links_of(store, images) == [[f"{static}/full/150,/0/default.jpg", whole, whole]]


def test_the_canvas_size_is_not_taken_for_the_image_size(indexed, api, iiif_server):
    _, items, log = indexed
    spk = items[iiif_server.base_url + STATIC][3]  # a 200 x 297 canvas, an 11458 x 17014 image
    assert (spk.width, spk.height) == (None, None)
    assert requested(log, spk.service.id) == ["full/!128,128/0/default.jpg"]
    item = api.get(f"/api/items/{spk.item_id}").json()
    assert (item["width"], item["height"]) == (None, None)
    assert item["thumbnail_url"] == f"{spk.service.id}/full/!256,256/0/default.jpg"
    assert served_size(item["thumbnail_url"]) == (172, 256)


def test_no_image_was_asked_for_beyond_the_model_size(indexed):
    _, _, log = indexed
    whole = [key for _, key, _ in log if "/full/full/" in key or "/full/max/" in key]
    assert whole == []  # Rotterdam's, a level 0 service with tiles only, included


def test_every_image_was_indexed(indexed):
    stats = Store.open(Path(indexed[0])).stats()
    assert stats["failed"] == 0 and stats["pending"] == 0


# --- regions a level 0 service cannot crop ---------------------------------------------

CELL = 800  # a sheet of 2 x 2 drawings
SHEET_SIZE = (2 * CELL, 2 * CELL)
TOP_LEFT, BOTTOM_RIGHT = f"0,0,{CELL},{CELL}", f"{CELL},{CELL},{CELL},{CELL}"
PAST_THE_EDGE = f"{CELL},{CELL},2000,2000"  # a server clips it to BOTTOM_RIGHT
OUTSIDE = "3000,0,100,100"
LISTED = [(200, 200), (400, 400), (800, 800), SHEET_SIZE]


def _service(service_id: str, level: int, **facts) -> dict:
    profile = f"http://iiif.io/api/image/2/level{level}.json"
    return {"@id": service_id, "@type": "ImageService2", "profile": profile, **facts}


@pytest.fixture(scope="module")
def sheets(tmp_path_factory, iiif_server: IIIFTestServer):
    """One sheet served by three services, and regions of it indexed by the CLI: level 0
    described by id and profile alone, level 0 with its size and sizes in the manifest,
    and level 2, which crops. Returns the store, the images, the services and the log."""
    picture = BitmapPicture(sheet_of_drawings(CELL))
    static = iiif_server.add_image_service("/sheets/static/a", picture, level=0)
    listed = iiif_server.add_image_service("/sheets/listed/a", picture, level=0, sizes=LISTED)
    scaling = iiif_server.add_image_service("/sheets/scaling/a", picture, level=2)
    sizes = [{"width": w, "height": h} for w, h in LISTED]
    described = {"width": SHEET_SIZE[0], "height": SHEET_SIZE[1], "sizes": sizes}
    painted = [
        (_service(static, 0), TOP_LEFT),
        (_service(static, 0), PAST_THE_EDGE),
        (_service(static, 0), OUTSIDE),
        (_service(listed, 0, **described), TOP_LEFT),
        (_service(scaling, 2), TOP_LEFT),
        (_service(scaling, 2), BOTTOM_RIGHT),
        (_service(scaling, 2), None),
    ]
    canvases = [
        painted_canvas(10 + n, service, SHEET_SIZE, region)
        for n, (service, region) in enumerate(painted)
    ]
    manifest = manifest_of("sheets", "Regions of one sheet", canvases)
    iiif_server.reset()
    url = iiif_server.add_document("/docs/sheets.json", manifest)
    store = tmp_path_factory.mktemp("sheets") / "store"
    try:
        images = refs(url)
        assert index(url, store=store) == 0
        log = list(iiif_server.log)
    finally:
        iiif_server.reset()
    return store, images, (static, listed, scaling), log


def vectors(store: Path, images: list) -> list[np.ndarray]:
    """The stored vector of each image, in order; each must have been indexed."""
    with closing(Store.open(store)) as opened:
        found = [opened.get_item(ref.item_id) for ref in images]
        assert all(item and item.state == "indexed" for item in found)
        return [opened.vector_of(item.key).astype(np.float32) for item in found]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_a_region_a_level_0_service_cannot_crop_is_cut_from_the_whole_image(sheets):
    store, images, _, _ = sheets
    indexed = [ref for ref in images if ref.region != OUTSIDE]
    static, clipped, listed, cropped, cropped_corner, whole = vectors(store, indexed)
    # The region's vector, as from a service that crops it, not the sheet's.
    assert cosine(static, cropped) > 0.99 and cosine(listed, cropped) > 0.99
    assert cosine(static, whole) < 0.9
    # Partly outside: clipped as a server clips it.
    assert cosine(clipped, cropped_corner) > 0.99 and cosine(clipped, whole) < 0.9


def test_the_whole_image_is_asked_of_level_0_with_its_info_read_once(sheets):
    _, _, (static, listed, _), log = sheets
    # Three regions of one image share its info.json; the region wholly outside it is
    # not fetched at all.
    assert requested(log, static) == ["info.json"] + ["full/full/0/default.jpg"] * 2
    # A listed size in which the region still covers the model's 64 pixels: 100 x 100.
    assert requested(log, listed) == ["full/200,/0/default.jpg"]


def test_a_region_outside_the_image_is_that_items_failure(sheets):
    store, images, _, _ = sheets
    outside = next(ref for ref in images if ref.region == OUTSIDE)
    with closing(Store.open(store)) as opened:
        assert opened.get_item(outside.item_id).state == "failed"
        failures = [f for f in opened.failures() if f["item_id"] == outside.item_id]
    assert [(f["stage"], f["reason"]) for f in failures] == [("fetch", REGION_OUTSIDE)]


def test_the_api_says_where_the_region_lies_in_pictures_of_the_whole_image(sheets):
    store, images, (static, listed, scaling), _ = sheets
    with TestClient(create_app(Settings(store=store))) as client:
        items = [client.get(f"/api/items/{ref.item_id}").json() for ref in images]
    top_left, clipped, outside, listed_top_left, cropped, cropped_corner, whole = items
    # Level 0 links show the whole sheet: the client is told which part is the item.
    quarter = {"x": 0.0, "y": 0.0, "w": 0.5, "h": 0.5}
    assert top_left["crop"] == listed_top_left["crop"] == quarter
    assert clipped["crop"] == {"x": 0.5, "y": 0.5, "w": 0.5, "h": 0.5}  # as a server clips
    assert (clipped["width"], clipped["height"]) == (CELL, CELL)
    # A service that crops links to the region itself; the whole image needs no cut.
    assert cropped["crop"] is None and cropped_corner["crop"] is None and whole["crop"] is None
    assert cropped["thumbnail_url"] == f"{scaling}/{TOP_LEFT}/!256,256/0/default.jpg"
    assert outside["crop"] is None  # nothing of it is in the image
    # The listed size in which the region, once cut, still fills the box.
    assert pictures(listed_top_left) == [
        f"{listed}/full/800,/0/default.jpg",  # the region: 400 x 400, for 256
        f"{listed}/full/1600,/0/default.jpg",  # the largest listed: 800 x 800, for 1024
        f"{listed}/full/full/0/default.jpg",  # the whole sheet is within 2000 pixels
    ]
    assert served_size(listed_top_left["thumbnail_url"]) == (800, 800)
    # No sizes listed anywhere: the whole image, which the indexer fetched.
    assert top_left["thumbnail_url"] == f"{static}/full/full/0/default.jpg"


def test_a_cut_region_is_stored_at_its_own_size(sheets):
    store, images, _, _ = sheets
    ids = [images[0].item_id, images[3].item_id]  # the top left, from level 0 services
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        query = "SELECT fetched_width, fetched_height FROM items WHERE id IN (?, ?)"
        sizes = conn.execute(query, ids).fetchall()
    # Both cut from a 200 x 200 picture: a JPEG draft of the whole, and a listed size.
    assert sizes == [(100, 100), (100, 100)]


# --- a level 0 service that serves tiles only ---------------------------------------------


def test_a_region_of_a_static_tree_is_made_of_the_tiles_over_it(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    picture = BitmapPicture(sheet_of_drawings(CELL))
    tiles = {"width": 128, "scaleFactors": [1, 2, 4, 8]}  # at 8: 2 x 2 tiles, 200 x 200
    tree = iiif_server.add_image_service("/trees/tiled/a", picture, level=0, tiles=tiles)
    scaling = iiif_server.add_image_service("/trees/scaling/a", picture, level=2)
    painted = [(tree, 0, TOP_LEFT), (tree, 0, None), (scaling, 2, TOP_LEFT), (scaling, 2, None)]
    canvases = [
        painted_canvas(50 + n, _service(service, level), SHEET_SIZE, region)
        for n, (service, level, region) in enumerate(painted)
    ]
    manifest = manifest_of("trees", "Regions of a sheet in a static tree", canvases)
    store = tmp_path / "store"
    images, log = index_served(iiif_server, manifest, store)
    # The top left drawing (800 x 800: 100 x 100 at scale factor 8) is in the first
    # tile; the whole sheet is the four. Items are fetched at once: in any order.
    assert sorted(requested(log, tree)) == [
        "0,0,1024,1024/128,/0/default.jpg",
        "0,0,1024,1024/128,/0/default.jpg",
        "0,1024,1024,576/128,/0/default.jpg",
        "1024,0,576,1024/72,/0/default.jpg",
        "1024,1024,576,576/72,/0/default.jpg",
        "info.json",
    ]
    region, whole, cropped, scaled = vectors(store, images)
    # The region's vector, as from a service that crops it; the sheet's, as scaled whole.
    assert cosine(region, cropped) > 0.99 and cosine(whole, scaled) > 0.99
    assert cosine(region, whole) < 0.9
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        query = "SELECT fetched_url, fetched_width, fetched_height FROM items WHERE id = ?"
        fetched = [conn.execute(query, [ref.item_id]).fetchone() for ref in images[:2]]
    assert fetched == [(f"{tree}#scaleFactor=8", 100, 100), (f"{tree}#scaleFactor=8", 200, 200)]


def test_a_static_tree_down_to_one_tile_shows_that_tile_not_its_master_file(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    # Cards and previews link a picture; a tree listing no size offers one small enough
    # only where its smallest level is a single tile (as vips makes its trees).
    picture = BitmapPicture(sheet_of_drawings(CELL))
    one_tile = {"width": 128, "scaleFactors": [1, 2, 4, 8, 16]}  # at 16: 100 x 100
    several = {"width": 128, "scaleFactors": [1, 2, 4, 8]}  # at 8: 200 x 200, 2 x 2 tiles
    down = iiif_server.add_image_service("/trees/down/a", picture, level=0, tiles=one_tile)
    stops = iiif_server.add_image_service("/trees/stops/a", picture, level=0, tiles=several)
    painted = [(down, None), (down, TOP_LEFT), (stops, None)]
    canvases = [
        painted_canvas(60 + n, _service(service, 0), SHEET_SIZE, region)
        for n, (service, region) in enumerate(painted)
    ]
    store = tmp_path / "store"
    images, _ = index_served(iiif_server, manifest_of("trees2", "Trees", canvases), store)
    with TestClient(create_app(Settings(store=store))) as client:
        whole, region, stopped = (client.get(f"/api/items/{i.item_id}").json() for i in images)
    one = f"{down}/full/100,/0/default.jpg"
    assert pictures(whole) == [one, one, f"{down}/full/full/0/default.jpg"]
    assert served_size(one) == (100, 100)  # a file of the tree
    assert pictures(region)[:2] == [one, one]
    assert region["crop"] == {"x": 0.0, "y": 0.0, "w": 0.5, "h": 0.5}  # cut by the client
    assert stopped["thumbnail_url"] == f"{stops}/full/full/0/default.jpg"  # nothing smaller
