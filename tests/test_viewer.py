"""The web viewer, driven in Debian's Chromium against a real `regard serve` process.

The `live_service` fixture (tests/conftest.py) serves a store of generated coloured
shapes ("red circle 7", …) indexed with the small `regard-test` model. The browser is
the system's Chromium: Playwright never downloads one here.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.imageapi import region_box
from tests.iiif_images import BitmapPicture, sheet_of_drawings
from tests.regard_fixtures import index, start_service, stop_service
from tests.test_image_requests import LEVEL_0, LEVEL_2, manifest_of, painted_canvas
from tests.test_record_fields import FIXTURES, RECORD_MANIFESTS

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium")


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def base_url(live_service) -> str:
    return live_service.url.rstrip("/") + "/"


class Page:
    """A page of the viewer, with what the test needs to know about its life."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))
        page.set_default_timeout(TIMEOUT_MS)

    def open(self, query: str = "") -> None:
        self.page.goto(self.base_url + query)
        self.page.wait_for_selector("#stats .stat")  # the app has started and reached the API

    def search(self, text: str) -> None:
        self.page.fill("#q", text)
        self.page.press("#q", "Enter")

    def first_card(self, query: str) -> tuple[Any, str, str]:
        """Open the results of `query`; their first card, its item id and its title."""
        self.open(query)
        self.wait_for_cards()
        card = self.page.locator("#grid .card").first
        return card, card.get_attribute("data-id"), card.locator(".card-title").inner_text()

    def wait_for_cards(self) -> None:
        self.page.wait_for_selector("#grid .card")
        self.page.wait_for_function("document.querySelector('#grid').ariaBusy === 'false'")

    def fail_images(self) -> None:
        """Every image request fails from now on, as when an image server is down."""
        self.page.route(
            "**/*",
            lambda route: (
                route.abort() if route.request.resource_type == "image" else route.continue_()
            ),
        )

    def card_labels(self) -> list[str]:
        return self.page.locator("#grid .card-title").all_inner_texts()

    def card_scores(self) -> list[float]:
        values = self.page.locator("#grid .card-score data").evaluate_all(
            "nodes => nodes.map(n => n.value)"
        )
        return [float(v) for v in values]


@pytest.fixture
def viewer(browser, base_url) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = Page(context.new_page(), base_url)
    yield page
    context.close()
    assert page.errors == [], f"JavaScript errors in the page: {page.errors}"


def get_json(base_url: str, path: str, **params: Any) -> tuple[int, dict]:
    url = base_url + path.lstrip("/")
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def query_of(url: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)


# ---- search -----------------------------------------------------------------------------


def test_search_fills_the_grid_with_the_api_results(viewer: Page, base_url: str) -> None:
    viewer.open()
    stats = viewer.page.inner_text("#stats")
    _, expected_stats = get_json(base_url, "api/stats")
    assert "images" in stats
    assert expected_stats["model"]["name"] in stats

    viewer.search("red circle")
    viewer.wait_for_cards()

    labels = viewer.card_labels()
    # The service labels an item in French when it can: "cercle rouge 7" / "red circle 7".
    assert re.search(r"red circle|cercle rouge", labels[0]), labels
    _, expected = get_json(base_url, "api/search", q="red circle", k=24)
    assert labels == [hit["label"] for hit in expected["results"]]
    # Scores are shown, every one of them (no threshold), in the API's order.
    assert viewer.card_scores() == pytest.approx([hit["score"] for hit in expected["results"]])
    assert re.fullmatch(r"score \d+,\d{3}", viewer.page.locator(".card-score").first.inner_text())

    # The state is in the URL, so that the search can be shared.
    assert query_of(viewer.page.url) == {"q": ["red circle"]}
    assert "red circle" in viewer.page.title()

    # The first row's thumbnails really arrived from the Image API.
    viewer.page.wait_for_function(
        """() => [...document.querySelectorAll('#grid .card')].slice(0, 3)
                 .every(card => { const img = card.querySelector('img');
                                  return img && img.complete && img.naturalWidth > 0; })"""
    )

    # Each card links to its manifest and canvas, in a new tab.
    first = expected["results"][0]
    manifest = viewer.page.locator(".card").first.locator("a.iiif-manifest")
    assert manifest.get_attribute("href") == first["manifest_id"]
    assert manifest.get_attribute("target") == "_blank"
    canvas = viewer.page.locator(".card").first.locator("a.iiif-canvas")
    assert canvas.get_attribute("href") == first["canvas_id"]

    # Nothing was fetched from outside: the page works offline.
    hosts = {urllib.parse.urlsplit(url).hostname for url in viewer.requests}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts


