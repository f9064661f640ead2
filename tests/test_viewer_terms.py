"""The viewer's draft subject terms, in Debian's Chromium against `regard serve`: an
item's panel shows the terms the model suggests from the store's thesaurus, marked as
the machine's, and a reviewer accepts, rejects or withdraws them with their token.

The store is a copy of the shapes store with the shapes thesaurus and one reviewer, as
tests/test_terms.py builds it; the browser and the `Page` helper are tests/test_viewer.py's.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from indexer.store import Store
from service.cli import main as regard
from tests import test_viewer
from tests.regard_fixtures import start_service, stop_service
from tests.test_terms import EX, THESAURUS, VOCABULARY, items_by_label
from tests.test_viewer import Page, get_json

pytestmark = test_viewer.pytestmark

# test_viewer.py's fixtures: a browser for this module; the session's live service, whose
# store has no vocabulary.
browser = test_viewer.browser
base_url = test_viewer.base_url

REVIEWER = "Marie Dupont"
TOKEN_KEY = "regard.reviewerToken"


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def terms_store(tmp_path_factory, shapes_store: Path) -> Path:
    store = tmp_path_factory.mktemp("viewer-terms") / "store"
    shutil.copytree(shapes_store, store)
    assert regard(["vocab", "add", str(THESAURUS), "--store", str(store)]) == 0
    return store


@pytest.fixture(scope="module")
def token(terms_store: Path) -> str:
    from indexer.reviewers import add_reviewer

    return add_reviewer(Store.open(terms_store), REVIEWER)


@pytest.fixture(scope="module")
def terms_url(terms_store: Path, token: str) -> Iterator[str]:
    service = start_service(terms_store)
    yield service.url + "/"
    stop_service(service)


@pytest.fixture(scope="module")
def item_ids(terms_store: Path) -> dict[str, str]:
    return items_by_label(terms_store)


def new_viewer(browser, url: str) -> tuple[Any, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    return context, Page(context.new_page(), url)


@pytest.fixture
def viewer(browser, terms_url: str) -> Iterator[Page]:
    """A fresh browser profile (no token stored) on the terms store's service."""
    context, page = new_viewer(browser, terms_url)
    yield page
    context.close()
    assert page.errors == [], f"JavaScript errors in the page: {page.errors}"


# ---- helpers ----------------------------------------------------------------------------


def terms_of(url: str, item_id: str) -> list[dict[str, Any]]:
    """The API's terms of the item (the viewer's k), in its order."""
    status, body = get_json(url, f"api/items/{urllib.parse.quote(item_id)}/terms", k=8)
    assert status == 200, body
    (group,) = body["vocabularies"]
    return group["terms"]


def decision_on(url: str, item_id: str, concept: str) -> dict[str, Any] | None:
    (term,) = [t for t in terms_of(url, item_id) if t["concept"]["id"] == EX + concept]
    return term["decision"]


def terms_requests(viewer: Page) -> list[str]:
    return [url for url in viewer.requests if re.search(r"/api/items/[^/]+/terms", url)]


def open_item(viewer: Page, item_id: str) -> Any:
    """Open the item's panel by its URL; returns the terms section once its terms are in."""
    viewer.open("?" + urllib.parse.urlencode({"item": item_id}))
    section = viewer.page.locator("dialog#detail[open] section.terms")
    section.locator(".terms-body[aria-busy=false]").wait_for()
    return section


def term_row(section, concept: str) -> Any:
    return section.locator(f'li.term[data-concept="{EX}{concept}"]')


def open_with_token(viewer: Page, item_id: str, token: str) -> Any:
    """`open_item`, in a browser that already keeps `token` as the reviewer's."""
    viewer.open()
    viewer.page.evaluate("([key, value]) => localStorage.setItem(key, value)", [TOKEN_KEY, token])
    return open_item(viewer, item_id)


def stored_token(viewer: Page) -> str | None:
    return viewer.page.evaluate("key => localStorage.getItem(key)", TOKEN_KEY)


def focused_name(viewer: Page) -> str:
    return viewer.page.evaluate("document.activeElement.textContent.trim()")


def spaced(text: str) -> str:
    """French typography's narrow spaces ("67 %") as plain ones."""
    return re.sub(r"[\u00a0\u202f]", " ", text)


