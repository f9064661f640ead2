"""The map of the collection in the viewer, in Debian's Chromium against `regard serve`:
points drawn by page in their clusters' colours (WebGL, or Canvas 2D without it), the
clusters named and listed, a cluster's items as result cards, pictures when few points
are in view, the detail panel over the map, the map's state in the URL, and the lasso
that selects points and exports them.

The store is a copy of the shapes store with the shapes thesaurus and a map, made by the
CLI (`regard vocab add`, `regard map`) as tests/test_map.py makes it; the browser and the
`Page` helper are tests/test_viewer.py's. Headless Chromium with --disable-gpu gives WebGL
through SwiftShader: the fallback is exercised by a page whose canvases refuse WebGL.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.cli import main as regard
from tests import test_viewer
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import index, start_service, stop_service
from tests.test_map import THESAURUS
from tests.test_viewer import Page, get_json
from tests.test_viewer_terms import new_viewer

pytestmark = test_viewer.pytestmark

# test_viewer.py's fixtures: a browser for this module; the session's live service, whose
# store has no map.
browser = test_viewer.browser
base_url = test_viewer.base_url

# A page whose canvases give no WebGL, as a browser without it (or with it switched off).
NO_WEBGL = """(() => {
  const getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
    return /webgl/i.test(kind) ? null : getContext.call(this, kind, ...rest);
  };
})();"""

# The map's own margin around the stage where pictures are drawn (map.js: visible(24)).
PICTURE_MARGIN = 24


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def map_store(tmp_path_factory, shapes_store: Path) -> Path:
    store = tmp_path_factory.mktemp("viewer-map") / "store"
    shutil.copytree(shapes_store, store)
    assert regard(["vocab", "add", str(THESAURUS), "--store", str(store)]) == 0
    assert regard(["map", "--store", str(store)]) == 0
    return store


@pytest.fixture(scope="module")
def map_url(map_store: Path) -> Iterator[str]:
    service = start_service(map_store)
    yield service.url + "/"
    stop_service(service)


@pytest.fixture(scope="module")
def summary(map_url: str) -> dict[str, Any]:
    status, body = get_json(map_url, "api/map")
    assert status == 200, body
    return body


@pytest.fixture(scope="module")
def points(map_url: str) -> dict[str, Any]:
    status, body = get_json(map_url, "api/map/points")
    assert status == 200, body
    assert len(body["ids"]) == body["total"]
    return body


@contextmanager
def viewing(browser, url: str, *, webgl: bool = True) -> Iterator[Page]:
    """A page of the viewer at `url` in a fresh browser profile (with no WebGL when
    `webgl` is false), which must raise no JavaScript error."""
    context, page = new_viewer(browser, url)
    if not webgl:
        page.page.add_init_script(NO_WEBGL)
    try:
        yield page
    finally:
        context.close()
    assert page.errors == [], f"JavaScript errors in the page: {page.errors}"


@pytest.fixture
def viewer(browser, map_url: str) -> Iterator[Page]:
    with viewing(browser, map_url) as page:
        yield page


# ---- helpers ----------------------------------------------------------------------------


def next_frame(viewer: Page) -> None:
    """Once the page has drawn what it has (it draws in animation frames)."""
    viewer.page.evaluate(
        "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


def open_map(viewer: Page, query: str = "?map=1") -> None:
    viewer.open(query)
    wait_until_drawn(viewer)


def wait_until_drawn(viewer: Page) -> None:
    viewer.page.wait_for_selector("#map-stage[data-state=ready]")
    next_frame(viewer)


def href(viewer: Page) -> str:
    """The page's URL now (history.replaceState included, which page.url may lag)."""
    return viewer.page.evaluate("location.href")


def url_state(viewer: Page) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(href(viewer)).query)


def transform(viewer: Page) -> tuple[float, float, float]:
    """(scale, ox, oy): a map point (x, y) lies at (scale·x + ox, scale·y + oy) on the
    stage, in CSS pixels from its inner top-left corner, as the page last drew it."""
    scale, ox, oy = map(float, viewer.page.get_attribute("#map-stage", "data-transform").split(","))
    return scale, ox, oy


def wait_for_transform_change(viewer: Page, before: tuple[float, float, float]) -> None:
    viewer.page.wait_for_function(
        "before => document.querySelector('#map-stage').dataset.transform !== before",
        arg=",".join(str(round(v, 4)) for v in before),
    )


