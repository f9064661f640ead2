"""The viewer's combined searches, in Debian's Chromium against `regard serve`: the items
whose catalogue record holds the words show above the images the model finds ("Dans les
notices", then "Par l'image"), a hit whose record holds them too says so, an image's
panel refines its neighbours with words (?like=ID&q=…), a card's "Moins comme ceci" adds
the image to ?unlike=, and the chips under the search box take an image out again.

The store is the session's shapes store (labels "red circle 1", metadata "shape: circle");
the browser, the service and the `Page` helper are tests/test_viewer.py's.
"""

from __future__ import annotations

import csv
import re

from tests import test_viewer
from tests.test_viewer import Page, get_json, query_of

pytestmark = test_viewer.pytestmark

# test_viewer.py's fixtures: a browser for this module, the session's live service.
browser = test_viewer.browser
base_url = test_viewer.base_url
viewer = test_viewer.viewer

RECORDS_ROW = 8  # viewer/records.js: the record cards shown before "Tout voir"


def ids_in(viewer: Page, selector: str) -> list[str]:
    return viewer.page.locator(selector).evaluate_all("cards => cards.map(card => card.dataset.id)")


def visible_ids(viewer: Page, selector: str) -> list[str]:
    return viewer.page.locator(selector).evaluate_all(
        "cards => cards.filter(card => card.checkVisibility()).map(card => card.dataset.id)"
    )


def search_api(base_url: str, **params) -> dict:
    status, answer = get_json(base_url, "api/search", k=24, **params)
    assert status == 200, answer
    return answer