# ---- tests ------------------------------------------------------------------------------


def test_an_items_panel_shows_its_terms_as_the_machines_suggestions(
    viewer: Page, terms_url: str, item_ids: dict[str, str]
) -> None:
    item_id = item_ids["red circle 0"]
    expected = terms_of(terms_url, item_id)
    viewer.open("?q=cercle+rouge")
    viewer.wait_for_cards()
    # Nothing asked of the terms before a panel opens.
    assert not terms_requests(viewer)
    viewer.page.locator(f'#grid .card[data-id="{item_id}"] .card-open').click()
    section = viewer.page.locator("dialog#detail[open] section.terms")
    section.locator(".terms-body[aria-busy=false]").wait_for()
    (asked,) = terms_requests(viewer)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(asked).query) == {"k": ["8"]}

    assert "Termes proposés" in section.locator("h3").text_content()
    assert "Suggestions automatiques — à vérifier" in section.inner_text()
    assert "Formes et couleurs" in section.locator(".terms-vocabulary-title").inner_text()
    rows = section.locator("li.term")
    # The API's order, French labels, each marked as the machine's with its score.
    labels = rows.locator(".term-label").all_inner_texts()
    assert labels == [t["concept"]["labels"]["fr"] for t in expected]
    assert [label for label in labels if label in ("cercle", "carré", "triangle", "étoile")][0] == (
        "cercle"
    )
    assert rows.locator(".machine-badge").all_text_contents() == ["machine"] * len(expected)
    scores = rows.locator("data.term-score")
    values = scores.evaluate_all("nodes => nodes.map(n => Number(n.value))")
    assert values == pytest.approx([t["suggestion"]["score"] for t in expected])
    top = expected[0]["suggestion"]["score"]
    assert spaced(scores.first.inner_text()) == f"{round(top * 100)} %"
    assert "softmax" in scores.first.get_attribute("title")
    assert "100 %" in spaced(section.locator(".terms-scoring").inner_text())
    circle = term_row(section, "circle")
    assert circle.locator(".term-broader [lang]").all_inner_texts() == ["forme"]
    assert "regard-test|" in circle.locator(".machine-badge").get_attribute("title")
    # Real buttons that name their term; nothing decided yet, so nothing to cancel.
    assert circle.get_by_role("button", name="Accepter « cercle »").is_visible()
    assert circle.get_by_role("button", name="Rejeter « cercle »").is_visible()
    assert section.get_by_role("button", name=re.compile("Annuler la décision")).count() == 0
    exports = section.locator(".terms-footer")
    assert exports.locator("a.export-annotations").get_attribute("href") == (
        terms_url + "api/export/annotations"
    )
    assert (
        exports.locator("a.export-csv").get_attribute("href") == terms_url + "api/export/terms.csv"
    )
    # The rest of the panel is still there.
    assert viewer.page.locator("dialog#detail a.iiif-manifest").count() == 1


