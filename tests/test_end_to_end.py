"""From IIIF manifests to ranked answers: the whole path, real at every step.

A local IIIF server serves real manifests (hosts rewritten to itself) and generated
images; the `regard` CLI indexes them with the shipped regard-test model into a real
store; search runs through the real service.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from indexer.store import Store
from service.settings import Settings
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import SHAPES_PER_PAIR, TWINS, index, regard_command

# Real manifests from six institutions, Presentation 2.1 and 3.0, Image API 1, 2 and 3,
# a Choice, several sequences and several images on one canvas.
REAL_MANIFESTS = [
    "v2/harvardartmuseums_299843.json",
    "v2/artic_manifest.2.artic-27992.json",
    "v2/stanford_stanford-manifest.json",
    "v2/ecodices_gau.json",
    "v3/vam_ocean-liners.json",
    "v3/kranenburgh_ldmax.json",
    "v3/riksarkivet_manifest.3.riksarkivet-arkis-40008772.json",
    "v3/codexxolotl_manifest.3.codexxolotl.json",
]
FIXTURES = Path(__file__).parent / "fixtures" / "iiif"


def painted_images(doc: dict) -> int:
    """Count the painted images of a manifest straight from its JSON, independently of
    the indexer: v2 images of every sequence, v3 painting annotations' image bodies;
    a Choice counts once (its default option is the one indexed), and the same image
    painted twice on one canvas (e-codices repeats annotations, and lists some canvases
    in both its sequences) counts once."""
    seen: set[tuple[str, str]] = set()
    if "sequences" in doc:
        for canvas in (c for s in doc["sequences"] for c in s.get("canvases", [])):
            for image in canvas.get("images", []):
                resource = image["resource"]
                seen.add((canvas["@id"], resource.get("@id") or json.dumps(resource)))
        return len(seen)
    for canvas in doc.get("items", []):
        for page in canvas.get("items", []):
            for annotation in page.get("items", []):
                if annotation.get("motivation") != "painting":
                    continue
                bodies = annotation["body"]
                for body in bodies if isinstance(bodies, list) else [bodies]:
                    if body.get("type") in ("Image", "Choice"):
                        seen.add((canvas["id"], body.get("id") or json.dumps(body)))
    return len(seen)


@pytest.fixture(scope="module")
def real_store(tmp_path_factory, iiif_server: IIIFTestServer) -> Path:
    store = tmp_path_factory.mktemp("real") / "store"
    iiif_server.reset()
    urls = [iiif_server.url(path) for path in REAL_MANIFESTS]
    assert index(*urls, store=store) == 0
    return store


def test_every_painted_image_of_real_manifests_is_indexed(real_store: Path):
    expected = sum(painted_images(json.loads((FIXTURES / p).read_text())) for p in REAL_MANIFESTS)
    stats = Store.open(real_store).stats()
    assert stats["manifests"] == len(REAL_MANIFESTS)
    assert stats["items"] == expected
    assert stats["failed"] == 0 and stats["pending"] == 0


def test_images_are_fetched_at_about_the_model_size(real_store: Path):
    store = Store.open(real_store)
    rows = store._conn().execute("SELECT fetched_url, fetched_width, fetched_height FROM items")
    for url, width, height in rows:
        # regard-test takes 64 px: the server was asked for a small image, never the master
        assert "/full/full/" not in url and "/full/max/" not in url, url
        assert min(width, height) >= 64 and min(width, height) <= 200, (url, width, height)


def test_indexing_again_adds_nothing_and_downloads_nothing(
    real_store: Path, iiif_server: IIIFTestServer
):
    before = Store.open(real_store).stats()
    iiif_server.reset()
    urls = [iiif_server.url(path) for path in REAL_MANIFESTS]
    assert index(*urls, store=real_store) == 0
    after = Store.open(real_store).stats()
    assert after["items"] == before["items"]
    assert after["generation"] == before["generation"]
    # the manifests are read again; no image is
    assert iiif_server.count("/h/*") == 0
    assert iiif_server.count("/fixtures/*") == len(REAL_MANIFESTS)


def shape_of(hit: dict) -> str:
    """What a shapes hit shows, read from its Image API service name: "red circle"
    (the service of a twin, "twin-of-red-circle-1", shows a red circle too)."""
    name = hit["thumbnail_url"].split("/shapes/iiif/")[1].split("/")[0]
    colour, shape, _seed = name.removeprefix("twin-of-").split("-")
    return f"{colour} {shape}"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("red circle", "red circle"),
        ("triangle vert", "green triangle"),
        ("un carré bleu", "blue square"),
        ("a yellow star", "yellow star"),
        ("une étoile rouge", "red star"),
    ],
)
def test_text_search_ranks_the_right_shapes_first(api, query: str, expected: str):
    response = api.get("/api/search", params={"q": query, "k": SHAPES_PER_PAIR})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == SHAPES_PER_PAIR
    assert [shape_of(r) for r in results] == [expected] * SHAPES_PER_PAIR
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_a_query_is_the_same_however_it_is_spelt_in_unicode(api):
    composed = api.get("/api/search", params={"q": "un carré bleu", "k": 3}).json()
    # "é" as e + a combining accent (pasted text, some keyboards), and stray spaces.
    decomposed = api.get("/api/search", params={"q": "  un  carre\u0301 bleu ", "k": 3}).json()
    assert decomposed["query"] == composed["query"] == "un carré bleu"
    assert [r["id"] for r in decomposed["results"]] == [r["id"] for r in composed["results"]]
    assert composed["k"] == 3 and composed["max_k"] == Settings.model_fields["max_k"].default


@pytest.mark.parametrize("name", TWINS)
def test_similar_returns_the_twin_first(api, name: str):
    colour, shape, _seed = name.split("-")
    hits = api.get("/api/search", params={"q": f"{colour} {shape}", "k": 50}).json()["results"]
    original = next(h for h in hits if f"/shapes/iiif/{name}/" in h["thumbnail_url"])

    response = api.get(f"/api/items/{original['id']}/similar", params={"k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item"]["id"] == original["id"]
    first = body["results"][0]
    assert f"/shapes/iiif/twin-of-{name}/" in first["thumbnail_url"]
    assert first["label"].startswith("jumeau de")  # labels are French first
    assert first["score"] == pytest.approx(1.0, abs=2e-3)
    assert original["id"] not in [r["id"] for r in body["results"]]


def test_results_carry_their_iiif_links(api, iiif_server: IIIFTestServer):
    hit = api.get("/api/search", params={"q": "red circle", "k": 1}).json()["results"][0]
    assert hit["manifest_id"].startswith(iiif_server.base_url + "/shapes/manifest.json")
    assert hit["canvas_id"].startswith(iiif_server.base_url)
    assert hit["thumbnail_url"].startswith(iiif_server.base_url + "/shapes/iiif/")
    assert hit["thumbnail_url"].endswith(".jpg")
    detail = api.get(f"/api/items/{hit['id']}").json()
    assert detail["labels"]["fr"][0].startswith("cercle rouge")
    assert {m["label"]["en"][0] for m in detail["canvas_metadata"]} == {"shape", "colour"}
    assert detail["state"] == "indexed"


def test_the_cli_and_server_work_as_separate_processes(shapes_store: Path, live_service):
    stats = subprocess.run(
        regard_command("stats", "--store", str(shapes_store), "--json"),
        capture_output=True,
        text=True,
        check=True,
    )
    counts = json.loads(stats.stdout)
    expected_items = 16 * SHAPES_PER_PAIR + len(TWINS)
    assert counts["items"] == expected_items
    assert counts["failed"] == 0 and counts["manifests"] == 1
    assert counts["model"]["name"] == "regard-test"

    import httpx

    health = httpx.get(f"{live_service.url}/api/health").json()
    assert health == {
        "status": "ok",
        "items": expected_items,
        "model": counts["model"]["fingerprint"],
    }
    for path in ("/api/health", "/api/stats"):  # uptime monitors often ask with HEAD
        head = httpx.head(live_service.url + path)
        assert head.status_code == 200 and head.content == b""
    page = httpx.get(live_service.url + "/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    search = httpx.get(f"{live_service.url}/api/search", params={"q": "blue circle", "k": 3})
    assert [shape_of(r) for r in search.json()["results"]] == ["blue circle"] * 3


def test_a_run_logged_to_a_file_gets_plain_progress_lines(tmp_path: Path, shapes_url: str):
    # stderr is a pipe here, as under nohup or systemd: no bars, no cursor movements.
    run = subprocess.run(
        regard_command(
            "index", shapes_url, "--store", str(tmp_path / "s"), "--model", "regard-test"
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    expected = 16 * SHAPES_PER_PAIR + len(TWINS)
    assert f"progress: 1 manifest, {expected} of {expected} images (" in run.stderr
    assert "\x1b[" not in run.stderr and "\r" not in run.stderr


def test_choice_keeps_the_default_option_and_notes_the_others(real_store: Path):
    store = Store.open(real_store)
    rows = (
        store._conn()
        .execute(
            "SELECT i.id FROM items i JOIN manifests m ON m.id = i.manifest_id "
            "WHERE m.source LIKE '%codexxolotl%'"
        )
        .fetchall()
    )
    assert len(rows) == 17
    items = [store.get_item(row[0]) for row in rows]
    with_options = [item for item in items if item.alternatives]
    assert with_options, "the Codex Xolotl canvases offer a Choice of images"
    for item in with_options:
        assert item.image_url not in item.alternatives


def test_recall_compares_the_index_with_an_exact_scan_of_the_store(shapes_store: Path, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(shapes_store, store)  # the index it builds stays out of the shared store
    # One cell per image query, every cell per text query (capped at the cells there are).
    env = {
        **os.environ,
        "REGARD_INDEX_KIND": "ivf",
        "REGARD_INDEX_NPROBE": "1",
        "REGARD_INDEX_TEXT_NPROBE": "1000",
    }

    def recall(*args: str) -> subprocess.CompletedProcess:
        command = regard_command("recall", "--store", str(store), *args)
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    result = recall("red circle", "triangle vert", "--items", "30", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["index"]["kind"] == "ivf" and report["index"]["nprobe"] == 1
    assert report["texts"] == ["red circle", "triangle vert"]
    assert report["text"]["queries"] == 2 and report["image"]["queries"] == 30
    # Text queries scan every cell of this small index and re-rank every item: they find
    # what the exact scan finds.
    assert report["index"]["text_nprobe"] == report["index"]["nlist"]
    assert report["text"]["mean"] >= 0.95
    assert 0 < report["image"]["worst"] <= report["image"]["mean"] <= 1
    # The fewest cells with which each kind reaches the build's target: this small
    # index has one cell, and it does.
    cells = report["index"]["nlist"]
    assert report["text"]["cells_needed"] == report["image"]["cells_needed"] == cells == 1

    plain = recall("--items", "5")
    assert plain.returncode == 0, plain.stderr
    assert "recall@10 against an exact scan of the stored vectors" in plain.stdout
    assert "(20 texts)" in plain.stdout and "(5 items' own vectors)" in plain.stdout
    assert "REGARD_INDEX_TEXT_NPROBE" in plain.stdout
    assert "text   0.96 reached with 1 cell (1 scanned now)" in plain.stdout


def test_recall_of_an_empty_store_says_what_to_do(tmp_path):
    Store.open(tmp_path / "empty", create=True).close()
    result = subprocess.run(
        regard_command("recall", "--store", str(tmp_path / "empty")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "0 searchable item(s): index more first" in result.stderr


def test_every_operation_of_the_schema_has_an_id_of_its_own(api) -> None:
    spec = api.get("/openapi.json").json()
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), sorted(ids)
    assert api.head("/api/health").status_code == 200  # still served
    assert api.head("/api/stats").status_code == 200