def test_record_matches_show_above_the_pictures_with_their_count_and_badges(
    viewer: Page, base_url: str
) -> None:
    expected = search_api(base_url, q="circle")
    records = expected["records"]
    # 16 circles and a twin: more than a row, fewer than k.
    assert RECORDS_ROW < records["total"] == len(records["results"]) < 24

    viewer.open("?q=circle")
    viewer.wait_for_cards()
    section = viewer.page.locator("#records")
    assert section.is_visible()
    heading = viewer.page.inner_text("#records-heading")
    assert f"Dans les notices : {records['total']} images" in heading
    assert "« circle »" in section.locator(".records-note").inner_text()
    # The catalogue's cards, in the API's order; a row of them until "Tout voir".
    record_ids = [item["id"] for item in records["results"]]
    assert ids_in(viewer, "#records .record-card") == record_ids
    assert visible_ids(viewer, "#records .record-card") == record_ids[:RECORDS_ROW]
    toggle = section.locator(".records-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert visible_ids(viewer, "#records .record-card") == record_ids
    # Record cards carry no score: nothing measured them.
    assert section.locator(".card-score").count() == 0

    # The model's results follow under their own heading, with their scores; those whose
    # record holds the word too are marked, and only those.
    assert viewer.page.locator("#visual-heading").is_visible()
    assert "Par l’image" in viewer.page.inner_text("#visual-heading")
    assert ids_in(viewer, "#grid .card") == [hit["id"] for hit in expected["results"]]
    marked = {hit["id"] for hit in expected["results"] if hit["in_record"]}
    assert 0 < len(marked) < len(expected["results"])
    assert set(ids_in(viewer, "#grid .card:has(.in-record)")) == marked
    assert "aussi dans la notice" in viewer.page.locator("#grid .in-record").first.inner_text()
    assert f"{records['total']} images dans les notices" in viewer.page.inner_text("#status")

    # Words no record holds: one discreet line, and no heading over the pictures.
    viewer.search("zigzag")
    viewer.page.wait_for_selector("#records .records-none")
    assert search_api(base_url, q="zigzag")["records"]["total"] == 0
    assert "Aucune notice" in viewer.page.inner_text("#records")
    assert viewer.page.locator("#records .record-card").count() == 0
    assert viewer.page.locator("#visual-heading").is_hidden()


def test_more_like_this_with_words_from_the_panel(viewer: Page, base_url: str) -> None:
    card, item_id, label = viewer.first_card("?q=red+circle")
    card.locator(".card-open").click()
    viewer.page.wait_for_selector("#detail[open] .refine")

    viewer.page.fill("#refine-q", "blue")
    viewer.page.press("#refine-q", "Enter")
    viewer.page.wait_for_url(re.compile(r"like="))
    assert query_of(viewer.page.url) == {"q": ["blue"], "like": [item_id]}
    viewer.page.wait_for_selector("#detail", state="hidden")
    viewer.page.wait_for_function(
        "document.querySelector('#results-heading').textContent.includes('blue')"
    )
    viewer.wait_for_cards()

    expected = search_api(base_url, q="blue", like=item_id)
    shown = ids_in(viewer, "#grid .card")
    assert shown == [hit["id"] for hit in expected["results"]]
    assert item_id not in shown
    # The example is a chip under the search box, the words stay in the box.
    assert viewer.page.input_value("#q") == "blue"
    chip = viewer.page.locator("#query-chips .chips-like .chip")
    assert chip.count() == 1
    assert chip.get_attribute("data-id") == item_id
    assert chip.locator(".chip-label").inner_text() == label

    # Without words, the example alone is a search ("more like these").
    viewer.page.fill("#q", "")
    viewer.page.press("#q", "Enter")
    viewer.page.wait_for_url(re.compile(r"\?like=[^&]+$"))
    viewer.page.wait_for_function(
        "document.querySelector('#results-heading').textContent.includes('Images comme')"
    )
    viewer.wait_for_cards()
    alone = search_api(base_url, like=item_id)
    assert ids_in(viewer, "#grid .card") == [hit["id"] for hit in alone["results"]]
    assert viewer.page.locator("#records").is_hidden()


def test_less_like_this_adds_a_chip_whose_removal_searches_again(
    viewer: Page, base_url: str
) -> None:
    viewer.open("?q=red+circle")
    viewer.wait_for_cards()
    plain = [hit["id"] for hit in search_api(base_url, q="red circle")["results"]]
    assert ids_in(viewer, "#grid .card") == plain
    card = viewer.page.locator("#grid .card").nth(1)
    unliked = card.get_attribute("data-id")

    card.locator(".unlike-link").click()
    viewer.page.wait_for_url(re.compile(r"unlike="))
    assert query_of(viewer.page.url) == {"q": ["red circle"], "unlike": [unliked]}
    viewer.page.wait_for_selector(f"#query-chips .chips-unlike .chip[data-id='{unliked}']")
    viewer.page.wait_for_function(
        f"!document.querySelector(\"#grid .card[data-id='{unliked}']\")"
        " && document.querySelector('#grid').ariaBusy === 'false'"
    )
    expected = search_api(base_url, q="red circle", unlike=unliked)
    assert ids_in(viewer, "#grid .card") == [hit["id"] for hit in expected["results"]]
    assert ids_in(viewer, "#grid .card") != plain

    # × on the chip takes it out: the plain search again, and the back button returns.
    viewer.page.locator(f"#query-chips .chip[data-id='{unliked}'] .chip-remove").click()
    viewer.page.wait_for_url(re.compile(r"\?q=red\+circle$"))
    viewer.page.wait_for_function(
        f"!!document.querySelector(\"#grid .card[data-id='{unliked}']\")"
        " && document.querySelector('#grid').ariaBusy === 'false'"
    )
    assert ids_in(viewer, "#grid .card") == plain
    assert viewer.page.locator("#query-chips").is_hidden()

    viewer.page.go_back()
    viewer.page.wait_for_url(re.compile(r"unlike="))
    viewer.page.wait_for_selector(f"#query-chips .chip[data-id='{unliked}']")


def test_an_example_the_collection_lacks_is_named_on_its_chip(viewer: Page, base_url: str) -> None:
    status, answer = get_json(base_url, "api/search", q="circle", like="no-such-item")
    assert status == 404 and answer["error"]["code"] == "unknown_item"

    viewer.open("?q=circle&like=no-such-item")
    viewer.page.wait_for_selector("#notice .notice-error")
    message = viewer.page.inner_text("#notice .notice-message")
    assert "Une image de cette recherche n’est plus dans la collection" in message
    chip = viewer.page.locator("#query-chips .chip[data-id='no-such-item']")
    viewer.page.wait_for_selector("#query-chips .chip.is-gone")
    assert "retirée de la collection" in chip.inner_text()

    chip.locator(".chip-remove").click()
    viewer.page.wait_for_url(re.compile(r"\?q=circle$"))
    viewer.wait_for_cards()
    assert viewer.page.locator("#notice .notice-error").count() == 0


def test_the_images_on_screen_export_as_csv_named_after_the_search(
    viewer: Page, base_url: str
) -> None:
    expected = search_api(base_url, q="circle")
    shown = list(
        dict.fromkeys(item["id"] for item in expected["records"]["results"] + expected["results"])
    )
    viewer.open("?q=circle")
    viewer.wait_for_cards()
    with viewer.page.expect_download() as download:
        viewer.page.locator("#exports").get_by_role("button", name=re.compile("^CSV")).click()
    assert download.value.suggested_filename == "regard-recherche-circle.csv"
    with open(download.value.path(), encoding="utf-8") as exported:
        assert [row["item_id"] for row in csv.DictReader(exported)] == shown