def wait_for_scale(viewer: Page, scale: float) -> None:
    """Until the map's scale is `scale` (a zoom is drawn on the next frame, not at once)."""
    viewer.page.wait_for_function(
        "scale => Math.abs(parseFloat(document.querySelector('#map-stage').dataset.transform)"
        " - scale) < scale * 1e-3",
        arg=scale,
    )


def stage_size(viewer: Page) -> tuple[float, float]:
    return tuple(
        viewer.page.evaluate(
            "(stage => [stage.clientWidth, stage.clientHeight])"
            "(document.querySelector('#map-stage'))"
        )
    )


def on_page(viewer: Page, sx: float, sy: float) -> tuple[float, float]:
    """Stage coordinates as the page's (for the mouse)."""
    left, top = viewer.page.evaluate(
        """() => { const stage = document.querySelector('#map-stage');
                   const box = stage.getBoundingClientRect();
                   return [box.left + stage.clientLeft, box.top + stage.clientTop]; }"""
    )
    return left + sx, top + sy


def screen_points(viewer: Page, points: dict[str, Any]) -> list[tuple[float, float]]:
    scale, ox, oy = transform(viewer)
    return [(scale * x + ox, scale * y + oy) for x, y in zip(points["x"], points["y"], strict=True)]


def pixel(viewer: Page, sx: float, sy: float) -> tuple[int, int, int, int]:
    """The canvas's RGBA at a stage position, read back from what was drawn: WebGL's
    drawing buffer (kept: preserveDrawingBuffer) or the 2D canvas's pixels."""
    return tuple(
        viewer.page.evaluate(
            """([sx, sy]) => {
                const canvas = document.querySelector('#map-canvas');
                const ratio = canvas.width / canvas.clientWidth;
                const x = Math.floor(sx * ratio), y = Math.floor(sy * ratio);
                if (document.querySelector('#map-stage').dataset.renderer === 'webgl') {
                  const gl = canvas.getContext('webgl');
                  const out = new Uint8Array(4);
                  gl.readPixels(x, canvas.height - 1 - y, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, out);
                  return [...out];
                }
                return [...canvas.getContext('2d').getImageData(x, y, 1, 1).data];
            }""",
            [sx, sy],
        )
    )


def swatch_colour(viewer: Page, cluster: int) -> tuple[int, int, int]:
    """A cluster's colour as its entry in the list shows it."""
    css = viewer.page.locator(f'.map-cluster-link[data-cluster="{cluster}"] .map-swatch').evaluate(
        "node => getComputedStyle(node).backgroundColor"
    )
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def isolated_points(
    where: list[tuple[float, float]],
    clusters: list[int],
    among: range | None = None,
    gap: float = 12,
) -> list[int]:
    """Points (of `among`) with no point of another cluster within `gap` pixels."""
    found = []
    for i in among or range(len(where)):
        if all(
            math.dist(where[i], where[j]) > gap
            for j in range(len(where))
            if clusters[j] != clusters[i]
        ):
            found.append(i)
    return found


def empty_place(where: list[tuple[float, float]], size: tuple[float, float]) -> tuple[float, float]:
    """A place on the stage at least 40 pixels from every point."""
    width, height = size
    for gx in range(20, int(width) - 20, 10):
        for gy in range(20, int(height) - 20, 10):
            if all(math.dist((gx, gy), p) > 40 for p in where):
                return gx, gy
    raise AssertionError("no empty place on the map")


def name_of(cluster: dict[str, Any]) -> str:
    return cluster["names"].get("fr") or cluster["names"].get("en") or f"Groupe {cluster['id'] + 1}"


def topmost(viewer: Page, sx: float, sy: float) -> dict[str, str]:
    """What is on top at a stage position: its tag, class and data-id."""
    return viewer.page.evaluate(
        """([x, y]) => { const node = document.elementFromPoint(x, y);
                         const picture = node.closest('.map-picture');
                         return {tag: node.tagName, id: picture ? picture.dataset.id : ''}; }""",
        list(on_page(viewer, sx, sy)),
    )


def hide_pictures(viewer: Page) -> None:
    """The dots alone, as before the pictures' summaries arrive."""
    viewer.page.add_style_tag(content=".map-pictures { display: none !important; }")


def items_requests(viewer: Page) -> list[list[str]]:
    """The ids of each /api/items?id=… request the page made."""
    return [
        urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("id", [])
        for url in viewer.requests
        if urllib.parse.urlsplit(url).path.endswith("/api/items")
    ]


# ---- drawing ----------------------------------------------------------------------------


