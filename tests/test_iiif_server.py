"""The local IIIF test server: rewriting, Image API answers, shapes, twins and hooks."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from indexer.iiif import Collection, Manifest, parse_document
from indexer.imageapi import image_request_url, parse_info
from models.shapes import SHAPES, ShapeSpec, render
from tests.iiif_images import BitmapPicture, sheet_of_drawings
from tests.iiif_server import IIIFTestServer


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def get_json(client: httpx.Client, url: str):
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.json()


def get_image(client: httpx.Client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def read(client: httpx.Client, url: str) -> Manifest | Collection:
    return parse_document(get_json(client, url), url)


def strings(node, key: str | None = None):
    """(key, string) for every string in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v, key)
    elif isinstance(node, str):
        yield key, node


def differs(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference after bringing `a` to `b`'s size."""
    small = np.asarray(a.convert("RGB").resize(b.size), dtype=float)
    return float(np.abs(small - np.asarray(b.convert("RGB"), dtype=float)).mean())


# --- documents and rewriting ----------------------------------------------------------


def test_fixture_urls_are_rewritten_to_the_server(server, client):
    doc = get_json(client, server.url("v2/bl_bl-manifest.json"))
    assert doc["@id"] == server.rewrite(
        "https://api.bl.uk/metadata/iiif/ark:/81055/vdc_100022545251.0x000002/manifest.json"
    )
    assert doc["@id"].startswith(f"{server.base_url}/h/api.bl.uk/")
    assert doc["@context"] == "http://iiif.io/api/presentation/2/context.json"  # vocabulary kept
    service = doc["sequences"][0]["canvases"][0]["images"][0]["resource"]["service"]
    assert service["profile"][0] == "http://iiif.io/api/image/2/level2.json"
    links = [s for k, s in strings(doc) if k in ("@id", "id") and s.startswith("http")]
    assert links and all(s.startswith(server.base_url) for s in links)


def test_documents_are_served_at_their_own_id_too(server, client):
    by_path = get_json(client, server.url("v3/bodleian_bodleian.json"))
    assert get_json(client, by_path["id"]) == by_path


def test_every_served_manifest_reads_like_its_fixture(server, client):
    for relpath in ("v2/loc_loc.json", "edge/loc-prtd_hamilton.json", "v3/kranenburgh_ldmax.json"):
        parsed = read(client, server.url(relpath))
        assert isinstance(parsed, Manifest) and parsed.images
        for ref in parsed.images:
            assert ref.service.id.startswith(server.base_url)


def test_a_nested_collection_is_walked_from_the_server(server, client):
    top = read(client, server.url("collections/villanova_nested-top.json"))
    middle = read(client, server.rewrite(top.collections[0].id))
    bottom = read(client, server.rewrite(middle.collections[0].id))
    assert isinstance(bottom, Collection) and len(bottom.manifests) == 9


def test_a_paged_collection_links_to_its_page(server, client):
    top = read(client, server.url("collections/bsb_paginated-collection.json"))
    page = read(client, top.first)
    assert len(page.manifests) == 250
    assert client.get(page.next).status_code == 404  # the next page was not copied


def test_documents_carry_an_etag_and_answer_304(server, client):
    url = server.url("v2/artic_manifest.2.artic-27992.json")
    etag = client.get(url).headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_unknown_paths_are_404_json(server, client):
    response = client.get(f"{server.base_url}/h/nowhere.example/x")
    assert response.status_code == 404 and "nothing is served" in response.json()["error"]


def test_added_documents_are_served_with_their_images(server, client):
    doc = {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": "https://museum.example/m1",
        "type": "Manifest",
        "items": [],
        "thumbnail": [
            {
                "id": "https://museum.example/iiif/t1/full/max/0/default.jpg",
                "type": "Image",
                "service": [
                    {
                        "id": "https://museum.example/iiif/t1",
                        "type": "ImageService3",
                        "profile": "level1",
                    }
                ],
                "width": 300,
                "height": 200,
            }
        ],
    }
    url = server.add_document("/docs/m1.json", doc)
    assert get_json(client, url)["id"] == server.rewrite("https://museum.example/m1")
    info = get_json(client, server.rewrite("https://museum.example/iiif/t1/info.json"))
    assert (info["width"], info["height"]) == (300, 200)
    server.reset()
    assert client.get(url).status_code == 404


# --- Image API ------------------------------------------------------------------------


def service_of(client, server, relpath: str, canvas: int = 0) -> str:
    parsed = read(client, server.url(relpath))
    return parsed.images[canvas].service.id


def test_info_json_has_the_version_and_size_of_the_image(server, client):
    v1 = get_json(client, service_of(client, server, "edge/yale_Osbornfa1.json") + "/info.json")
    assert v1["@context"] == "http://library.stanford.edu/iiif/image-api/1.1/context.json"
    assert (v1["width"], v1["height"]) == (3603, 4438)
    v2 = get_json(
        client, service_of(client, server, "v2/artic_manifest.2.artic-27992.json") + "/info.json"
    )
    assert v2["@context"] == "http://iiif.io/api/image/2/context.json"
    v3 = parse_info(get_json(client, server.shapes_service_url("red-circle-0") + "/info.json"))
    assert (v3.version, v3.level, v3.width) == (3, 2, 1024)


def test_info_json_of_the_image_info_fixtures_is_served_as_it_is(server, client):
    gallica = server.rewrite("https://gallica.bnf.fr/iiif/ark:/12148/btv1b53243704g/f1")
    info = get_json(client, gallica + "/info.json")
    assert (
        info["profile"] == "http://library.stanford.edu/iiif/image-api/1.1/compliance.html#level2"
    )
    assert (info["width"], info["height"]) == (7900, 11060)
    # An id with a query string (Wikimedia's iipsrv).
    toolforge = server.rewrite(
        "http://zoomviewer.toolforge.org/iipsrv.fcgi/?iiif=cache/e8f0e820e00680e69939a97ffccf64e8.tif"
    )
    assert get_json(client, toolforge + "/info.json")["width"] == 6510
    assert get_image(client, toolforge + "/full/100,/0/default.jpg").size == (100, 118)


@pytest.mark.parametrize(
    ("region", "size", "expected"),
    [
        ("full", "256,", (256, 345)),
        ("full", ",300", (222, 300)),
        ("full", "!300,300", (222, 300)),
        ("full", "300,200", (300, 200)),
        ("full", "pct:10", (250, 338)),
        ("square", "200,", (200, 200)),
        ("0,0,1000,500", "100,", (100, 50)),
        ("pct:0,0,50,50", "!100,100", (74, 100)),
        ("full", "full", (1722, 2322)),  # 2503 x 3375 is more than 4 MP: capped
        ("full", "max", (1722, 2322)),
    ],
)
def test_image_requests_get_exactly_the_size_asked(server, client, region, size, expected):
    base = service_of(client, server, "v2/bl_bl-manifest.json")  # 2503 x 3375, level 2
    assert get_image(client, f"{base}/{region}/{size}/0/default.jpg").size == expected


def test_whole_huge_images_are_capped_and_huge_sizes_refused(server, client):
    spk = server.rewrite(
        "https://digital.iai.spk-berlin.de:443/viewer/api/v1/records/630107580/files/images/00000001.tif"
    )  # 11458 x 17014
    whole = get_image(client, f"{spk}/full/full/0/default.jpg")
    assert whole.width * whole.height <= server.max_pixels
    assert abs(whole.width / whole.height - 11458 / 17014) < 0.01
    assert client.get(f"{spk}/full/10000,/0/default.jpg").status_code == 400


def test_version_3_refuses_to_upscale_without_caret(server, client):
    base = server.shapes_service_url("blue-star-1")  # 1024 x 1024
    assert client.get(f"{base}/full/2000,/0/default.jpg").status_code == 400
    assert get_image(client, f"{base}/full/^1100,/0/default.jpg").size == (1100, 1100)
    assert get_image(client, f"{base}/full/!2000,2000/0/default.jpg").size == (1024, 1024)


def test_version_1_requests_and_other_formats(server, client):
    base = service_of(client, server, "edge/yale_Osbornfa1.json")
    assert get_image(client, f"{base}/full/100,/0/native.jpg").size == (100, 123)
    png = get_image(client, f"{base}/full/50,/90/gray.png")
    assert (png.format, png.mode, png.size) == ("PNG", "L", (62, 50))  # rotated by 90


def test_level_0_serves_only_its_listed_sizes(server, client):
    base = server.rewrite("https://dlcs.io/thumbs/wellcome/6/b28857021_0001.jp2")
    info = parse_info(get_json(client, base + "/info.json"))
    assert info.level == 0
    chosen = image_request_url(info, None, None, 224)
    assert chosen == f"{base}/full/242,/0/default.jpg"
    assert get_image(client, chosen).size == (242, 400)
    assert client.get(f"{base}/full/200,/0/default.jpg").status_code == 400
    assert client.get(f"{base}/0,0,10,10/61,/0/default.jpg").status_code == 400


def test_a_level_0_service_with_tiles_serves_them_as_a_static_tree_does(server, client):
    base = server.rewrite("https://rotterdamspubliek.nl/iiif/NL-RtSA_4001_1985-1014-01")
    info = get_json(client, base + "/info.json")  # 9102 x 6922, tiles of 512 at 1 to 16
    assert info["tiles"] == [{"scaleFactors": [1, 2, 4, 8, 16], "width": 512}]
    # Its tiles, each at its own size: a file is what it is (a server drawing "57," for a
    # 910 x 6922 region would make it 57 x 434).
    assert get_image(client, f"{base}/0,0,512,512/512,/0/default.jpg").size == (512, 512)
    assert get_image(client, f"{base}/0,0,1024,1024/512,/0/default.jpg").size == (512, 512)
    assert get_image(client, f"{base}/8192,0,910,6922/57,/0/default.jpg").size == (57, 433)
    assert get_image(client, f"{base}/8704,6656,398,266/398,/0/default.jpg").size == (398, 266)
    assert get_image(client, f"{base}/full/full/0/default.jpg").size == (2293, 1744)  # 4 MP
    # Nothing else: no other region, size, rotation, quality or format.
    for other in [
        "0,0,512,512/256,/0/default.jpg",  # another size
        "1,0,512,512/512,/0/default.jpg",  # not on the grid
        "0,0,2048,1024/512,/0/default.jpg",
        "0,0,512,512/512,512/0/default.jpg",  # the version 3 form
        "0,0,512,512/512,/90/default.jpg",
        "0,0,512,512/512,/0/default.png",
        "full/569,/0/default.jpg",  # no sizes listed
        "full/!200,200/0/default.jpg",
    ]:
        assert client.get(f"{base}/{other}").status_code == 404, other


def test_a_static_tree_of_version_3_names_its_tiles_w_h(server, client):
    picture = BitmapPicture(Image.new("RGB", (1000, 700), "teal"))
    tiles = {"width": 256, "height": 128, "scaleFactors": [1, 2, 4]}
    base = server.add_image_service("/tiles/v3/a", picture, level=0, version=3, tiles=tiles)
    info = get_json(client, base + "/info.json")
    assert info["tiles"] == [tiles] and info["profile"] == "level0"
    assert get_image(client, f"{base}/0,0,1000,512/250,128/0/default.jpg").size == (250, 128)
    assert get_image(client, f"{base}/0,512,1000,188/250,47/0/default.jpg").size == (250, 47)
    assert client.get(f"{base}/0,512,1000,188/250,/0/default.jpg").status_code == 404
    assert get_image(client, f"{base}/full/max/0/default.jpg").size == (1000, 700)


def test_the_tiles_of_a_static_tree_make_its_whole_image(server, client):
    picture = BitmapPicture(sheet_of_drawings(300))  # 600 x 600
    tiles = {"width": 128, "scaleFactors": [1, 2]}
    base = server.add_image_service("/tiles/v2/sheet", picture, level=0, tiles=tiles)
    made = Image.new("RGB", (300, 300))  # at scale factor 2: 3 x 3 tiles of 256 pixels
    for y in range(0, 600, 256):
        for x in range(0, 600, 256):
            w, h = min(256, 600 - x), min(256, 600 - y)
            tile = get_image(client, f"{base}/{x},{y},{w},{h}/{(w + 1) // 2},/0/default.jpg")
            made.paste(tile, (x // 2, y // 2))
    assert differs(made, get_image(client, f"{base}/full/full/0/default.jpg")) < 3


def test_odd_characters_in_ids_are_served(server, client):
    hamilton = read(client, server.url("edge/loc-prtd_hamilton.json"))
    assert "%2f" in hamilton.images[0].service.id  # an encoded slash, kept as it is
    assert (
        get_image(client, hamilton.images[0].service.id + "/full/,100/0/default.jpg").height == 100
    )
    chateauroux = read(client, server.url("edge/biblissima_biblissima-manifest.json"))
    assert "Châteauroux" in chateauroux.images[0].service.id
    assert (
        get_image(client, chateauroux.images[0].service.id + "/full/64,/0/default.jpg").width == 64
    )


def test_plain_image_urls_come_at_their_declared_size(server, client):
    placeholder = server.rewrite("http://digital.library.villanova.edu/placeholder.jpg")
    assert get_image(client, placeholder).size == (600, 600)
    poster = server.rewrite(
        "https://iiif-commons.github.io/iiif-av-component/examples/data/bl/sounds-tests/posters/world.jpg"
    )
    assert get_image(client, poster).size == (962, 962)


def test_a_service_base_uri_redirects_to_its_info(server, client):
    base = server.shapes_service_url("red-square-0")
    response = client.get(base)
    assert response.status_code == 303 and response.headers["Location"] == base + "/info.json"


def test_pictures_are_the_same_at_any_size_and_differ_between_images(server, client):
    first, second = read(client, server.url("v2/nga_nga-manifest.json")).images[:2]
    big = get_image(client, f"{first.service.id}/full/400,/0/default.jpg")
    small = get_image(client, f"{first.service.id}/full/100,/0/default.jpg")
    other = get_image(client, f"{second.service.id}/full/100,/0/default.jpg")
    assert differs(big, small) < 8
    assert differs(other.resize(small.size), small) > 20
    again = client.get(f"{first.service.id}/full/100,/0/default.jpg").content
    assert client.get(f"{first.service.id}/full/100,/0/default.jpg").content == again


# --- shapes and twins -------------------------------------------------------------------


def test_the_shapes_manifest_has_one_canvas_per_shape(server, client):
    shapes = read(client, server.shapes_manifest_url(per_pair=2))
    assert shapes.version == 3 and len(shapes.images) == 16 * 2
    first = shapes.images[0]
    assert first.canvas_label == {"en": ["red circle 0"], "fr": ["cercle rouge 0"]}
    assert (first.service.version, first.service.level) == (3, 2)
    assert first.service.id == server.shapes_service_url("red-circle-0")
    assert shapes.id == server.shapes_manifest_url(per_pair=2)


def test_each_shapes_canvas_is_served_at_its_id(server, client):
    manifest = client.get(server.shapes_manifest_url(per_pair=1, twins=["red-circle-0"])).json()
    for canvas in (manifest["items"][0], manifest["items"][-1]):  # the last is the twin
        served = client.get(canvas["id"])
        assert served.status_code == 200
        assert {**served.json(), "@context": None} == {**canvas, "@context": None}
    assert client.get(server.base_url + "/shapes/canvas/purple-blob-1").status_code == 404


def test_shape_images_are_the_shapes_drawn_at_the_size_asked(server, client):
    url = image_request_url(
        read(client, server.shapes_manifest_url()).images[5].service, None, None, 224
    )
    spec = ShapeSpec.from_name(url.split("/shapes/iiif/")[1].split("/")[0])
    served = get_image(client, url)
    assert served.size == (224, 224)
    assert differs(served, render(spec, 224)) < 4


def test_twins_are_the_same_picture_under_another_id(server, client):
    shapes = read(client, server.shapes_manifest_url(per_pair=1, twins=["green-star-0"]))
    assert len(shapes.images) == 16 + 1
    twin = shapes.images[-1]
    assert twin.service.id == server.shapes_service_url("twin-of-green-star-0")
    assert twin.canvas_label["en"] == ["twin of green star 0"]
    original = server.shapes_service_url("green-star-0")
    assert twin.item_id != next(r for r in shapes.images if r.service.id == original).item_id
    for size in ("224,", "!64,64"):
        same = client.get(f"{twin.service.id}/full/{size}/0/default.jpg").content
        assert same == client.get(f"{original}/full/{size}/0/default.jpg").content
    assert client.get(server.shapes_manifest_url(twins=["purple-blob-1"])).status_code == 400


def test_a_served_copy_of_the_shapes_manifest_keeps_the_shapes_pictures(server, client):
    doc = get_json(client, server.shapes_manifest_url(per_pair=1, seed=900, twins=[]))
    body = doc["items"][0]["items"][0]["items"][0]["body"]
    service = body["service"][0]["id"]
    spec = ShapeSpec.from_name(service.rsplit("/", 1)[1])
    server.add_document("/docs/shapes-copy.json", doc, rewrite=False)
    # Still the shape, not a pattern in its place, in this test and after it.
    for _ in range(2):
        assert (
            differs(get_image(client, f"{service}/full/224,/0/default.jpg"), render(spec, 224)) < 4
        )
        assert differs(get_image(client, body["id"]), render(spec, body["width"])) < 4
        server.reset()


def test_the_v2_shapes_manifest_and_the_collection(server, client):
    v2 = read(client, server.shapes_manifest_url(per_pair=1, version=2))
    assert v2.version == 2 and len(v2.images) == 16
    assert (v2.images[0].service.version, v2.images[0].service.level) == (2, 2)
    assert get_image(client, v2.images[0].service.id + "/full/100,/0/default.jpg").size == (
        100,
        100,
    )
    collection = read(client, server.shapes_collection_url(per_pair=2))
    assert len(collection.manifests) == 16
    pair = read(client, collection.manifests[-1].id)
    assert len(pair.images) == 2
    assert {ref.canvas_label["en"][0].split()[1] for ref in pair.images} == {SHAPES[-1]}


# --- hooks -----------------------------------------------------------------------------


def test_requests_are_counted_per_path(server, client):
    url = server.url("v2/artic_manifest.2.artic-27992.json")
    client.get(url)
    client.get(url)
    base = server.shapes_service_url("red-circle-0")
    client.get(f"{base}/full/64,/0/default.jpg")
    assert server.count(url) == 2
    assert server.count(f"{base}/*") == 1
    server.reset()
    assert server.count(url) == 0


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        (
            "html",
            lambda r: r.status_code == 200 and r.headers["content-type"].startswith("text/html"),
        ),
        ("invalid_json", lambda r: r.status_code == 200 and not _is_json(r.content)),
        (
            "wrong_type",
            lambda r: r.headers["content-type"].startswith("text/html") and _is_json(r.content),
        ),
        ("empty", lambda r: r.status_code == 200 and r.content == b""),
        ("truncated", lambda r: r.status_code == 200 and not _is_json(r.content)),
        ("429", lambda r: r.status_code == 429 and r.headers["Retry-After"] == "7"),
    ],
)
def test_documents_fail_on_request(server, client, mode, check):
    url = server.url("v2/artic_manifest.2.artic-27992.json")
    server.fail(url, mode, retry_after=7)
    assert check(client.get(url))
    server.reset()
    assert _is_json(client.get(url).content)


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("mode", ["truncated", "corrupt"])
def test_images_can_come_broken(server, client, mode):
    base = server.shapes_service_url("red-circle-0")
    server.fail(f"{base}/*", mode)
    body = client.get(f"{base}/full/128,/0/default.jpg").content
    with pytest.raises(OSError):
        Image.open(io.BytesIO(body)).load()


def test_status_failures_can_be_limited_in_number(server, client):
    url = server.url("v3/bodleian_bodleian.json")
    server.fail(url, "status", status=503, times=2)
    assert [client.get(url).status_code for _ in range(3)] == [503, 503, 200]


def test_connection_resets_and_redirect_loops(server, client):
    url = server.url("v3/bodleian_bodleian.json")
    server.fail(url, "reset")
    with pytest.raises(httpx.TransportError):
        client.get(url)
    server.fail(url, "redirect_loop")
    with pytest.raises(httpx.TooManyRedirects):
        client.get(url, follow_redirects=True)
    with pytest.raises(ValueError, match="unknown failure mode"):
        server.fail(url, "explode")


def test_slow_answers_and_latency_still_serve_many_requests_at_once(server, client):
    url = server.url("v3/bodleian_bodleian.json")
    server.fail(url, "slow", delay=0.3)
    started = time.monotonic()
    assert client.get(url).status_code == 200
    assert time.monotonic() - started >= 0.3
    server.reset()
    server.latency = 0.2
    base = server.shapes_service_url("yellow-square-0")
    urls = [f"{base}/full/{32 + i},/0/default.jpg" for i in range(40)]
    limits = httpx.Limits(max_connections=40)
    with httpx.Client(limits=limits, timeout=10) as many, ThreadPoolExecutor(40) as pool:
        started = time.monotonic()
        codes = list(pool.map(lambda u: many.get(u).status_code, urls))
        elapsed = time.monotonic() - started
    assert codes == [200] * 40
    assert elapsed < 0.2 * 40 / 4  # concurrent (about 0.3 s), not one after another (8 s)


def test_a_second_server_can_run_beside_the_first(iiif_server):
    with IIIFTestServer(shapes_per_pair=1) as other:
        assert other.base_url != iiif_server.base_url
        manifest = parse_document(httpx.get(other.shapes_manifest_url()).json(), "test")
        assert len(manifest.images) == 16


def test_the_command_line_entry_point_serves_the_shapes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tests.iiif_server", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--shapes-per-pair", "1"],
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()  # printed once the server listens
        assert first_line.strip() == f"IIIF test server on http://127.0.0.1:{port}"
        manifest = httpx.get(f"http://127.0.0.1:{port}/shapes/manifest.json", timeout=10).json()
        assert len(manifest["items"]) == 16
    finally:
        process.terminate()
        process.wait(timeout=10)
