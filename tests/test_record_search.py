"""Searching the catalogue records beside the pictures, and queries that combine words
with pictures to look like or unlike (USERS.md: "Combine image and text queries, and
blend in matches from existing metadata").

The records' words live in the store (FTS5), written with each manifest saved: tested on
the store itself, on a store made before the table was, and through `GET /api/search`
over the shapes store (indexed by `regard index`: its records come from the harvest),
whose canvases are labelled "cercle rouge 3", "red circle 3"…
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexer.record_synonyms import ThesaurusWords, label_bridges
from indexer.record_text import language_map_texts, match_expression, query_words
from indexer.search import QueryCancelsOut, combined_query
from indexer.store import Store
from indexer.store_records import find_records
from indexer.store_terms import StoredConcept, TermStore
from indexer.vocabulary import Concept, Vocabulary
from tests.test_store import embed, make_store, manifest


def labels_of(store_path: Path, language: str) -> dict[str, str]:
    """Every searchable item's canvas label in one language, by item id."""
    store = Store.open(store_path)
    try:
        rows = store.reader().execute("SELECT id FROM items WHERE state = 'indexed'")
        items = store.items_by_ids([item_id for (item_id,) in rows])
    finally:
        store.close()
    return {i: item.canvas_label.get(language, [""])[0] for i, item in items.items()}


# ---- the words of a record, and of a query --------------------------------------------


def test_a_query_keeps_its_subject_words_and_no_fts5_syntax():
    assert query_words("fauteuil en fer forgé") == ["fauteuil", "fer", "forgé"]
    assert query_words("The lamp - of Royère") == ["lamp", "Royère"]
    assert query_words("2009.12.3 d'inventaire") == ["2009.12.3", "inventaire"]
    assert query_words("lampe d’applique l'Atelier") == ["lampe", "applique", "Atelier"]
    # Quotes and operators typed by a person are searched as text.
    assert match_expression(['say "hi"', "NEAR(x"]) == '("say ""hi""") AND ("NEAR(x")'


def test_a_word_finds_its_plural_and_singular_but_not_longer_words():
    assert match_expression(["fauteuils"]) == '("fauteuils" OR "fauteuil")'
    assert match_expression(["lampes"]) == '("lampes" OR "lampe" OR "lamp")'
    assert match_expression(["table"]) == '("table" OR "tables" OR "tablex")'  # not tableau
    assert match_expression(["prix", "12"]) == '("prix") AND ("12")'


def test_record_values_lose_their_html_but_keep_their_words():
    lmap = {"fr": ['<a href="https://example.org/x">Jean&nbsp;Royère</a>'], "en": ["<b>Lamp</b>"]}
    assert language_map_texts(lmap) == ["Jean Royère", "Lamp"]


# ---- the store ------------------------------------------------------------------------


def test_a_saved_manifest_is_found_by_its_words_accents_and_case_aside(tmp_path):
    store = make_store(tmp_path, n_images=3)  # "Fauteuil", by "Jean Royère"
    embed(store)
    conn = store.reader()
    found = find_records(conn, "royere FAUTEUILS", k=10)
    assert (found.total, found.more, len(found.keys)) == (3, False, 3)
    # Metadata labels are not words of the record: "Maker" heads the value, says nothing.
    assert find_records(conn, "maker", k=10).total == 0
    assert find_records(conn, "fauteuil lampe", k=10).total == 0  # every word must be there


def test_a_manifest_saved_again_is_searched_as_it_is_now(tmp_path):
    store = make_store(tmp_path, n_images=3)
    embed(store)
    row, images = manifest(2)  # one image fewer: it is removed
    store.save_manifest(replace(row, label={"fr": ["Lampadaire"]}), images)
    conn = store.reader()
    assert find_records(conn, "fauteuil", k=10).total == 0
    found = find_records(conn, "lampadaire", k=10)
    assert found.total == 2  # the removed image is not searchable
    removed = {key for (key,) in conn.execute("SELECT key FROM items WHERE state = 'removed'")}
    assert len(removed) == 1 and not removed & set(found.keys)


