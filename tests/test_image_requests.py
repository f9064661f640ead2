"""Which pictures are asked for, end to end: real manifests indexed by the CLI from the
local IIIF server (which serves exactly the size asked and refuses what a level 0
service need not serve), the URLs it logged, and the links the API then gives.

- a painted region (TU Delft's ImageApiSelector, V&A's region in the image URL) is
  fetched, shown and sized as that region;
- a level 0 service that the manifest describes by id and profile alone is read first
  (its info.json) and asked for a listed size, not its master file;
- a canvas's size is not taken for the image's: a 200 x 297 canvas painted with an
  11458 x 17014 image is asked for a bounded size, not "full".
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.iiif import parse_document
from indexer.store import Store
from service.app import create_app
from service.settings import Settings
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


def _canvas(n: int, service: dict, size: tuple[int, int]) -> dict:
    base = service.get("id") or service["@id"]
    canvas = f"https://example.org/static/canvas/{n}"
    body = {"id": f"{base}/full/full/0/default.jpg", "type": "Image", "format": "image/jpeg"}
    body["service"] = [service]  # no width nor height: the canvas's are not the image's
    annotation = {"id": f"{canvas}/a", "type": "Annotation", "motivation": "painting"}
    annotation |= {"body": body, "target": canvas}
    page = {"id": f"{canvas}/p", "type": "AnnotationPage", "items": [annotation]}
    return {"id": canvas, "type": "Canvas", "width": size[0], "height": size[1], "items": [page]}


STATIC_MANIFEST = {
    "@context": "http://iiif.io/api/presentation/3/context.json",
    "id": "https://example.org/static/manifest",
    "type": "Manifest",
    "label": {"en": ["Level 0 services described by id and profile only"]},
    "items": [
        _canvas(0, {"@id": DLCS, "@type": "ImageService2", "profile": LEVEL_0}, (648, 1024)),
        _canvas(1, {"id": UVA, "type": "ImageService3", "profile": "level0"}, (1999, 1485)),
        _canvas(2, {"@id": ROTTERDAM, "@type": "ImageService2", "profile": LEVEL_0}, (9102, 6922)),
        _canvas(3, {"@id": SPK, "@type": "ImageService2", "profile": LEVEL_2}, (200, 297)),
    ],
}


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
    # No sizes even there (tiles only): the whole image is all it must serve.
    assert requested(log, rotterdam.service.id) == ["info.json", "full/full/0/default.jpg"]

    # Cards show the listed size the indexer found, not the master file.
    item = api.get(f"/api/items/{dlcs.item_id}").json()
    assert item["thumbnail_url"] == f"{dlcs.service.id}/full/127,200/0/default.jpg"
    assert served_size(item["thumbnail_url"]) == (127, 200)


def test_the_canvas_size_is_not_taken_for_the_image_size(indexed, api, iiif_server):
    _, items, log = indexed
    spk = items[iiif_server.base_url + STATIC][3]  # a 200 x 297 canvas, an 11458 x 17014 image
    assert (spk.width, spk.height) == (None, None)
    assert requested(log, spk.service.id) == ["full/!128,128/0/default.jpg"]
    item = api.get(f"/api/items/{spk.item_id}").json()
    assert (item["width"], item["height"]) == (None, None)
    assert item["thumbnail_url"] == f"{spk.service.id}/full/!256,256/0/default.jpg"
    assert served_size(item["thumbnail_url"]) == (172, 256)


def test_no_image_was_asked_for_beyond_the_model_size_but_where_nothing_smaller_is_served(
    indexed,
):
    _, _, log = indexed
    whole = [key for _, key, _ in log if "/full/full/" in key or "/full/max/" in key]
    assert len(whole) == 1 and "NL-RtSA_4001_1985-1014-01" in whole[0]  # Rotterdam's


def test_every_image_was_indexed(indexed):
    stats = Store.open(Path(indexed[0])).stats()
    assert stats["failed"] == 0 and stats["pending"] == 0