def test_accepting_without_a_token_asks_for_it_then_records_the_reviewer(
    viewer: Page, terms_url: str, item_ids: dict[str, str], token: str, terms_store: Path
) -> None:
    item_id = item_ids["red circle 1"]
    section = open_item(viewer, item_id)
    circle = term_row(section, "circle")
    accept = circle.get_by_role("button", name="Accepter « cercle »")
    accept.click()
    form = circle.locator("form.token-form")
    form.wait_for()
    assert "Jeton de relecteur" in form.inner_text()
    assert "regard reviewer add NOM --store DOSSIER" in form.inner_text()
    field = form.get_by_role("textbox", name=re.compile("^Jeton de relecteur"))
    assert field.get_attribute("type") == "password"
    assert viewer.page.evaluate("document.activeElement.id") == "reviewer-token"
    # Escape closes the form, not the panel; the focus goes back to the button.
    viewer.page.keyboard.press("Escape")
    form.wait_for(state="detached")
    assert viewer.page.locator("dialog#detail[open]").count() == 1
    assert focused_name(viewer) == "Accepter « cercle »"
    assert decision_on(terms_url, item_id, "circle") is None

    viewer.page.keyboard.press("Enter")
    field = circle.get_by_role("textbox", name=re.compile("^Jeton de relecteur"))
    field.fill(token)
    circle.get_by_role("button", name=re.compile("Enregistrer")).click()
    circle.locator(".term-state").wait_for()
    assert circle.locator(".term-state").inner_text() == f"✓ accepté par {REVIEWER}"
    assert "is-accepted" in circle.get_attribute("class")
    assert stored_token(viewer) == token
    assert focused_name(viewer) == "Accepter « cercle »"
    viewer.page.wait_for_function(
        "document.querySelector('.terms-live').textContent.includes('accepté par')"
    )
    assert section.locator(".terms-live").inner_text() == f"« cercle » accepté par {REVIEWER}."
    made = decision_on(terms_url, item_id, "circle")
    assert made is not None and (made["decision"], made["by"]) == ("accepted", REVIEWER)

    # The export link gives the accepted term as a W3C annotation on this item's canvas.
    href = section.locator("a.export-annotations").get_attribute("href")
    assert href.startswith(terms_url)
    status, page = get_json(terms_url, href.removeprefix(terms_url))
    assert status == 200 and page["type"] == "AnnotationPage"
    canvas = Store.open(terms_store).get_item(item_id).canvas_id
    mine = [a for a in page["items"] if a["target"]["source"]["id"] == canvas]
    assert [a["body"][0]["source"]["id"] for a in mine] == [EX + "circle"]
    assert mine[0]["creator"] == {"type": "Person", "name": REVIEWER}

    # The panel says whose token it keeps (asked of /api/reviewer).
    owner = section.locator(".terms-token .token-owner")
    viewer.page.wait_for_function(
        "el => el.textContent.includes('Jeton de « ')", arg=owner.element_handle()
    )
    assert f"Jeton de « {REVIEWER} »" in owner.inner_text()

    # The token can be forgotten: the next decision asks for it again.
    section.get_by_role("button", name=re.compile("Oublier le jeton")).click()
    assert stored_token(viewer) is None
    assert "Aucun jeton de relecteur" in section.locator(".terms-token").inner_text()
    term_row(section, "red").get_by_role("button", name="Rejeter « rouge »").click()
    term_row(section, "red").locator("form.token-form").wait_for()


def test_rejecting_then_cancelling_from_the_keyboard(
    viewer: Page, terms_url: str, item_ids: dict[str, str], token: str
) -> None:
    item_id = item_ids["red circle 2"]
    section = open_with_token(viewer, item_id, token)
    red = term_row(section, "red")
    red.get_by_role("button", name="Rejeter « rouge »").focus()
    viewer.page.keyboard.press("Enter")
    red.locator(".term-state").wait_for()
    assert red.locator(".term-state").inner_text() == f"✗ rejeté par {REVIEWER}"
    assert "is-rejected" in red.get_attribute("class")
    # De-emphasised, and its button shown pressed (it does nothing more).
    assert float(red.locator(".term-about").evaluate("e => getComputedStyle(e).opacity")) < 1
    assert red.get_by_role("button", name="Rejeter « rouge »").get_attribute("aria-disabled") == (
        "true"
    )
    made = decision_on(terms_url, item_id, "red")
    assert made is not None and (made["decision"], made["by"]) == ("rejected", REVIEWER)

    cancel = red.get_by_role("button", name="Annuler la décision « rouge »")
    cancel.focus()
    viewer.page.keyboard.press("Enter")
    red.locator(".term-state").wait_for(state="detached")
    assert "is-rejected" not in red.get_attribute("class")
    assert cancel.is_hidden()
    assert focused_name(viewer) == "Accepter « rouge »"
    assert decision_on(terms_url, item_id, "red") is None
    viewer.page.wait_for_function(
        "document.querySelector('.terms-live').textContent.includes('annulée')"
    )