def test_a_record_that_holds_the_query_word_for_word_comes_first(tmp_path):
    """ "RY 500", an inventory number typed with its space: the record numbered so comes
    before one that holds "RY" and "500" apart, even with "500" in its label."""
    store = make_store(tmp_path, n_images=0)
    row, images = manifest(2)
    numbered = [("Chaise, projet 500", "RY 12"), ("Chaise, projet 12", "RY 500")]
    images = [
        replace(
            image,
            canvas_label={"fr": [label]},
            canvas_metadata=[{"label": {"fr": ["Inventaire"]}, "value": {"none": [number]}}],
        )
        for image, (label, number) in zip(images, numbered, strict=True)
    ]
    store.save_manifest(row, images)
    embed(store)
    found = find_records(store.reader(), "RY 500", k=10)
    assert found.total == 2
    assert [store.items_by_key([key])[key].id for key in found.keys] == [
        images[1].id,
        images[0].id,
    ]


def test_a_store_made_before_records_were_searched_gets_them_when_opened(
    tmp_path, shapes_store: Path
):
    old = tmp_path / "old"
    shutil.copytree(shapes_store, old)
    with sqlite3.connect(old / "store.sqlite") as conn:
        conn.execute("DROP TRIGGER item_records_deleted")
        conn.execute("DROP TABLE item_records")
        conn.execute("PRAGMA user_version = 7")
    store = Store.open(old)
    try:
        found = find_records(store.reader(), "étoile jaune", k=100)
    finally:
        store.close()
    stars = {i for i, label in labels_of(old, "fr").items() if "étoile jaune" in label}
    assert stars and found.total == len(stars)


def test_the_thesaurus_bridges_the_words_of_a_query_and_of_the_records(tmp_path):
    """A record in French only is found by the English label of its concept, by its
    preferred label when it says the alternative one, and a retired concept bridges
    nothing."""
    store = make_store(tmp_path, n_images=0)
    row, images = manifest(1)
    store.save_manifest(replace(row, label={"fr": ["Lampe sur pied"]}, metadata=[]), images)
    embed(store)
    lamp = Concept(
        "https://example.org/lampadaire",
        {"fr": "lampadaire", "en": "floor lamp"},
        {"fr": ("lampe sur pied",)},
    )
    stool = Concept("https://example.org/tabouret", {"fr": "tabouret", "en": "stool"}, {})
    terms = TermStore(store)
    vocabulary = Vocabulary((lamp, stool), "csv", {}, ("fr", "en"))
    terms.save_vocabulary("mobilier", vocabulary, "mobilier.csv")
    bridge = ThesaurusWords(terms).alternatives
    conn = store.reader()
    assert find_records(conn, "floor lamp", 10).total == 0  # without the thesaurus
    by_english = find_records(conn, "floor lamp", 10, alternatives=bridge)
    assert by_english.total == 1
    assert by_english.also == {"floor lamp": ["lampadaire", "lampe sur pied"]}
    assert find_records(conn, "lampadaire", 10, alternatives=bridge).total == 1
    # A concept gone from its file bridges nothing (read again as the terms change).
    terms.save_vocabulary("mobilier", replace(vocabulary, concepts=(stool,)), "mobilier.csv")
    assert find_records(conn, "lampadaire", 10, alternatives=bridge).total == 0


def test_concepts_bridge_their_labels_in_every_language_each_once():
    chair = StoredConcept(
        1, "v", "x", {"fr": "Fauteuil", "en": "armchair"}, {"fr": ["siège à bras"]}, [], None, False
    )
    gone = StoredConcept(2, "v", "y", {"fr": "chaise", "en": "chair"}, {}, [], None, True)
    bridges = label_bridges([chair, gone])
    assert bridges["armchair"] == ["Fauteuil", "siège à bras"]
    assert bridges["fauteuil"] == ["armchair", "siège à bras"]  # accents and case aside
    assert bridges["siege a bras"] == ["Fauteuil", "armchair"]
    assert "chair" not in bridges


# ---- combining examples ---------------------------------------------------------------


def test_examples_combine_as_the_normalised_sum_of_their_directions():
    x, y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])  # lengths do not count
    assert np.allclose(combined_query([x, y], []), np.array([1, 1, 0]) / np.sqrt(2))
    assert np.allclose(combined_query([x], [y]), np.array([1, -1, 0]) / np.sqrt(2))
    with pytest.raises(QueryCancelsOut, match="cancel"):
        combined_query([x], [3 * x])


