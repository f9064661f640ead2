"""The viewer's two searches by picture, in Debian's Chromium against `regard serve`:
a picture the user chooses or drops on the page (POST api/search/image), and a part of
an item's picture dragged out in its detail panel (api/items/{id}/similar?region=pct:…).

The browser, the live service and the `Page` helper are tests/test_viewer.py's.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from models.shapes import ShapeSpec, render
from tests import test_viewer
from tests.regard_fixtures import start_service, stop_service
from tests.test_viewer import Page, get_json, query_of

pytestmark = test_viewer.pytestmark

# test_viewer.py's fixtures: a browser for this module, the session's live service.
browser = test_viewer.browser
base_url = test_viewer.base_url
viewer = test_viewer.viewer
sheet_service = test_viewer.sheet_service

# ---- helpers ----------------------------------------------------------------------------


def red_circle(tmp_path: Path, name: str = "cercle.png", fmt: str = "PNG") -> Path:
    """A red circle drawn as the collection's are, but not one of them."""
    path = tmp_path / name
    render(ShapeSpec(shape="circle", colour="red", seed=99), 384).save(path, fmt)
    return path


def post_picture(base_url: str, path: Path, content_type: str, k: int = 24) -> dict:
    request = urllib.request.Request(
        f"{base_url}api/search/image?k={k}",
        data=path.read_bytes(),
        headers={"Content-Type": content_type, "Accept": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def choose_picture(viewer: Page, path: Path, opener: str = "#picture-button") -> None:
    """Choose `path` as a person does: a click on `opener`, then the browser's file chooser."""
    with viewer.page.expect_file_chooser() as chooser:
        viewer.page.click(opener)
    chooser.value.set_files(str(path))


def picture_posts(viewer: Page) -> list[str]:
    return [url for url in viewer.requests if "/api/search/image" in url]


def card_ids(viewer: Page) -> list[str]:
    return viewer.page.locator("#grid .card").evaluate_all("cards => cards.map(c => c.dataset.id)")


def box_of(locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return box


def drag(
    viewer: Page, box: dict[str, float], start: tuple[float, float], end: tuple[float, float]
) -> None:
    """Drag the mouse from `start` to `end`, fractions of `box` (a bounding box)."""
    mouse = viewer.page.mouse
    mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    mouse.down()
    mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=8)
    mouse.up()


def region_of(url: str) -> list[float]:
    (region,) = query_of(url)["region"]
    assert region.startswith("pct:"), region
    return [float(v) for v in region.removeprefix("pct:").split(",")]


def open_part_picker(viewer: Page, query: str) -> tuple[Any, str]:
    """Open the detail panel of the first result of `query`, then its part picker; returns
    the picture's box (the part picker's layer) and the item's id."""
    viewer.open("?" + urllib.parse.urlencode({"q": query}))
    viewer.wait_for_cards()
    card = viewer.page.locator("#grid .card").first
    item_id = card.get_attribute("data-id")
    card.locator(".card-open").click()
    dialog = viewer.page.locator("dialog#detail[open]")
    dialog.locator(".detail-image.is-loaded").wait_for()
    button = dialog.get_by_role("button", name=re.compile("Chercher une partie de cette image"))
    assert button.get_attribute("aria-expanded") == "false"
    button.click()
    layer = dialog.locator(".region-picker")
    layer.wait_for()
    assert button.get_attribute("aria-expanded") == "true"
    return layer, item_id


# ---- a picture of the user's ------------------------------------------------------------


def test_a_chosen_picture_shows_the_images_like_it(viewer: Page, base_url: str, tmp_path) -> None:
    picture = red_circle(tmp_path)
    viewer.open("?q=blue+square")
    viewer.wait_for_cards()
    choose_picture(viewer, picture)

    viewer.page.wait_for_url(re.compile(r"\?picture="))
    viewer.page.wait_for_function(
        "document.querySelector('#results-heading').textContent.includes('votre image')"
    )
    viewer.wait_for_cards()
    expected = post_picture(base_url, picture, "image/png")
    assert viewer.card_labels() == [hit["label"] for hit in expected["results"]]
    assert re.search(r"red circle|cercle rouge", viewer.card_labels()[0])
    assert viewer.card_scores() == pytest.approx([hit["score"] for hit in expected["results"]])
    assert "Images semblables à votre image" in viewer.page.inner_text("#results-heading")
    status = viewer.page.inner_text("#status")
    assert re.search(r"24 images, les plus proches d’abord \([\d\s]+ ms\)", status), status
    assert viewer.page.input_value("#q") == ""

    # The picture itself, small, above the results, with its name and size.
    reference = viewer.page.locator("#reference:not([hidden])")
    assert reference.locator(".reference-title").inner_text() == "cercle.png"
    assert "384 × 384 px" in reference.inner_text()
    img = reference.locator("img")
    assert img.get_attribute("src").startswith("blob:")
    viewer.page.wait_for_function(
        "() => { const img = document.querySelector('#reference img');"
        " return img.complete && img.naturalWidth === 384; }"
    )

    # More results: the same picture sent again for a larger k.
    viewer.page.click("#more")
    viewer.page.wait_for_url(re.compile(r"k=48"))
    viewer.page.wait_for_function("document.querySelectorAll('#grid .card').length > 24")
    expected = post_picture(base_url, picture, "image/png", k=48)
    assert viewer.card_labels() == [hit["label"] for hit in expected["results"]]
    assert len(picture_posts(viewer)) == 2

    # A panel opened over them, then closed by the back button: the same results, not
    # sent again.
    shown = card_ids(viewer)
    viewer.page.locator("#grid .card .card-open").nth(2).click()
    viewer.page.locator("dialog#detail[open] .facts").first.wait_for()
    assert set(query_of(viewer.page.url)) == {"picture", "k", "item"}
    viewer.page.go_back()
    viewer.page.wait_for_url(re.compile(r"\?picture=[^&]+&k=48$"))
    assert viewer.page.locator("dialog#detail[open]").count() == 0
    assert card_ids(viewer) == shown
    assert len(picture_posts(viewer)) == 2

    # Back again: the text search it came from.
    viewer.page.go_back()
    viewer.page.wait_for_url(re.compile(r"\?q=blue\+square$"))
    viewer.wait_for_cards()
    assert viewer.page.locator("#reference").is_hidden()
    assert "blue square" in viewer.page.inner_text("#results-heading")


def test_a_dropped_picture_searches_too(viewer: Page, base_url: str, tmp_path) -> None:
    picture = red_circle(tmp_path, "dessin.jpg", "JPEG")
    viewer.open()
    assert viewer.page.locator("#drop-hint").is_hidden()
    data = viewer.page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dessin.jpg", {type: "image/jpeg"}));
            return transfer;
        }""",
        base64.b64encode(picture.read_bytes()).decode(),
    )
    main = viewer.page.locator("#main")
    main.dispatch_event("dragenter", {"dataTransfer": data})
    assert viewer.page.locator("#drop-hint").is_visible()
    main.dispatch_event("dragover", {"dataTransfer": data})
    main.dispatch_event("drop", {"dataTransfer": data})
    assert viewer.page.locator("#drop-hint").is_hidden()

    viewer.page.wait_for_url(re.compile(r"\?picture="))
    viewer.wait_for_cards()
    expected = post_picture(base_url, picture, "image/jpeg")
    assert viewer.card_labels() == [hit["label"] for hit in expected["results"]]
    assert viewer.page.inner_text("#reference .reference-title") == "dessin.jpg"


def test_a_reloaded_picture_url_asks_for_the_picture_again(viewer: Page, tmp_path) -> None:
    picture = red_circle(tmp_path)
    viewer.open()
    choose_picture(viewer, picture)
    viewer.page.wait_for_url(re.compile(r"\?picture="))
    viewer.wait_for_cards()

    viewer.page.reload()
    notice = viewer.page.locator("#notice .notice-picture")
    notice.wait_for()
    assert "choisissez-la de nouveau" in notice.inner_text()
    assert "choose it again" in notice.inner_text()
    assert viewer.page.locator("#grid .card").count() == 0
    assert "votre image" in viewer.page.inner_text("#results-heading")

    # Its button chooses it again.
    choose_picture(viewer, picture, opener="#notice .notice-picture button")
    viewer.wait_for_cards()
    assert viewer.page.locator("#notice .notice-picture").count() == 0
    assert viewer.page.inner_text("#reference .reference-title") == "cercle.png"


def test_a_file_that_is_not_an_image_is_named_so(viewer: Page, base_url: str, tmp_path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("Inventaire Royère, carton 12 : pas une image.\n")
    viewer.open("?q=red+circle")
    viewer.wait_for_cards()
    shown = viewer.card_labels()
    viewer.page.set_input_files("#picture-input", str(fake))

    alert = viewer.page.locator("#notice [role=alert]")
    alert.wait_for()
    assert (
        alert.locator(".notice-message")
        .inner_text()
        .startswith("Ce fichier n’est pas une image lisible")
    )
    assert "not_an_image" in alert.locator(".notice-code").inner_text()
    # What was on screen stays, marked as the previous view's; "more" would fail again.
    assert viewer.card_labels() == shown
    assert "vue précédente" in alert.inner_text()
    assert viewer.page.locator("#more").is_hidden()


def test_a_picture_over_the_services_limit_says_the_limit(browser, shapes_store, tmp_path) -> None:
    picture = red_circle(tmp_path, "grand.jpg", "JPEG")
    assert picture.stat().st_size > 4096
    service = start_service(shapes_store, env={"REGARD_MAX_UPLOAD_BYTES": "4096"})
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        viewer = Page(context.new_page(), service.url + "/")
        viewer.open()
        choose_picture(viewer, picture)
        alert = viewer.page.locator("#notice [role=alert]")
        alert.wait_for()
        message = alert.locator(".notice-message").inner_text()
        assert message.startswith("Cette image est trop lourde : le service en prend jusqu’à 4 Ko.")
        assert "413 · upload_too_large" in alert.inner_text()
        assert viewer.page.locator("#grid .card").count() == 0
        context.close()
        assert viewer.errors == []
    finally:
        stop_service(service)


# ---- a part of an item's picture --------------------------------------------------------


def test_a_part_dragged_on_the_detail_picture_finds_the_images_like_it(
    viewer: Page, base_url: str
) -> None:
    layer, item_id = open_part_picker(viewer, "yellow star")
    before = viewer.page.url
    drag(viewer, box_of(layer), (0.2, 0.3), (0.7, 0.9))

    viewer.page.wait_for_url(re.compile(r"&region=pct:"))
    assert query_of(viewer.page.url)["similar"] == [item_id]
    assert region_of(viewer.page.url) == pytest.approx([20, 30, 50, 60], abs=0.5)
    assert viewer.page.locator("dialog#detail[open]").count() == 0
    viewer.page.wait_for_selector("#reference:not([hidden]) .region-outline")
    viewer.wait_for_cards()

    (region,) = query_of(viewer.page.url)["region"]
    _, expected = get_json(
        base_url, f"api/items/{urllib.parse.quote(item_id, safe='')}/similar", k=24, region=region
    )
    assert viewer.card_labels() == [hit["label"] for hit in expected["results"]]
    assert item_id not in card_ids(viewer)
    assert "une partie de" in viewer.page.inner_text("#results-heading")
    kicker = viewer.page.locator("#reference .reference-kicker").text_content()
    assert kicker.startswith("Partie de l’image de référence")

    # The outline is where the part is on the reference thumbnail.
    picture = box_of(viewer.page.locator("#reference .crop"))
    outline = box_of(viewer.page.locator("#reference .region-outline"))
    assert (outline["x"] - picture["x"]) / picture["width"] == pytest.approx(0.2, abs=0.02)
    assert (outline["y"] - picture["y"]) / picture["height"] == pytest.approx(0.3, abs=0.02)
    assert outline["width"] / picture["width"] == pytest.approx(0.5, abs=0.02)
    assert outline["height"] / picture["height"] == pytest.approx(0.6, abs=0.02)

    # Back: the panel over the search, as it was.
    viewer.page.go_back()
    viewer.page.wait_for_url(before)
    viewer.page.locator("dialog#detail[open] .facts").first.wait_for()
    viewer.wait_for_cards()
    assert "yellow star" in viewer.page.inner_text("#results-heading")
    assert viewer.page.locator("#reference").is_hidden()


def test_a_part_given_in_pixels_is_outlined_where_the_service_read_it(
    viewer: Page, base_url: str
) -> None:
    _, found = get_json(base_url, "api/search", q="blue star", k=1)
    item = found["results"][0]
    assert (item["width"], item["height"]) == (1024, 1024)
    viewer.open("?" + urllib.parse.urlencode({"similar": item["id"], "region": "512,0,512,256"}))
    viewer.page.wait_for_selector("#reference:not([hidden]) .region-outline")
    viewer.wait_for_cards()
    picture = box_of(viewer.page.locator("#reference .crop"))
    outline = box_of(viewer.page.locator("#reference .region-outline"))
    assert (outline["x"] - picture["x"]) / picture["width"] == pytest.approx(0.5, abs=0.02)
    assert outline["y"] == pytest.approx(picture["y"], abs=2)
    assert outline["width"] / picture["width"] == pytest.approx(0.5, abs=0.02)
    assert outline["height"] / picture["height"] == pytest.approx(0.25, abs=0.02)


def test_a_part_outside_the_picture_is_refused_in_words(viewer: Page, base_url: str) -> None:
    _, found = get_json(base_url, "api/search", q="green circle", k=1)
    item_id = found["results"][0]["id"]
    viewer.open("?" + urllib.parse.urlencode({"similar": item_id, "region": "pct:120,0,10,10"}))
    alert = viewer.page.locator("#notice [role=alert]")
    alert.wait_for()
    assert alert.locator(".notice-message").inner_text().startswith("La partie choisie")
    assert "400 · bad_region" in alert.inner_text()
    assert viewer.page.locator("#grid .card").count() == 0


def test_a_click_is_no_part_and_escape_closes_the_picker_not_the_panel(viewer: Page) -> None:
    layer, _ = open_part_picker(viewer, "green triangle")
    url = viewer.page.url
    box = box_of(layer)
    drag(viewer, box, (0.5, 0.5), (0.5 + 4 / box["width"], 0.5))  # 4 pixels: a click
    readout = viewer.page.locator(".region-readout")
    assert "trop petite" in readout.inner_text()
    assert viewer.page.url == url

    viewer.page.keyboard.press("Escape")
    layer.wait_for(state="detached")
    assert viewer.page.locator("dialog#detail[open]").count() == 1
    assert viewer.page.url == url
    focused = viewer.page.evaluate("document.activeElement.classList.contains('part-search')")
    assert focused
    viewer.page.keyboard.press("Escape")
    viewer.page.wait_for_url(re.compile(r"\?q=green\+triangle$"))


def test_the_part_can_be_chosen_with_the_keyboard(viewer: Page) -> None:
    layer, item_id = open_part_picker(viewer, "blue circle")
    # The picker has the focus, with a part proposed: the middle half.
    assert viewer.page.evaluate("document.activeElement.classList.contains('region-picker')")
    for key in ["ArrowRight", "ArrowRight", "ArrowUp", "Shift+ArrowLeft", "Enter"]:
        viewer.page.keyboard.press(key)
    viewer.page.wait_for_url(re.compile(r"&region=pct:"))
    assert query_of(viewer.page.url)["similar"] == [item_id]
    assert region_of(viewer.page.url) == [29, 23, 48, 50]
    viewer.wait_for_cards()


def test_a_picture_that_cannot_be_shown_offers_no_part_to_choose(viewer: Page) -> None:
    viewer.fail_images()
    viewer.open("?q=red+square")
    viewer.wait_for_cards()
    viewer.page.locator("#grid .card .card-open").first.click()
    dialog = viewer.page.locator("dialog#detail[open]")
    dialog.locator(".detail-image.is-missing").wait_for()
    assert dialog.locator(".similar-link").is_visible()
    assert dialog.locator(".part-search").is_hidden()


def test_a_part_of_a_region_is_in_percentages_of_the_region(browser, sheet_service) -> None:
    # The wide drawing of the sheet, on a level 0 service: the panel shows the whole sheet
    # cut to the drawing's part, and the percentages are of that part.
    base_url, _ = sheet_service
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    viewer = Page(context.new_page(), base_url)
    _, found = get_json(base_url, "api/search", q="dessin", k=24)
    wide = next(hit for hit in found["results"] if hit["crop"] and hit["width"] > 2 * hit["height"])
    viewer.open("?q=dessin&item=" + urllib.parse.quote(wide["id"], safe=""))
    dialog = viewer.page.locator("dialog#detail[open]")
    dialog.locator(".detail-image.is-loaded").wait_for()
    dialog.locator(".part-search").click()
    layer = dialog.locator(".region-picker")
    box = box_of(layer)
    frame = box_of(dialog.locator(".detail-image"))
    assert box["width"] / box["height"] == pytest.approx(wide["width"] / wide["height"], rel=0.03)
    assert box["height"] < frame["height"] * 0.6  # the part, not the whole sheet's frame

    # From a pixel inside its bottom-right corner to beyond its top-left one: all of the
    # part, no more.
    mouse = viewer.page.mouse
    mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] - 1)
    mouse.down()
    mouse.move(box["x"] - 40, box["y"] - 40, steps=8)
    mouse.up()
    viewer.page.wait_for_url(re.compile(r"&region=pct:"))
    assert region_of(viewer.page.url) == pytest.approx([0, 0, 100, 100], abs=0.5)
    viewer.page.wait_for_selector("#reference:not([hidden]) .region-outline")
    context.close()
    assert viewer.errors == []