@pytest.mark.parametrize("drawing", ["webgl", "canvas"])
def test_every_point_is_drawn_in_its_clusters_colour(
    browser, map_url: str, points: dict[str, Any], summary: dict[str, Any], drawing: str
) -> None:
    with viewing(browser, map_url, webgl=drawing == "webgl") as viewer:
        viewer.open("?q=cercle")
        viewer.wait_for_cards()
        if drawing == "webgl" and not viewer.page.evaluate(
            "!!document.createElement('canvas').getContext('webgl')"
        ):
            pytest.skip("this Chromium gives no WebGL")
        # The header's control opens the map over the search, which it keeps in the URL.
        viewer.page.get_by_role("link", name=re.compile("^Carte")).click()
        wait_until_drawn(viewer)
        assert viewer.page.get_attribute("#map-stage", "data-renderer") == drawing
        assert url_state(viewer) == {"q": ["cercle"], "map": ["1"]}
        assert viewer.page.locator("#results-view").is_hidden()
        assert viewer.page.title().startswith("Carte de la collection")

        _, stats = get_json(map_url, "api/stats")
        status = viewer.page.inner_text("#map-status")
        assert status.startswith(f"{stats['items']} images sur la carte"), status
        assert points["total"] == stats["items"]

        where = screen_points(viewer, points)
        width, height = stage_size(viewer)
        assert all(0 <= sx <= width and 0 <= sy <= height for sx, sy in where)
        clusters = points["cluster"]
        checked = isolated_points(where, clusters)
        assert len(checked) >= len(where) // 2
        colours = {c["id"]: swatch_colour(viewer, c["id"]) for c in summary["clusters"]}
        assert len(set(colours.values())) == len(colours)
        for i in checked:
            assert pixel(viewer, *where[i]) == (*colours[clusters[i]], 255), points["ids"][i]
        # Nothing is drawn far from every point.
        assert pixel(viewer, *empty_place(where, (width, height)))[3] == 0

        # Each cluster named on the map, in French, as /api/map names it, the largest
        # first (those that would cover a larger one's name are hidden at this zoom).
        by_size = sorted(summary["clusters"], key=lambda c: (-c["size"], c["id"]))
        names = [name_of(c) for c in by_size]
        assert names == [c["names"]["fr"] for c in by_size]
        assert viewer.page.locator(".map-label").all_inner_texts() == names
        shown = viewer.page.locator(".map-label:not(.is-hidden)").all_inner_texts()
        assert shown[0] == names[0] and shown == [name for name in names if name in shown]
        for label in viewer.page.locator(".map-label:not(.is-hidden)").all():
            assert label.is_visible()
        scale, ox, oy = transform(viewer)
        largest = viewer.page.locator(".map-label").first.bounding_box()
        centre = on_page(viewer, scale * by_size[0]["x"] + ox, scale * by_size[0]["y"] + oy)
        assert largest["x"] + largest["width"] / 2 == pytest.approx(centre[0], abs=1)
        assert largest["y"] + largest["height"] / 2 == pytest.approx(centre[1], abs=1)
        note = viewer.page.inner_text("#map-machine-note")
        assert "proposés automatiquement" in note and "thésaurus" in note
        # The list: each cluster's name, size and four samples' pictures, largest first.
        entries = viewer.page.locator(".map-cluster-link")
        assert entries.locator(".map-cluster-name").all_inner_texts() == names
        assert entries.locator(".map-cluster-size").all_inner_texts() == [
            f"{c['size']} images" for c in by_size
        ]
        first_samples = entries.first.locator(".map-sample img").evaluate_all(
            "imgs => imgs.map(img => img.getAttribute('src'))"
        )
        assert first_samples == [hit["thumbnail_url"] for hit in by_size[0]["samples"]]

        # Closing returns to the search, as it was.
        viewer.page.get_by_role("link", name=re.compile("^Fermer la carte")).click()
        viewer.page.wait_for_function("!location.search.includes('map=')")
        assert url_state(viewer) == {"q": ["cercle"]}
        assert viewer.page.locator("#map-view").is_hidden()
        assert viewer.page.locator("#grid .card").count() > 0
        assert viewer.page.title() == "cercle — Regard"