def test_a_wrong_token_is_refused_in_french_and_asked_for_again(
    viewer: Page, terms_url: str, item_ids: dict[str, str], token: str
) -> None:
    item_id = item_ids["red circle 3"]
    section = open_with_token(viewer, item_id, "not-a-reviewers-token")
    # Said before any decision: the token kept is nobody's.
    owner = section.locator(".terms-token .token-owner")
    viewer.page.wait_for_function(
        "el => el.textContent.includes('aucun relecteur')", arg=owner.element_handle()
    )
    circle = term_row(section, "circle")
    circle.get_by_role("button", name="Accepter « cercle »").click()
    form = circle.locator("form.token-form")
    form.wait_for()
    notice = form.locator(".notice-error")
    assert "Ce jeton n’est celui d’aucun relecteur" in notice.inner_text()
    assert notice.locator(".notice-code").inner_text() == "401 · unknown_token"
    assert "no reviewer" in notice.locator(".notice-detail").inner_text()  # the API's own words
    assert stored_token(viewer) is None
    assert decision_on(terms_url, item_id, "circle") is None

    form.get_by_role("textbox", name=re.compile("^Jeton de relecteur")).fill(token)
    form.get_by_role("textbox", name=re.compile("^Jeton de relecteur")).press("Enter")
    circle.locator(".term-state").wait_for()
    assert circle.locator(".term-state").inner_text() == f"✓ accepté par {REVIEWER}"
    assert form.count() == 0
    assert stored_token(viewer) == token


def test_a_store_without_a_vocabulary_says_how_to_add_one(browser, base_url: str) -> None:
    context, viewer = new_viewer(browser, base_url)
    status, found = get_json(base_url, "api/search", q="red circle", k=1)
    assert status == 200
    section = open_item(viewer, found["results"][0]["id"])
    hint = section.locator(".terms-hint").inner_text()
    assert hint.startswith("Aucun vocabulaire : un administrateur en ajoute avec regard vocab add")
    assert section.locator("li.term").count() == 0
    assert section.locator(".notice-error").count() == 0
    assert section.locator(".terms-token").is_hidden()  # no term to decide on
    context.close()
    assert viewer.errors == []


def test_the_csv_export_lists_every_decision(
    viewer: Page, terms_url: str, item_ids: dict[str, str], token: str
) -> None:
    item_id = item_ids["blue square 0"]
    section = open_with_token(viewer, item_id, token)
    term_row(section, "blue").get_by_role("button", name="Rejeter « bleu »").click()
    term_row(section, "blue").locator(".term-state").wait_for()
    href = section.locator("a.export-csv").get_attribute("href")
    # The rejection too, with the reviewer's name: what retraining needs.
    text = viewer.page.evaluate("href => fetch(href).then(r => r.text())", href)
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["item_id"] == item_id]
    assert [(r["concept_id"], r["decision"], r["decided_by"]) for r in rows] == [
        (EX + "blue", "rejected", REVIEWER)
    ]
    assert rows[0]["vocabulary"] == VOCABULARY


def test_a_term_accepted_on_a_twin_comes_first_and_says_why(
    viewer: Page, terms_url: str, item_ids: dict[str, str], token: str
) -> None:
    """Decisions on the most similar images put a term forward (term_precedents.py)."""
    twin, item_id = item_ids["twin of red circle 1"], item_ids["red circle 1"]
    star = {"vocabulary": VOCABULARY, "concept": EX + "star"}
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{terms_url}api/items/{urllib.parse.quote(twin)}/terms"
    accepted = httpx.put(url, json={**star, "decision": "accepted"}, headers=headers)
    assert accepted.status_code == 200, accepted.text
    try:
        precedent = terms_of(terms_url, item_id)[0]["precedent"]
        section = open_item(viewer, item_id)
        first = section.locator("li.term").first
        assert first.get_attribute("data-concept") == EX + "star"
        line = first.locator(".term-precedent")
        assert line.inner_text() == (
            f"accepté pour 1 des {precedent['looked_at']} images les plus semblables"
        )
        assert "is-backed" in line.get_attribute("class")
    finally:
        httpx.put(url, json={**star, "decision": "undecided"}, headers=headers)


def test_a_search_says_which_labels_the_thesaurus_added(viewer: Page, terms_url: str) -> None:
    """ "rond" is an alternative label of "cercle" in the store's thesaurus: the records
    found say so, with the other labels looked for."""
    status, body = get_json(terms_url, "api/search", q="rond")
    assert status == 200 and body["records"]["total"] > 0
    viewer.open("?q=rond")
    note = viewer.page.locator("#records .records-note")
    note.wait_for()
    labels = body["records"]["also"]["rond"]
    assert "d’après le thésaurus, « rond » : aussi " in note.inner_text()
    assert all(f"« {label} »" in note.inner_text() for label in labels)