# ---- the API --------------------------------------------------------------------------


def search(api: TestClient, **params) -> dict:
    response = api.get("/api/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_search_answers_with_the_records_that_hold_every_word(api: TestClient, shapes_store):
    body = search(api, q="carre rouge", k=100)  # typed without its accent
    squares = {i for i, label in labels_of(shapes_store, "fr").items() if "carré rouge" in label}
    records = body["records"]
    assert records["words"] == ["carre", "rouge"]
    assert (records["total"], records["more"]) == (len(squares), False)
    assert {r["id"] for r in records["results"]} == squares
    # Hits found by the pictures say whether their record holds the words too.
    assert body["results"]
    assert all(h["in_record"] == (h["id"] in squares) for h in body["results"])


def test_records_can_be_left_out_and_syntax_is_searched_as_words(api: TestClient):
    assert search(api, q="carré rouge", records="false")["records"] is None
    body = search(api, q='"carré" AND NEAR( rouge*')
    assert body["records"]["total"] == 0 and body["results"]


def test_like_alone_finds_what_more_like_this_finds(api: TestClient):
    first = search(api, q="red circle", k=1)["results"][0]["id"]
    body = search(api, like=first, k=10)
    similar = api.get(f"/api/items/{first}/similar", params={"k": 10}).json()
    assert [h["id"] for h in body["results"]] == [h["id"] for h in similar["results"]]
    assert [i["id"] for i in body["like"]] == [first] and body["records"] is None


def test_words_and_pictures_pull_the_results_between_them(api: TestClient, shapes_store):
    labels = labels_of(shapes_store, "en")
    circle = next(i for i, label in labels.items() if label.startswith("red circle"))
    by_picture = search(api, like=circle, k=5)["results"]
    both = search(api, q="blue", like=circle, k=5)
    assert circle not in {h["id"] for h in both["results"]}
    # With "blue", blue pictures come in that the picture alone did not bring.
    blue = [h for h in both["results"] if " blue " in f" {labels[h['id']]} "]
    assert len(blue) > sum(" blue " in f" {labels[h['id']]} " for h in by_picture)


def test_the_examples_are_left_out_of_the_records_too(api: TestClient, shapes_store):
    labels = labels_of(shapes_store, "en")
    red_circle = next(i for i, label in labels.items() if label.startswith("red circle"))
    plain = search(api, q="rouge cercle", k=100)["records"]
    pushed = search(api, q="rouge cercle", unlike=red_circle, k=100)["records"]
    assert red_circle in {r["id"] for r in plain["results"]}
    assert red_circle not in {r["id"] for r in pushed["results"]}
    assert pushed["total"] == plain["total"] - 1


def test_unlike_pushes_a_picture_kind_away(api: TestClient, shapes_store):
    labels = labels_of(shapes_store, "en")
    red_square = next(i for i, label in labels.items() if label.startswith("red square"))
    plain = search(api, q="red", k=10)["results"]
    pushed = search(api, q="red", unlike=red_square, k=10)
    squares = [h for h in pushed["results"] if "square" in labels[h["id"]]]
    assert len(squares) < sum("square" in labels[h["id"]] for h in plain)
    assert [i["id"] for i in pushed["unlike"]] == [red_square]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "empty_query"),
        ({"like": "no-such-item"}, 404, "unknown_item"),
        ({"q": "rouge", "like": [f"x{n}" for n in range(9)]}, 400, "too_many_examples"),
    ],
)
def test_bad_examples_are_refused_with_what_to_do(api: TestClient, params, status, code):
    response = api.get("/api/search", params=params)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_the_same_picture_liked_and_unliked_is_refused(api: TestClient, shapes_store):
    ids = labels_of(shapes_store, "en")
    twin = next(i for i, label in ids.items() if label.startswith("twin of "))
    original = next(i for i, label in ids.items() if label == ids[twin].removeprefix("twin of "))
    both = api.get("/api/search", params={"like": original, "unlike": original})
    assert (both.status_code, both.json()["error"]["code"]) == (400, "like_and_unlike")
    # A twin is the same picture at another id: the query is nothing.
    cancels = api.get("/api/search", params={"like": original, "unlike": twin})
    assert (cancels.status_code, cancels.json()["error"]["code"]) == (400, "query_cancels_out")