def test_points_come_in_pages_each_drawn_before_the_next_arrives(
    viewer: Page, points: dict[str, Any], summary: dict[str, Any], map_url: str
) -> None:
    page_size = 20
    held: list[Any] = []

    def in_small_pages(route) -> None:
        parts = urllib.parse.urlsplit(route.request.url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["limit"] = str(page_size)
        url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        if query.get("after", "0") == "0":
            route.continue_(url=url)
        else:
            held.append((route, url))

    viewer.page.route(re.compile(r"/api/map/points\?"), in_small_pages)
    viewer.open("?map=1")
    status = viewer.page.locator("#map-status")
    status.filter(has_text=f"{page_size} / {points['total']} images").wait_for()
    while not held:
        viewer.page.wait_for_timeout(20)
    # The first page is drawn while the second waits.
    next_frame(viewer)
    where = screen_points(viewer, points)
    clusters = points["cluster"]
    colours = {c["id"]: swatch_colour(viewer, c["id"]) for c in summary["clusters"]}
    first = isolated_points(where, clusters, range(page_size))
    assert first
    for i in first:
        assert pixel(viewer, *where[i]) == (*colours[clusters[i]], 255)
    later = [
        i
        for i in range(page_size, len(where))
        if all(math.dist(where[i], where[j]) > 12 for j in range(page_size))
    ]
    assert later
    assert all(pixel(viewer, *where[i])[3] == 0 for i in later)

    # Then the others, page by page.
    while viewer.page.get_attribute("#map-stage", "data-state") != "ready":
        if held:
            route, url = held.pop(0)
            route.continue_(url=url)
        viewer.page.wait_for_timeout(20)
    next_frame(viewer)
    assert status.inner_text().startswith(f"{points['total']} images sur la carte")
    for i in isolated_points(where, clusters, range(page_size, len(where))):
        assert pixel(viewer, *where[i]) == (*colours[clusters[i]], 255)
    asked = [
        dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        for url in viewer.requests
        if "/api/map/points" in url
    ]
    # Each page after the last point of the one before, as the API gives it.
    afters, after = [], 0
    while after is not None:
        afters.append(after)
        after = get_json(map_url, "api/map/points", after=after, limit=page_size)[1]["next"]
    assert [int(q["after"]) for q in asked] == afters


# ---- moving about -----------------------------------------------------------------------


def test_the_map_pans_and_zooms_and_keeps_its_view_in_the_url(viewer: Page) -> None:
    open_map(viewer)
    stage = viewer.page.locator("#map-stage")
    whole = transform(viewer)
    width, height = stage_size(viewer)

    # Keyboard: + zooms about the middle, an arrow moves by an eighth of the stage.
    stage.focus()
    viewer.page.keyboard.press("+")
    wait_for_scale(viewer, whole[0] * 1.6)
    scale, ox, oy = transform(viewer)
    middle = ((width / 2 - whole[1]) / whole[0], (height / 2 - whole[2]) / whole[0])
    assert scale * middle[0] + ox == pytest.approx(width / 2, abs=0.5)
    before = transform(viewer)
    viewer.page.keyboard.press("ArrowRight")
    wait_for_transform_change(viewer, before)
    assert transform(viewer)[1] == pytest.approx(before[1] - min(width, height) / 8, abs=0.5)
    viewer.page.keyboard.press("-")
    viewer.page.wait_for_function(
        "s => Math.abs(parseFloat(document.querySelector('#map-stage').dataset.transform) - s)"
        " < 0.01",
        arg=whole[0],
    )

    # A drag moves the map with the pointer.
    before = transform(viewer)
    x0, y0 = on_page(viewer, width / 2, height / 2)
    viewer.page.mouse.move(x0, y0)
    viewer.page.mouse.down()
    viewer.page.mouse.move(x0 + 60, y0 + 30, steps=5)
    viewer.page.mouse.up()
    after = transform(viewer)
    assert (after[1] - before[1], after[2] - before[2]) == (
        pytest.approx(60, abs=0.5),
        pytest.approx(30, abs=0.5),
    )
    assert viewer.page.locator("dialog#detail[open]").count() == 0  # a drag opens nothing

    # The wheel zooms at the pointer: the map point under it stays under it.
    sx, sy = width / 3, height / 4
    mx, my = (sx - after[1]) / after[0], (sy - after[2]) / after[0]
    viewer.page.mouse.move(*on_page(viewer, sx, sy))
    viewer.page.mouse.wheel(0, -300)
    wait_for_transform_change(viewer, after)
    scale, ox, oy = transform(viewer)
    assert scale > after[0]
    assert (scale * mx + ox, scale * my + oy) == (
        pytest.approx(sx, abs=0.5),
        pytest.approx(sy, abs=0.5),
    )

    # The view is in the URL; a reload finds it again. The URL is written 250 ms after a
    # move: the drag's view may be there before the wheel's.
    zoomed = transform(viewer)
    viewer.page.wait_for_function(
        "zoom => { const view = new URLSearchParams(location.search).get('view');"
        " return view !== null && Math.abs(Number(view.split(',')[2]) / zoom - 1) < 1e-3; }",
        arg=zoomed[0] / whole[0],
    )
    (view,) = url_state(viewer)["view"]
    assert float(view.split(",")[2]) == pytest.approx(zoomed[0] / whole[0], rel=1e-3)
    viewer.page.reload()
    wait_until_drawn(viewer)
    assert transform(viewer) == pytest.approx(zoomed, abs=0.5)

    # The buttons: + and − by a step, "Tout voir" the whole map again.
    viewer.page.get_by_role("button", name=re.compile("^Zoomer")).click()
    wait_for_scale(viewer, zoomed[0] * 1.6)
    before = transform(viewer)
    viewer.page.get_by_role("button", name=re.compile("^Dézoomer")).click()
    wait_for_transform_change(viewer, before)
    viewer.page.get_by_role("button", name=re.compile("^Tout voir")).click()
    viewer.page.wait_for_function("location.search.includes('view=0.5000,0.5000,1')")
    assert transform(viewer) == pytest.approx(whole, abs=0.01)


# ---- clusters ---------------------------------------------------------------------------


def test_a_selected_cluster_lists_its_items_and_survives_reload_and_history(
    viewer: Page, map_url: str, summary: dict[str, Any], points: dict[str, Any]
) -> None:
    viewer.open("?q=carr%C3%A9")
    viewer.wait_for_cards()
    searched = viewer.card_labels()
    viewer.page.get_by_role("link", name=re.compile("^Carte")).click()
    wait_until_drawn(viewer)
    whole = transform(viewer)

    # Chosen with the keyboard, from the list.
    cluster = sorted(summary["clusters"], key=lambda c: (-c["size"], c["id"]))[1]
    link = viewer.page.locator(f'.map-cluster-link[data-cluster="{cluster["id"]}"]')
    link.focus()
    viewer.page.keyboard.press("Enter")
    cards = viewer.page.locator("#map-cluster-items .card")
    cards.first.wait_for()
    next_frame(viewer)
    _, expected = get_json(map_url, f"api/clusters/{cluster['id']}", k=24)
    ids = cards.evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert ids == [hit["id"] for hit in expected["results"]]
    assert viewer.page.locator("#map-cluster-items .card-title").all_inner_texts() == [
        hit["label"] for hit in expected["results"]
    ]
    assert url_state(viewer) == {"q": ["carré"], "map": ["1"], "cluster": [str(cluster["id"])]}
    assert link.get_attribute("aria-current") == "true"
    heading = viewer.page.locator("#map-cluster-heading")
    assert heading.inner_text() == f"Groupe « {name_of(cluster)} »"
    assert viewer.page.evaluate("document.activeElement.id") == "map-cluster-heading"
    assert "Nom proposé par la machine" in viewer.page.inner_text("#map-cluster")
    export = viewer.page.locator("#map-cluster .map-cluster-export")
    assert export.get_attribute("href") == f"{map_url}api/clusters/{cluster['id']}/items.csv"
    exported = httpx.get(export.get_attribute("href"), timeout=10).text.splitlines()
    assert len(exported) == 1 + cluster["size"]  # the header, then each image
    manifest = viewer.page.locator("#map-cluster .map-cluster-manifest")
    assert manifest.get_attribute("href") == f"{map_url}api/clusters/{cluster['id']}/manifest"
    opened = httpx.get(manifest.get_attribute("href"), timeout=10).json()
    assert opened["id"] == manifest.get_attribute("href")
    assert len(opened["items"]) == cluster["size"]
    # The map stays in view beside the cards, framed on the cluster's points.
    assert viewer.page.locator("#map-stage").is_visible()
    where = screen_points(viewer, points)
    width, height = stage_size(viewer)
    members = [p for p, c in zip(where, points["cluster"], strict=True) if c == cluster["id"]]
    inside = [p for p in members if 0 <= p[0] <= width and 0 <= p[1] <= height]
    assert len(inside) >= 0.9 * len(members)
    assert transform(viewer)[0] >= whole[0]

    # Reloaded, the same map, cluster and cards.
    shown = transform(viewer)
    viewer.page.reload()
    cards.first.wait_for()
    wait_until_drawn(viewer)
    assert cards.evaluate_all("cards => cards.map(c => c.dataset.id)") == ids
    assert link.get_attribute("aria-current") == "true"
    assert transform(viewer) == pytest.approx(shown, abs=0.5)

    # Another cluster by its name on the map; back and forward go through them.
    # (one whose name is shown at this zoom: names that would overlap are hidden)
    shown_names = viewer.page.locator(".map-label:not(.is-hidden)").evaluate_all(
        "labels => labels.map(l => Number(l.dataset.cluster))"
    )
    other = next(
        c for c in summary["clusters"] if c["id"] != cluster["id"] and c["id"] in shown_names
    )
    viewer.page.locator(f'.map-label[data-cluster="{other["id"]}"]').click()
    viewer.page.wait_for_function(f"location.search.includes('cluster={other['id']}')")
    viewer.page.locator("#map-cluster-items .card").first.wait_for()
    viewer.page.go_back()
    viewer.page.wait_for_function(f"location.search.includes('cluster={cluster['id']}')")
    viewer.page.wait_for_function(
        "ids => [...document.querySelectorAll('#map-cluster-items .card')]"
        ".map(c => c.dataset.id).join() === ids",
        arg=",".join(ids),
    )
    viewer.page.go_back()
    viewer.page.wait_for_function("!location.search.includes('cluster=')")
    assert viewer.page.locator("#map-cluster").is_hidden()
    assert viewer.page.locator(".map-cluster-link[aria-current]").count() == 0
    viewer.page.go_back()
    viewer.page.wait_for_function("!location.search.includes('map=')")
    viewer.wait_for_cards()
    assert viewer.card_labels() == searched
    viewer.page.go_forward()
    viewer.page.wait_for_selector("#map-view:not([hidden])")
    assert viewer.page.locator("#results-view").is_hidden()


# ---- pictures and points ----------------------------------------------------------------


def test_zoomed_in_the_points_in_view_show_their_pictures(
    viewer: Page, points: dict[str, Any]
) -> None:
    # Zoomed on the first point: few points in view.
    x, y = points["x"][0], points["y"][0]
    open_map(viewer, f"?map=1&view={x},{y},6")
    viewer.page.wait_for_function(
        "Number(document.querySelector('#map-stage').dataset.pictures) > 0"
    )
    viewer.page.wait_for_function(
        "[...document.querySelectorAll('.map-picture img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    where = screen_points(viewer, points)
    width, height = stage_size(viewer)
    in_view = {
        points["ids"][i]
        for i, (sx, sy) in enumerate(where)
        if -PICTURE_MARGIN <= sx <= width + PICTURE_MARGIN
        and -PICTURE_MARGIN <= sy <= height + PICTURE_MARGIN
    }
    assert 0 < len(in_view) < points["total"]
    pictures = viewer.page.locator(".map-picture")
    shown = pictures.evaluate_all("links => links.map(a => a.dataset.id)")
    assert set(shown) == in_view and len(shown) == len(in_view)
    # Asked for in one request of their ids (at most 200), and each picture at its point.
    asked = items_requests(viewer)
    assert all(len(ids) <= 200 for ids in asked)
    assert set().union(*asked) == in_view
    first = pictures.first
    item_id = first.get_attribute("data-id")
    status, body = get_json(viewer.base_url, "api/items", id=item_id)
    (item,) = body["items"]
    assert first.locator("img").get_attribute("src") == item["thumbnail_url"]
    box = first.bounding_box()
    i = points["ids"].index(item_id)
    px, py = on_page(viewer, *where[i])
    assert box["x"] + box["width"] / 2 == pytest.approx(px, abs=1)
    assert box["y"] + box["height"] / 2 == pytest.approx(py, abs=1)

    # Away and back: the pictures known are not asked for again.
    stage = viewer.page.locator("#map-stage")
    stage.focus()
    count = len(asked)
    for key in ["ArrowLeft"] * 4 + ["ArrowRight"] * 4:
        viewer.page.keyboard.press(key)
    viewer.page.wait_for_timeout(400)
    viewer.page.wait_for_function(
        "n => document.querySelectorAll('.map-picture').length === n", arg=len(in_view)
    )
    assert set(pictures.evaluate_all("links => links.map(a => a.dataset.id)")) == in_view
    assert not set().union(*items_requests(viewer)[count:]) & in_view

    # A picture clicked (one on top of the others there) opens its item's panel over the
    # map, which stays as it was.
    next_frame(viewer)
    before = transform(viewer)
    where = screen_points(viewer, points)
    index_of = {item_id: i for i, item_id in enumerate(points["ids"])}
    on_top = [
        item_id
        for item_id in shown
        if topmost(viewer, *where[index_of[item_id]]) == {"tag": "IMG", "id": item_id}
    ]
    assert on_top
    clicked = on_top[0]
    _, body = get_json(viewer.base_url, "api/items", id=clicked)
    label = body["items"][0]["label"]
    viewer.page.mouse.click(*on_page(viewer, *where[index_of[clicked]]))
    dialog = viewer.page.locator("dialog#detail[open]")
    dialog.locator(".facts").first.wait_for()
    assert dialog.locator("#detail-title").inner_text() == label
    assert url_state(viewer)["item"] == [clicked]
    assert url_state(viewer)["map"] == ["1"]
    viewer.page.keyboard.press("Escape")
    viewer.page.wait_for_function("!location.search.includes('item=')")
    assert viewer.page.locator("#map-view").is_visible()
    assert transform(viewer) == pytest.approx(before, abs=0.01)


def test_a_point_shows_its_label_on_hover_and_opens_its_panel_on_click(
    viewer: Page, points: dict[str, Any], summary: dict[str, Any]
) -> None:
    open_map(viewer)
    hide_pictures(viewer)
    where = screen_points(viewer, points)
    # A point alone, with no cluster's name over it.
    i = next(
        i
        for i in isolated_points(where, points["cluster"], gap=20)
        if topmost(viewer, *where[i])["tag"] == "CANVAS"
    )
    item_id = points["ids"][i]
    _, body = get_json(viewer.base_url, "api/items", id=item_id)
    (item,) = body["items"]
    viewer.page.mouse.move(*on_page(viewer, *where[i]))
    tooltip = viewer.page.locator("#map-tooltip")
    tooltip.locator(".map-tooltip-label").filter(has_text=item["label"]).wait_for()
    cluster = next(c for c in summary["clusters"] if c["id"] == points["cluster"][i])
    assert tooltip.locator(".map-tooltip-cluster").inner_text() == name_of(cluster)
    assert tooltip.get_attribute("role") == "tooltip"

    viewer.page.mouse.click(*on_page(viewer, *where[i]))
    dialog = viewer.page.locator("dialog#detail[open]")
    dialog.locator(".facts").first.wait_for()
    assert dialog.locator("#detail-title").inner_text() == item["label"]
    assert url_state(viewer)["item"] == [item_id]
    # The panel works as it does over the results: "more like this" leaves the map for them.
    dialog.locator(".similar-link").click()
    viewer.page.wait_for_url(re.compile(r"\?similar="))
    viewer.wait_for_cards()
    assert url_state(viewer) == {"similar": [item_id]}
    assert viewer.page.locator("#map-view").is_hidden()


# ---- stores without a map, or behind it -------------------------------------------------


def test_a_store_without_a_map_says_so_and_the_search_still_works(browser, base_url: str) -> None:
    status, body = get_json(base_url, "api/map")
    assert (status, body["error"]["code"]) == (404, "no_map")
    with viewing(browser, base_url) as viewer:
        viewer.open("?map=1")
        alert = viewer.page.locator("#map-notice [role=alert]")
        alert.wait_for()
        assert "pas encore de carte" in alert.locator(".notice-message").inner_text()
        assert "regard map" in alert.locator(".notice-message").inner_text()
        assert alert.locator(".notice-detail").inner_text() == body["error"]["message"]
        assert alert.locator(".notice-code").inner_text() == "404 · no_map"
        assert viewer.page.locator("#map-stage").is_hidden()
        viewer.search("red circle")
        viewer.wait_for_cards()
        assert url_state(viewer) == {"q": ["red circle"]}
        assert viewer.page.locator("#map-view").is_hidden()


def test_a_stale_map_says_how_many_images_it_lacks(
    browser, tmp_path, map_store: Path, iiif_server: IIIFTestServer
) -> None:
    store = tmp_path / "store"
    shutil.copytree(map_store, store)
    assert index(iiif_server.shapes_manifest_url(per_pair=1, seed=7), store=store) == 0
    service = start_service(store)
    try:
        url = service.url + "/"
        _, summary = get_json(url, "api/map")
        _, stats = get_json(url, "api/stats")
        missing = stats["items"] - summary["items"]
        assert summary["stale"] and missing > 0
        with viewing(browser, url) as viewer:
            open_map(viewer)
            notice = viewer.page.locator("#map-notice .map-stale")
            assert notice.locator(".notice-message").inner_text() == (
                f"La carte date d’avant les derniers ajouts : {missing} images n’y sont pas encore "
                "(« regard map » les place)."
            )
            # The map shows what it has.
            assert viewer.page.inner_text("#map-status").startswith(
                f"{summary['items']} images sur la carte"
            )
    finally:
        stop_service(service)


# ---- the lasso --------------------------------------------------------------------------


def clear_line(values: list[float], start: float, gap: float = 6) -> float:
    """A coordinate from `start` on, at least `gap` pixels from each of `values`."""
    at = start
    while any(abs(at - v) < gap for v in values):
        at += 1
    return at


def draw_line(viewer: Page, corners: list[tuple[float, float]], *, release: bool = True) -> None:
    """The mouse pressed at the first corner, moved through the others and back, released."""
    mouse = viewer.page.mouse
    mouse.move(*on_page(viewer, *corners[0]))
    mouse.down()
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1], strict=True):
        for t in (0.25, 0.5, 0.75, 1.0):
            mouse.move(*on_page(viewer, ax + (bx - ax) * t, ay + (by - ay) * t))
    if release:
        mouse.up()