def test_a_shared_url_opens_the_search_and_back_returns_to_it(viewer: Page) -> None:
    viewer.open("?q=blue+square")
    viewer.wait_for_cards()
    assert viewer.page.input_value("#q") == "blue square"
    assert "blue square" in viewer.page.inner_text("#results-heading")

    viewer.page.locator(".card .similar-link").first.click()
    viewer.page.wait_for_url(re.compile(r"\?similar="))
    viewer.page.wait_for_selector("#reference:not([hidden]) .reference-title")

    viewer.page.go_back()
    viewer.page.wait_for_url(re.compile(r"\?q=blue\+square$"))
    viewer.wait_for_cards()
    assert "blue square" in viewer.page.inner_text("#results-heading")
    assert viewer.page.locator("#reference").is_hidden()


def test_more_like_this_shows_the_neighbours_of_the_reference(viewer: Page, base_url: str) -> None:
    card, item_id, label = viewer.first_card("?q=red+circle")

    card.locator(".similar-link").click()
    viewer.page.wait_for_url(re.compile(r"\?similar="))
    viewer.page.wait_for_selector("#reference:not([hidden]) .reference-title")
    viewer.wait_for_cards()

    assert query_of(viewer.page.url) == {"similar": [item_id]}
    assert viewer.page.inner_text("#reference .reference-title") == label
    _, expected = get_json(base_url, f"api/items/{urllib.parse.quote(item_id)}/similar", k=24)
    assert viewer.card_labels() == [hit["label"] for hit in expected["results"]]
    ids = viewer.page.locator("#grid .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
    assert item_id not in ids
    assert len(viewer.card_scores()) == len(ids) > 0
    # The box no longer holds the search: this view has no query.
    assert viewer.page.input_value("#q") == ""


# ---- the detail panel -------------------------------------------------------------------


def test_the_detail_panel_shows_metadata_and_iiif_links(viewer: Page, base_url: str) -> None:
    viewer.open("?q=green+star")
    viewer.wait_for_cards()
    card = viewer.page.locator("#grid .card").first
    item_id = card.get_attribute("data-id")
    _, item = get_json(base_url, f"api/items/{urllib.parse.quote(item_id)}")

    # Keyboard: the card is focusable and Enter opens it.
    card.locator(".card-open").focus()
    viewer.page.keyboard.press("Enter")
    dialog = viewer.page.locator("dialog#detail[open]")
    dialog.locator(".facts").first.wait_for()
    assert "item=" in viewer.page.url

    title = dialog.locator("#detail-title").inner_text()
    assert title in [v for values in item["labels"].values() for v in values] + [item["label"]]
    # The canvas's and the manifest's metadata: every entry, label and value.
    facts = " ".join(dialog.locator(".facts").all_inner_texts())
    entries = item["canvas_metadata"] + item["metadata"]
    assert entries, "the shapes collection has metadata on its canvases"
    for entry in entries:
        for part in ("label", "value"):
            texts = [v for values in entry[part].values() for v in values]
            assert any(text in facts for text in texts), (entry, facts)
    assert dialog.locator("a.iiif-manifest").get_attribute("href") == item["manifest_id"]
    assert dialog.locator("a.iiif-canvas").get_attribute("href") == item["canvas_id"]
    assert dialog.locator("a.iiif-manifest").get_attribute("target") == "_blank"
    dialog.locator(".detail-image img").wait_for()
    assert dialog.locator(".detail-image img").get_attribute("alt")
    viewer.page.wait_for_function(
        "() => { const img = document.querySelector('#detail .detail-image img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )

    # Escape closes it and the URL forgets it; "more like this" from the panel works.
    viewer.page.keyboard.press("Escape")
    viewer.page.wait_for_url(re.compile(r"\?q=green\+star$"))
    assert viewer.page.locator("dialog#detail[open]").count() == 0

    card.locator(".card-open").click()
    dialog.locator(".similar-link").click()
    viewer.page.wait_for_url(re.compile(r"\?similar="))
    viewer.wait_for_cards()
    assert viewer.page.locator("dialog#detail[open]").count() == 0


# ---- errors and failures ----------------------------------------------------------------


def test_an_empty_query_says_what_to_do_in_french_then_the_api_message(
    viewer: Page, base_url: str
) -> None:
    status, body = get_json(base_url, "api/search", q="")
    assert status == 400
    viewer.open()
    viewer.search("")
    alert = viewer.page.locator("#notice [role=alert]")
    alert.wait_for()
    assert alert.locator(".notice-message").inner_text().startswith("Saisissez quelques mots")
    assert alert.locator(".notice-detail").inner_text() == body["error"]["message"]
    assert viewer.page.locator("#grid .card").count() == 0


def test_an_error_keeps_the_results_on_screen_until_a_search_succeeds(
    viewer: Page, base_url: str
) -> None:
    viewer.open("?q=red+circle")
    viewer.wait_for_cards()
    shown = viewer.card_labels()
    heading = viewer.page.inner_text("#results-heading")
    alert = viewer.page.locator("#notice [role=alert]")

    viewer.search("")  # refused by the service: "give some words"
    alert.wait_for()
    assert alert.locator(".notice-message").inner_text().startswith("Saisissez quelques mots")
    assert "vue précédente" in alert.locator(".notice-kept").inner_text()
    # What the curator was looking at is still there, under its own heading.
    assert viewer.card_labels() == shown
    assert viewer.page.inner_text("#results-heading") == heading
    assert alert.bounding_box()["y"] < viewer.page.locator("#grid").bounding_box()["y"]

    # "More like this" that cannot reach the service keeps them too.
    viewer.page.route("**/similar?*", lambda route: route.abort())
    viewer.page.locator("#grid .card .similar-link").first.click()
    alert.filter(has_text="ne répond pas").wait_for()
    viewer.page.wait_for_function("document.querySelector('#grid').ariaBusy === 'false'")
    assert viewer.card_labels() == shown
    viewer.page.unroute("**/similar?*")

    # The next search that succeeds replaces both.
    viewer.search("blue square")
    viewer.page.wait_for_url(re.compile(r"\?q=blue\+square$"))
    alert.wait_for(state="detached")
    viewer.wait_for_cards()
    _, expected = get_json(base_url, "api/search", q="blue square", k=24)
    assert viewer.card_labels() == [hit["label"] for hit in expected["results"]]
    assert "blue square" in viewer.page.inner_text("#results-heading")


def test_more_results_than_the_service_gives_offers_the_first_ones(viewer: Page) -> None:
    viewer.open("?q=circle&k=5000")
    alert = viewer.page.locator("#notice [role=alert]")
    alert.wait_for()
    assert "pas autant de résultats" in alert.inner_text()
    alert.get_by_role("link").click()
    viewer.page.wait_for_url(re.compile(r"\?q=circle$"))
    viewer.wait_for_cards()
    assert viewer.page.locator("#grid .card").count() == 24


def test_an_unknown_item_shows_the_api_message(viewer: Page, base_url: str) -> None:
    _, body = get_json(base_url, "api/items/no-such-item/similar")
    viewer.open("?similar=no-such-item")
    alert = viewer.page.locator("#notice [role=alert]")
    alert.wait_for()
    assert body["error"]["message"] in alert.inner_text()

    _, body = get_json(base_url, "api/items/no-such-item")
    viewer.open("?q=red&item=no-such-item")
    alert = viewer.page.locator("dialog#detail[open] [role=alert]")
    alert.wait_for()
    assert body["error"]["message"] in alert.inner_text()


def test_images_that_fail_show_a_placeholder(viewer: Page) -> None:
    viewer.fail_images()
    viewer.open("?q=yellow+triangle")
    viewer.wait_for_cards()
    first = viewer.page.locator("#grid .card").first
    first.locator(".placeholder").wait_for()
    assert first.locator("img").count() == 0
    assert "indisponible" in first.locator(".thumb").inner_text()


def test_more_results_asks_for_a_larger_k(viewer: Page, base_url: str) -> None:
    _, stats = get_json(base_url, "api/stats")
    if stats["items"] <= 24:
        pytest.skip("the collection holds one page of results")
    viewer.open("?q=circle")
    viewer.wait_for_cards()
    assert viewer.page.locator("#grid .card").count() == 24
    viewer.page.click("#more")
    viewer.page.wait_for_url(re.compile(r"k=48"))
    viewer.page.wait_for_function("document.querySelectorAll('#grid .card').length > 24")
    assert viewer.page.locator("#grid .card").count() == min(48, stats["items"])
    # The keyboard goes on from the first new result, not from the button below them all.
    focused = viewer.page.evaluate("document.activeElement.closest('.card')?.dataset.id")
    assert focused == viewer.page.locator("#grid .card").nth(24).get_attribute("data-id")


def test_more_results_stops_at_the_services_own_limit(browser, shapes_store: Path) -> None:
    service = start_service(shapes_store, env={"REGARD_MAX_K": "30"})
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        viewer = Page(context.new_page(), service.url + "/")
        viewer.open("?q=circle")
        viewer.wait_for_cards()
        viewer.page.click("#more")
        viewer.page.wait_for_url(re.compile(r"k=30"))
        viewer.page.wait_for_function("document.querySelectorAll('#grid .card').length === 30")
        assert viewer.page.locator("#more").is_hidden()
        assert viewer.page.locator("#notice [role=alert]").count() == 0
        context.close()
        assert viewer.errors == []
    finally:
        stop_service(service)


# ---- the record of real manifests -------------------------------------------------------

# A real manifest made hostile: markup that must never run, links that must never be made.
HOSTILE_BASE = "v2/goettingen_gdz-PPN140716181.json"
HOSTILE_ATTRIBUTION = (
    'Fonds Royère<br/><a href="javascript:window.pwned=1">lien</a> '
    '<img src="x" onerror="window.pwned=1"><script>window.pwned=1</script>'
    '<svg><script>window.pwned=1</script></svg><iframe src="javascript:window.pwned=1"></iframe>'
)


# Master files of 108 megapixels, behind three kinds of Image API service.
MASTER = (12000, 9000)
MASTERS_MANIFEST = "https://museum.example/iiif/masters/manifest"
MASTER_SERVICES = [
    # level 2: asked for any size
    {"id": "https://museum.example/iiif/scaling", "type": "ImageService3", "profile": "level2"},
    # level 0, a listed size within 2000 pixels, and the master itself
    {
        "id": "https://museum.example/iiif/listed",
        "type": "ImageService3",
        "profile": "level0",
        "sizes": [{"width": w, "height": h} for w, h in [(500, 375), (2000, 1500), MASTER]],
    },
    # level 0 (v2), no listed size within 2000 pixels: the smallest listed, not the master
    {
        "@id": "https://museum.example/iiif/large-only",
        "@context": "http://iiif.io/api/image/2/context.json",
        "profile": "http://iiif.io/api/image/2/level0.json",
        "sizes": [{"width": w, "height": h} for w, h in [(3000, 2250), MASTER]],
    },
]


def _master_canvas(n: int, service: dict) -> dict:
    canvas = f"{MASTERS_MANIFEST}/canvas/{n}"
    base = service.get("id") or service["@id"]
    body = {"id": f"{base}/full/full/0/default.jpg", "type": "Image", "format": "image/jpeg"}
    body |= {"width": MASTER[0], "height": MASTER[1], "service": [{**service}]}
    body["service"][0] |= {"width": MASTER[0], "height": MASTER[1]}
    annotation = {"id": f"{canvas}/a", "type": "Annotation", "motivation": "painting"}
    annotation |= {"body": body, "target": canvas}
    page = {"id": f"{canvas}/p", "type": "AnnotationPage", "items": [annotation]}
    items = [page]
    return {"id": canvas, "type": "Canvas", "width": MASTER[0], "height": MASTER[1], "items": items}


MASTERS = {
    "@context": "http://iiif.io/api/presentation/3/context.json",
    "id": MASTERS_MANIFEST,
    "type": "Manifest",
    "label": {"fr": ["Dessins numérisés en très haute définition"]},
    "homepage": [
        {
            "id": "https://museum.example/collections/royere-42",
            "type": "Text",
            "format": "text/html",
            "label": {"fr": ["Notice"]},
        }
    ],
    "items": [_master_canvas(n, service) for n, service in enumerate(MASTER_SERVICES)],
}


@pytest.fixture(scope="module")
def record_service(tmp_path_factory, iiif_server) -> Iterator[tuple[str, Path]]:
    """`regard serve` over a store of the real manifests of tests/test_record_fields.py,
    one made hostile, and one of master files too large to open whole; yields its URL
    and the store."""
    iiif_server.reset()
    doc = json.loads((FIXTURES / HOSTILE_BASE).read_text())
    doc["@id"] = "https://hostile.example/manifest.json"
    doc["attribution"] = HOSTILE_ATTRIBUTION
    doc["related"] = ["javascript:window.pwned=1", {"@id": "data:text/html,x", "label": "x"}]
    doc["license"] = '<a href="javascript:window.pwned=1">CC</a>'
    doc["metadata"] = [{"label": '<b onclick="window.pwned=1">Titre</b>', "value": "a &lt; b"}]
    hostile = iiif_server.add_document("/docs/hostile.json", doc)
    masters = iiif_server.add_document("/docs/masters.json", MASTERS)
    store = tmp_path_factory.mktemp("record-viewer") / "store"
    urls = [iiif_server.url(path) for path in RECORD_MANIFESTS] + [hostile, masters]
    assert index(*urls, store=store) == 0
    service = start_service(store)
    yield service.url.rstrip("/") + "/", store
    stop_service(service)


@pytest.fixture
def record_viewer(browser, record_service) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = Page(context.new_page(), record_service[0])
    yield page
    context.close()
    assert page.errors == [], f"JavaScript errors in the page: {page.errors}"


def open_record(
    viewer: Page, record_service, iiif_server, source: str, canvas: int | None = None
) -> tuple[Any, dict]:
    """Open the detail panel of the first image of `source` (a fixture path, or a URL),
    or of its `canvas` (from 0); returns the panel and the API's answer for that image."""
    base_url, store = record_service
    url = source if source.startswith("http") else iiif_server.url(source)
    where = "m.source = ?" + ("" if canvas is None else " AND i.canvas_index = ?")
    with sqlite3.connect(store / "store.sqlite") as conn:
        (item_id,) = conn.execute(
            "SELECT i.id FROM items i JOIN manifests m ON m.id = i.manifest_id "
            f"WHERE {where} ORDER BY i.key LIMIT 1",
            (url,) if canvas is None else (url, canvas),
        ).fetchone()
    _, item = get_json(base_url, f"api/items/{urllib.parse.quote(item_id, safe='')}")
    viewer.open("?item=" + urllib.parse.quote(item_id, safe=""))
    dialog = viewer.page.locator("dialog#detail[open]")
    dialog.locator(".facts").first.wait_for()
    return dialog, item


def test_the_panel_shows_the_summary_the_rights_and_the_museums_record(
    record_viewer: Page, record_service, iiif_server
) -> None:
    # National Library of Wales: rights given as <a href=…> markup, a summary in en and cy.
    dialog, item = open_record(
        record_viewer, record_service, iiif_server, "v2/nlw_nlw-manifest.json"
    )
    rights = dialog.locator(".rights a")
    assert rights.get_attribute("href") == "https://creativecommons.org/publicdomain/mark/1.0/"
    assert "<a" not in dialog.inner_text()
    summary = dialog.locator(".detail-summary")
    assert "monthly Welsh language periodical" in summary.inner_text()
    assert summary.get_attribute("lang") == "en"  # no French: English before Welsh

    # Biblissima: both licences.
    dialog, _ = open_record(
        record_viewer, record_service, iiif_server, "edge/biblissima_emptyCanvas.json"
    )
    assert dialog.locator(".rights a").evaluate_all("links => links.map(a => a.href)") == [
        "http://creativecommons.org/licenses/by-nc/4.0/",
        "https://gallica.bnf.fr/html/und/conditions-dutilisation-des-contenus-de-gallica",
    ]

    # The cookbook's Whistler: the required statement under its own French label.
    dialog, _ = open_record(
        record_viewer,
        record_service,
        iiif_server,
        "edge/iiifcookbook_0006-text-language_manifest.json",
    )
    label = dialog.locator("dt.required-label")
    assert label.inner_text() == "Détenu par" and label.get_attribute("lang") == "fr"
    assert dialog.locator("dd.required-statement").inner_text() == "Musée d'Orsay, Paris, France"
    assert dialog.locator(".detail-summary").inner_text().startswith("Arrangement en gris et noir")

    # Wellcome: the record at the museum and the provider, each in a new tab.
    dialog, item = open_record(
        record_viewer, record_service, iiif_server, "v3/wellcome_wellcome-p3-2.json"
    )
    record = dialog.locator("a.record-link")
    assert record.get_attribute("href") == item["homepage"][0]["url"]
    assert record.get_attribute("href").endswith("/h/wellcomecollection.org/works/krqp99r9")
    assert record.get_attribute("target") == "_blank"
    assert "noopener" in record.get_attribute("rel").split()
    assert (
        "Notice du musée" in record.inner_text() and "record at the museum" in record.inner_text()
    )
    assert "Wunder der Vererbung" in dialog.locator(".record-links").inner_text()
    provider = dialog.locator("a.provider-link")
    assert provider.inner_text().startswith("Wellcome Collection")
    assert provider.get_attribute("href").endswith("/h/wellcomecollection.org/works")
    assert "noopener" in provider.get_attribute("rel").split()
    # Its canvases are labelled "-": the panel is titled with the manifest's label.
    assert dialog.locator("#detail-title").inner_text() == item["manifest_label"]


def test_html_anywhere_in_a_value_is_rendered_not_printed(
    record_viewer: Page, record_service, iiif_server
) -> None:
    # BSB: "Ingolstadt, Regensburg, Lauingen<br/>um 1430 …"
    dialog, _ = open_record(
        record_viewer, record_service, iiif_server, "v2/bsb_digitale-sammlungen-bsb00026283.json"
    )
    creation = dialog.locator("dd", has_text="Lauingen")
    assert creation.locator("br").count() == 1
    assert "<br" not in dialog.inner_text()

    # Library of Congress: "Army Map Service &amp; … <cite>Holland 1:25,000</cite>".
    dialog, _ = open_record(record_viewer, record_service, iiif_server, "v2/loc_loc.json")
    text = dialog.inner_text()
    assert "Army Map Service & United States Army" in text
    assert "&amp;" not in text and "<cite>" not in text and "Holland 1:25,000" in text

    # National Library of Scotland: "…Scotland<br/>License: <a href=…>CC BY 4.0</a>".
    dialog, _ = open_record(record_viewer, record_service, iiif_server, "v2/nls_nls-manifest.json")
    statement = dialog.locator("dd.required-statement")
    licence = statement.get_by_role("link", name="CC BY 4.0")
    assert licence.get_attribute("href") == "http://creativecommons.org/licenses/by/4.0/"
    assert licence.get_attribute("target") == "_blank"
    assert statement.locator("br").count() == 1 and "<" not in statement.inner_text()

    # Leipzig (v3): "Provided by Leipzig University Library<br/>No Copyright …".
    dialog, _ = open_record(
        record_viewer, record_service, iiif_server, "v3/ubleipzig_manifest-00000004119.json"
    )
    statement = dialog.locator("dd.required-statement")
    assert statement.locator("br").count() == 1 and "<br" not in statement.inner_text()

    # LoC's Hamilton letter keys its labels "true": never a lang attribute.
    dialog, _ = open_record(
        record_viewer, record_service, iiif_server, "edge/loc-prtd_hamilton.json"
    )
    assert "Preservation Research and Testing Division" in dialog.inner_text()
    assert viewer_langs(record_viewer) <= {"en", "fr", "de", "cy-GB", "zh"}, viewer_langs(
        record_viewer
    )


def viewer_langs(viewer: Page) -> set[str]:
    return set(
        viewer.page.locator("#detail [lang]").evaluate_all("nodes => nodes.map(n => n.lang)")
    )


def test_hostile_markup_in_a_manifest_runs_nothing_and_links_nowhere(
    record_viewer: Page, record_service, iiif_server
) -> None:
    hostile = iiif_server.base_url + "/docs/hostile.json"
    dialog, item = open_record(record_viewer, record_service, iiif_server, hostile)
    assert item["homepage"] == []  # javascript: and data: are not record pages
    statement = dialog.locator("dd.required-statement")
    assert statement.inner_text().startswith("Fonds Royère")
    assert "lien" in statement.inner_text()
    record_viewer.page.wait_for_timeout(300)  # time for an onerror to fire, were there one
    assert record_viewer.page.evaluate("window.pwned") is None
    body = dialog.locator("#detail-body")
    for selector in ("script", "iframe", "svg", ".facts img", "[onerror]", "[onclick]"):
        assert body.locator(selector).count() == 0, selector
    hrefs = body.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert all(href.startswith(("http://", "https://", "?")) for href in hrefs), hrefs
    assert "a < b" in dialog.inner_text()  # an entity in plain text is decoded, not run


def served_size(url: str) -> tuple[int, int]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return Image.open(io.BytesIO(response.read())).size


def test_the_image_link_opens_a_bounded_picture_not_the_master_file(
    record_viewer: Page, record_service, iiif_server
) -> None:
    masters = iiif_server.base_url + "/docs/masters.json"
    expected = [  # what each service serves within about 2000 pixels
        ("/h/museum.example/iiif/scaling", "full/!2000,2000", (2000, 1500)),
        ("/h/museum.example/iiif/listed", "full/2000,1500", (2000, 1500)),
        ("/h/museum.example/iiif/large-only", "full/3000,", (3000, 2250)),
    ]
    for n, (service, size, pixels) in enumerate(expected):
        dialog, item = open_record(record_viewer, record_service, iiif_server, masters, n)
        link = dialog.locator("a.iiif-image")
        href = link.get_attribute("href")
        assert href == item["large_url"] == f"{iiif_server.base_url}{service}/{size}/0/default.jpg"
        assert link.get_attribute("target") == "_blank"
        assert served_size(href) == pixels  # the service serves it (level 0 refuses others)
        assert item["image_url"].endswith("/full/full/0/default.jpg")  # the API still says it
        # The record at the museum is linked as it was.
        record = dialog.locator("a.record-link")
        assert record.get_attribute("href") == item["homepage"][0]["url"]
        assert record.get_attribute("href").endswith("/h/museum.example/collections/royere-42")


# ---- regions a level 0 service cannot crop ----------------------------------------------

SHEET_CELL = 400  # a sheet of 2 x 2 drawings, 800 x 800 pixels
SHEET_SIZES = [(200, 200), (400, 400), (800, 800)]  # listed in its info.json only
SHEET_REGIONS = [
    "0,0,400,400",  # the red circle
    "100,500,700,250",  # parts of the green triangle and the yellow star: wide
    "500,50,250,700",  # parts of the blue square and the yellow star: tall
]


@pytest.fixture(scope="module")
def sheet_service(tmp_path_factory, iiif_server) -> Iterator[tuple[str, Image.Image]]:
    """`regard serve` over regions of one sheet of drawings, on a level 0 service (it
    serves the whole sheet only) and on a level 2 one (it crops); yields its URL and the
    sheet."""
    sheet = sheet_of_drawings(SHEET_CELL)
    add = iiif_server.add_image_service
    static = add("/viewer-sheets/static", BitmapPicture(sheet), level=0, sizes=SHEET_SIZES)
    scaling = add("/viewer-sheets/scaling", BitmapPicture(sheet), level=2)
    level_0 = {"@id": static, "@type": "ImageService2", "profile": LEVEL_0}
    level_2 = {"@id": scaling, "@type": "ImageService2", "profile": LEVEL_2}
    canvases = [
        painted_canvas(20 + n, level_0, sheet.size, region)
        for n, region in enumerate(SHEET_REGIONS)
    ]
    canvases.append(painted_canvas(30, level_2, sheet.size, SHEET_REGIONS[1]))
    iiif_server.reset()
    url = iiif_server.add_document(
        "/docs/viewer-sheets.json", manifest_of("viewer-sheets", "Dessins d'une feuille", canvases)
    )
    store = tmp_path_factory.mktemp("sheet-viewer") / "store"
    try:
        assert index(url, store=store) == 0
    finally:
        iiif_server.reset()
    service = start_service(store)
    yield service.url.rstrip("/") + "/", sheet
    stop_service(service)


def screenshot(locator) -> Image.Image:
    return Image.open(io.BytesIO(locator.screenshot())).convert("RGB")


def differs(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference after bringing `b` to `a`'s size."""
    other = np.asarray(b.convert("RGB").resize(a.size), dtype=float)
    return float(np.abs(np.asarray(a, dtype=float) - other).mean())


def cut(sheet: Image.Image, region: str) -> Image.Image:
    x, y, w, h = region_box(region)
    return sheet.crop((x, y, x + w, y + h))


def test_a_region_that_a_level_0_service_cannot_crop_shows_alone(browser, sheet_service) -> None:
    base_url, sheet = sheet_service
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="fr-FR", reduced_motion="reduce"
    )
    viewer = Page(context.new_page(), base_url)
    _, found = get_json(base_url, "api/search", q="dessin", k=24)
    hits = found["results"]
    assert sorted(hit["region"] for hit in hits) == sorted([*SHEET_REGIONS, SHEET_REGIONS[1]])

    viewer.open("?q=dessin")
    viewer.wait_for_cards()
    for hit in hits:
        frame = viewer.page.locator(f'#grid .card[data-id="{hit["id"]}"] .thumb.is-loaded')
        frame.wait_for()
        if hit["crop"] is None:  # the level 2 service's picture is the region already
            assert f"/{hit['region']}/" in hit["thumbnail_url"]
            assert frame.locator(".crop").count() == 0
            continue
        assert "/full/" in hit["thumbnail_url"]  # the whole sheet, cut in the page
        box, inner = frame.bounding_box(), frame.locator(".crop").bounding_box()
        # The region's shape, as large as the square frame allows.
        assert inner["width"] / inner["height"] == pytest.approx(hit["width"] / hit["height"], 0.03)
        fills = max(inner["width"] / box["width"], inner["height"] / box["height"])
        assert fills == pytest.approx(1, abs=0.01)
        shown = screenshot(frame.locator(".crop"))
        assert differs(shown, cut(sheet, hit["region"])) < 12, hit["region"]
        assert differs(shown, sheet) > 30  # the whole sheet would differ

    # The detail panel's larger picture shows the region alone too.
    wide = next(hit for hit in hits if hit["crop"] and hit["region"] == SHEET_REGIONS[1])
    viewer.open("?q=dessin&item=" + urllib.parse.quote(wide["id"], safe=""))
    frame = viewer.page.locator("dialog#detail[open] .detail-image.is-loaded")
    frame.wait_for()
    shown = screenshot(frame.locator(".crop"))
    assert shown.width > 400  # the preview, not a thumbnail's size
    assert differs(shown, cut(sheet, SHEET_REGIONS[1])) < 12
    context.close()
    assert viewer.errors == []
