"""Searching with a picture: one sent with the request (POST /api/search/image), or a
part of an indexed item (GET /api/items/{id}/similar?region=).

The store holds the shapes collection, a sheet of four drawings on a level 2 Image API
service (it crops) and on a level 0 one (it serves the whole sheet only), some of its
regions as items of their own, and the sheet as a file of a local folder; all indexed
by the CLI with the `regard-test` model, served by the app in-process.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.store import Store
from service.app import create_app
from service.settings import Settings
from tests.iiif_images import BitmapPicture, sheet_of_drawings
from tests.regard_fixtures import index
from tests.test_image_requests import LEVEL_0, LEVEL_2, manifest_of, painted_canvas

CELL = 400  # the sheet: 2 x 2 drawings, 800 x 800 pixels
SHEET_SIZES = [(200, 200), (400, 400), (800, 800)]
RED_CIRCLE, BLUE_SQUARE, TOP_ROW = "0,0,400,400", "400,0,400,400", "0,0,800,400"


@pytest.fixture(scope="module")
def collection(tmp_path_factory, iiif_server, shapes_url) -> Iterator[dict[str, Any]]:
    sheet = sheet_of_drawings(CELL)
    add = iiif_server.add_image_service
    cropping = add("/query-sheets/level2", BitmapPicture(sheet), level=2)
    whole_only = add("/query-sheets/level0", BitmapPicture(sheet), level=0, sizes=SHEET_SIZES)
    level_2 = {"@id": cropping, "@type": "ImageService2", "profile": LEVEL_2}
    level_0 = {"@id": whole_only, "@type": "ImageService2", "profile": LEVEL_0}
    canvases = {
        "sheet": painted_canvas(40, level_2, sheet.size),
        "red circle": painted_canvas(41, level_2, sheet.size, RED_CIRCLE),
        "top row": painted_canvas(42, level_2, sheet.size, TOP_ROW),
        "blue square": painted_canvas(43, level_2, sheet.size, BLUE_SQUARE),
        "level 0 sheet": painted_canvas(50, level_0, sheet.size),
        "level 0 red circle": painted_canvas(51, level_0, sheet.size, RED_CIRCLE),
    }
    for name, canvas in canvases.items():
        canvas["label"] = {"en": [name]}
    url = iiif_server.add_document(
        "/docs/query-sheets.json", manifest_of("query-sheets", "A sheet", list(canvases.values()))
    )
    root = tmp_path_factory.mktemp("query-pictures")
    folder = root / "scans"
    folder.mkdir()
    sheet.save(folder / "sheet.png")
    store = root / "store"
    try:
        assert index(shapes_url, url, str(folder), store=store) == 0
        with TestClient(create_app(Settings(store=store))) as client:
            every = client.get("/api/search", params={"q": "sheet", "k": 200}).json()["results"]
            # Named in English: the shapes' French labels come first in `label`.
            ids = {(hit["labels"].get("en") or [hit["label"]])[0]: hit["id"] for hit in every}
            names = {item_id: name for name, item_id in ids.items()}
            yield {"client": client, "ids": ids, "names": names, "store": store, "sheet": sheet}
    finally:
        iiif_server.reset()


def jpeg(picture: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=95, **options)
    return buffer.getvalue()


def fetched_picture(store: Path, item_id: str) -> bytes:
    """The bytes the indexer fetched to embed this item."""
    opened = Store.open(store)
    try:
        item = opened.get_item(item_id)
    finally:
        opened.close()
    assert item is not None and item.fetched_url
    return httpx.get(item.fetched_url).raise_for_status().content


def search_picture(client: TestClient, data: bytes, **params: Any) -> httpx.Response:
    return client.post(
        "/api/search/image", content=data, params=params, headers={"Content-Type": "image/jpeg"}
    )


def a_shape(collection: dict[str, Any], name: str) -> str:
    """The id of the first shapes item whose label begins with `name` ("red circle")."""
    return next(i for label, i in sorted(collection["ids"].items()) if label.startswith(name))


# ---- a picture sent with the request ------------------------------------------------------


def test_a_copy_of_an_indexed_picture_finds_that_item_first(collection) -> None:
    client, store = collection["client"], collection["store"]
    wanted = a_shape(collection, "green triangle")
    data = fetched_picture(store, wanted)
    answer = search_picture(client, data, k=5)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["results"][0]["id"] == wanted
    assert body["results"][0]["score"] > 0.99
    assert body["k"] == 5 and len(body["results"]) == 5
    assert body["picture"] == dict(
        zip(("width", "height"), Image.open(io.BytesIO(data)).size, strict=True)
    )
    # The rest are pictures like it, not the collection in its stored order.
    labels = [collection["names"][hit["id"]] for hit in body["results"]]
    assert sum(label.startswith("green triangle") for label in labels) >= 3, labels


def test_a_form_upload_finds_what_the_bytes_alone_find(collection) -> None:
    client, store = collection["client"], collection["store"]
    data = fetched_picture(store, a_shape(collection, "blue star"))
    raw = search_picture(client, data, k=8).json()["results"]
    form = client.post(
        "/api/search/image", params={"k": 8}, files={"image": ("star.jpg", data, "image/jpeg")}
    )
    assert form.status_code == 200, form.text
    assert [(h["id"], round(h["score"], 4)) for h in form.json()["results"]] == [
        (h["id"], round(h["score"], 4)) for h in raw
    ]


def test_a_photo_stored_sideways_is_searched_upright(collection) -> None:
    client, store = collection["client"], collection["store"]
    wanted = a_shape(collection, "yellow square")
    upright = Image.open(io.BytesIO(fetched_picture(store, wanted))).convert("RGB")
    upright = upright.resize((upright.width * 2, upright.height))  # not square: a turn shows
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise, as a phone stores a portrait
    sideways = jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif)
    plain = search_picture(client, jpeg(upright), k=3).json()
    turned = search_picture(client, sideways, k=3).json()
    assert turned["picture"] == {"width": upright.width, "height": upright.height}
    assert [h["id"] for h in turned["results"]] == [h["id"] for h in plain["results"]]
    assert turned["results"][0]["score"] == pytest.approx(plain["results"][0]["score"], abs=0.01)


def test_what_is_not_a_picture_is_refused_saying_what_to_send(collection) -> None:
    client = collection["client"]
    empty = search_picture(client, b"")
    assert empty.status_code == 400
    assert empty.json()["error"]["code"] == "empty_upload"
    assert "--data-binary" in empty.json()["error"]["message"]

    text = search_picture(client, b"<html><body>Not found</body></html>")
    assert text.status_code == 400
    error = text.json()["error"]
    assert error["code"] == "not_an_image" and "JPEG, PNG" in error["message"]

    form = client.post("/api/search/image", files={"file": ("a.jpg", b"\xff\xd8", "image/jpeg")})
    assert form.status_code == 400
    error = form.json()["error"]
    assert error["code"] == "empty_upload" and "'file'" in error["message"]

    no_k = search_picture(client, b"x", k=0)
    assert no_k.json()["error"]["code"] == "k_out_of_range"


def test_a_picture_of_too_many_pixels_is_refused_before_decoding(collection) -> None:
    buffer = io.BytesIO()
    Image.new("1", (8000, 7000)).save(buffer, "PNG")  # 56 megapixels in a few kB
    answer = search_picture(collection["client"], buffer.getvalue())
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "not_an_image" and "8000x7000" in error["message"]


def test_a_picture_over_the_size_limit_is_refused_however_it_is_sent(collection) -> None:
    data = jpeg(collection["sheet"])
    limit = len(data) // 2
    settings = Settings(store=collection["store"], max_upload_bytes=limit)
    with TestClient(create_app(settings)) as client:
        declared = search_picture(client, data)
        chunked = client.post(
            "/api/search/image",
            content=(data[i : i + 4096] for i in range(0, len(data), 4096)),
            headers={"Content-Type": "image/jpeg"},
        )
        form = client.post("/api/search/image", files={"image": ("sheet.jpg", data)})
        small = search_picture(client, jpeg(collection["sheet"].resize((64, 64))), k=1)
    for answer in (declared, chunked, form):
        assert answer.status_code == 413
        error = answer.json()["error"]
        assert error["code"] == "upload_too_large"
        assert f"{limit:,}" in error["message"] and "REGARD_MAX_UPLOAD_BYTES" in error["message"]
    assert f"{len(data):,} bytes" in declared.json()["error"]["message"]
    assert small.status_code == 200


# ---- a part of an item ---------------------------------------------------------------------


def similar_part(collection: dict[str, Any], name: str, region: str, k: int = 5) -> httpx.Response:
    item_id = collection["ids"][name]
    return collection["client"].get(
        f"/api/items/{item_id}/similar", params={"region": region, "k": k}
    )


@pytest.mark.parametrize("region", ["pct:0,0,50,50", RED_CIRCLE, "pct:0,0,50.004,50"])
def test_a_part_cut_by_the_image_server_finds_the_item_that_is_that_part(
    collection, iiif_server, region
) -> None:
    before = iiif_server.count(f"/query-sheets/level2/{RED_CIRCLE}/*")
    answer = similar_part(collection, "sheet", region)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["region"] == "pct:0,0,50,50"
    assert body["item"]["id"] == collection["ids"]["sheet"]
    first = body["results"][0]
    assert first["id"] in {collection["ids"]["red circle"], collection["ids"]["level 0 red circle"]}
    assert first["score"] > 0.99
    assert collection["ids"]["sheet"] not in [hit["id"] for hit in body["results"]]
    # The server cut it: the part alone was asked for, placed by the size its info.json
    # gives (the manifest gives none).
    assert iiif_server.count(f"/query-sheets/level2/{RED_CIRCLE}/*") == before + 1
    assert iiif_server.count("/query-sheets/level2/info.json") >= 1


def test_a_part_of_a_level_0_image_is_cut_here(collection, iiif_server) -> None:
    answer = similar_part(collection, "level 0 sheet", "pct:0,0,50,50")
    assert answer.status_code == 200, answer.text
    first = answer.json()["results"][0]
    assert first["id"] in {collection["ids"]["red circle"], collection["ids"]["level 0 red circle"]}
    assert first["score"] > 0.99
    assert iiif_server.count("/query-sheets/level0/0,0,*") == 0  # never asked: level 0


def test_a_part_of_an_item_that_is_itself_a_region_lies_within_that_region(collection) -> None:
    # The top row is 800 x 400: its right half is the blue square.
    answer = similar_part(collection, "top row", "pct:50,0,50,100")
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["id"] == collection["ids"]["blue square"]
    assert answer.json()["results"][0]["score"] > 0.99
    in_pixels = similar_part(collection, "top row", "400,0,400,400").json()
    assert in_pixels["region"] == "pct:50,0,50,100"
    assert in_pixels["results"][0]["id"] == collection["ids"]["blue square"]


def test_a_part_of_a_folder_file_is_cut_from_the_file(collection) -> None:
    answer = similar_part(collection, "sheet.png", "pct:50,0,50,50")
    assert answer.status_code == 200, answer.text
    first = answer.json()["results"][0]
    assert first["id"] == collection["ids"]["blue square"]
    assert first["score"] > 0.97  # a PNG file against the service's JPEG


@pytest.mark.parametrize(
    ("region", "said"),
    [
        ("left half", "not x,y,w,h"),
        ("pct:0,0,0,50", "empty"),
        ("pct:100,0,10,10", "starts outside the item (100)"),
        ("900,0,10,10", "starts outside the item (800x800 pixels)"),
        ("pct:0,0,0.01,0.01", "under a pixel"),
    ],
)
def test_a_region_that_names_no_part_is_refused_saying_why(collection, region, said) -> None:
    answer = similar_part(collection, "sheet", region)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "bad_region"
    assert said in error["message"]


def test_a_region_beyond_the_item_is_clipped_to_it(collection) -> None:
    answer = similar_part(collection, "sheet", "pct:50,0,80,50")
    assert answer.status_code == 200, answer.text
    assert answer.json()["region"] == "pct:50,0,50,50"
    assert answer.json()["results"][0]["id"] == collection["ids"]["blue square"]


def test_an_image_server_that_fails_is_a_502_naming_its_answer(collection, iiif_server) -> None:
    iiif_server.fail("/query-sheets/level2/0,0,*", "status", status=404)
    try:
        answer = similar_part(collection, "sheet", "pct:0,0,50,50")
    finally:
        iiif_server.reset()  # its documents are indexed already
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "picture_unavailable"
    assert "HTTP 404" in error["message"] and "/query-sheets/level2/0,0," in error["message"]
    # The whole item is still searched with its stored vector.
    assert similar_part(collection, "sheet", "").status_code == 200


def test_the_schema_says_how_to_send_a_picture_and_a_region(collection) -> None:
    """Swagger UI (/docs) offers a file to send from this, and clients are generated from it."""
    spec = collection["client"].get("/openapi.json").json()
    upload = spec["paths"]["/api/search/image"]["post"]
    content = upload["requestBody"]["content"]
    assert content["image/*"]["schema"]["format"] == "binary"
    assert content["multipart/form-data"]["schema"]["required"] == ["image"]
    similar = spec["paths"]["/api/items/{item_id}/similar"]["get"]
    assert "region" in [parameter["name"] for parameter in similar["parameters"]]