def test_the_lasso_selects_the_points_inside_it_and_exports_them(
    viewer: Page, points: dict[str, Any]
) -> None:
    open_map(viewer)
    where = screen_points(viewer, points)
    width, height = stage_size(viewer)
    xs, ys = [p[0] for p in where], [p[1] for p in where]
    left, right = clear_line(xs, width * 0.3), clear_line(xs, width * 0.65)
    top, bottom = clear_line(ys, height * 0.2), clear_line(ys, height * 0.7)
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    inside = [
        points["ids"][i]
        for i, (sx, sy) in enumerate(where)
        if left < sx < right and top < sy < bottom
    ]
    assert 0 < len(inside) < len(where)
    before = transform(viewer)

    toggle = viewer.page.get_by_role("button", name=re.compile("^Sélection au lasso"))
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    draw_line(viewer, corners)
    heading = viewer.page.locator("#map-selection-heading")
    assert heading.inner_text() == f"{len(inside)} images sélectionnées"
    # The rings are drawn with the map's next frame, which says how many it drew.
    viewer.page.wait_for_function(
        "n => document.querySelector('#map-stage').dataset.selected === n", arg=str(len(inside))
    )
    # The map stayed where it was, and no point's panel opened.
    next_frame(viewer)
    assert transform(viewer) == before
    assert url_state(viewer) == {"map": ["1"]}
    # The selected images as cards, in the map's order, unranked.
    cards = viewer.page.locator("#map-selection .card")
    cards.nth(min(len(inside), 48) - 1).wait_for()
    assert cards.evaluate_all("cards => cards.map(c => c.dataset.id)") == inside[:48]
    assert viewer.page.locator("#map-selection .card-score").count() == 0

    # Exported as CSV and as a IIIF manifest, downloaded by the browser.
    with viewer.page.expect_download() as csv_download:
        viewer.page.get_by_role("button", name=re.compile("^Exporter CSV")).click()
    assert csv_download.value.suggested_filename == f"regard-selection-{len(inside)}.csv"
    with open(csv_download.value.path(), encoding="utf-8") as exported:
        assert [row["item_id"] for row in csv.DictReader(exported)] == inside
    with viewer.page.expect_download() as iiif_download:
        viewer.page.get_by_role("button", name=re.compile("^Exporter IIIF")).click()
    with open(iiif_download.value.path(), encoding="utf-8") as exported:
        manifest = json.load(exported)
    assert manifest["type"] == "Manifest" and len(manifest["items"]) == len(inside)

    # Escape drops a line being drawn, then leaves the lasso; a drag pans again.
    draw_line(viewer, [(5, 5), (width - 5, 5), (width - 5, height - 5)], release=False)
    viewer.page.keyboard.press("Escape")
    viewer.page.mouse.up()
    assert viewer.page.get_attribute("#map-stage", "data-selected") == str(len(inside))
    viewer.page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-pressed") == "false"
    viewer.page.mouse.move(*on_page(viewer, width / 2, height / 2))
    viewer.page.mouse.down()
    viewer.page.mouse.move(*on_page(viewer, width / 2 + 40, height / 2 + 30), steps=5)
    viewer.page.mouse.up()
    wait_for_transform_change(viewer, before)
    # Effacer: no selection left.
    viewer.page.get_by_role("button", name=re.compile("^Effacer")).click()
    assert viewer.page.locator("#map-selection").is_hidden()
    next_frame(viewer)
    assert viewer.page.get_attribute("#map-stage", "data-selected") == "0"
