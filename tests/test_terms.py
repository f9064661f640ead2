"""Draft subject terms: a thesaurus added to a store (`regard vocab add`), its terms
suggested for items by the model, reviewers accepting or rejecting them with a token,
and the decisions exported as W3C Web Annotations and CSV.

The store is a copy of the shapes collection indexed with the `regard-test` model,
which learnt the shapes' and colours' names in French and English: the thesaurus of
tests/fixtures/terms names them, under two facets (shape, colour).
"""

from __future__ import annotations

import csv
import io
import json
import resource
import shutil
import signal
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from indexer.store import Store
from models.term_prompts import term_prompts
from service.app import create_app
from service.cli import main as regard
from service.settings import Settings
from tests.regard_fixtures import start_service, stop_service

FIXTURES = Path(__file__).parent / "fixtures" / "terms"
THESAURUS = FIXTURES / "shapes-thesaurus.ttl"
VOCABULARY = "shapes-thesaurus"
EX = "https://example.org/regard/shapes/"
SHAPES = ("circle", "square", "triangle", "star")
COLOURS = ("red", "green", "blue", "yellow")


def run(*args: str) -> int:
    return regard(list(args))


@pytest.fixture(scope="module")
def store(tmp_path_factory, shapes_store: Path) -> Path:
    """A copy of the shapes store (the shared one stays as other tests expect it), with
    the shapes thesaurus and a reviewer."""
    path = tmp_path_factory.mktemp("terms") / "store"
    shutil.copytree(shapes_store, path)
    assert run("vocab", "add", str(THESAURUS), "--store", str(path)) == 0
    return path


@pytest.fixture(scope="module")
def token(store: Path) -> str:
    return _new_token(store, "Marie Dupont")


def _new_token(store: Path, name: str) -> str:
    from indexer.reviewers import add_reviewer

    return add_reviewer(Store.open(store), name)


@pytest.fixture(scope="module")
def api(store: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store=store))) as client:
        yield client


def items_by_label(store: Path) -> dict[str, str]:
    """English canvas label ("red circle 1") → item id, for the searchable items."""
    rows = (
        Store.open(store)
        .reader()
        .execute("SELECT id, canvas_label FROM items WHERE state = 'indexed'")
    )
    return {json.loads(label)["en"][0]: item_id for item_id, label in rows}


def concept_ids(group: dict[str, Any]) -> list[str]:
    return [term["concept"]["id"].removeprefix(EX) for term in group["terms"]]


def shape_items(store: Path) -> list[tuple[str, str, str]]:
    """(item id, shape, colour) for each plain shape picture of the collection."""
    found = []
    for label, item_id in items_by_label(store).items():
        words = label.split()
        if len(words) == 3 and words[0] in COLOURS and words[1] in SHAPES:
            found.append((item_id, words[1], words[0]))
    return found


# -- the vocabulary --------------------------------------------------------------------------


def test_a_thesaurus_is_added_with_its_terms_embedded(store: Path, capsys) -> None:
    assert run("vocab", "list", "--store", str(store), "--json") == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["name"] == VOCABULARY
    assert info["format"] == "skos"
    assert info["title"] == {"fr": "Formes et couleurs", "en": "Shapes and colours"}
    assert (info["concepts"], info["embedded"], info["retired"]) == (10, 10, 0)


def test_adding_it_again_embeds_nothing_again(store: Path, capsys) -> None:
    assert run("vocab", "add", str(THESAURUS), "--store", str(store)) == 0
    said = capsys.readouterr().out
    assert "0 new, 0 changed, 10 unchanged, 0 retired; 0 term(s) embedded" in said


def test_a_bundled_vocabulary_is_added_by_name(shapes_store: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    shutil.copytree(shapes_store, store)
    assert run("vocab", "add", "iconclass-decorative-arts", "--store", str(store)) == 0
    assert "400 new" in capsys.readouterr().out
    with TestClient(create_app(Settings(store=store))) as client:
        (info,) = client.get("/api/vocabularies").json()["vocabularies"]
        assert (info["name"], info["concepts"], info["embedded"]) == (
            "iconclass-decorative-arts",
            400,
            400,
        )
        some_item = next(iter(items_by_label(store).values()))
        (group,) = client.get(f"/api/items/{some_item}/terms?k=5").json()["vocabularies"]
        # Iconclass's single root (4: Society, Civilization, Culture) is a facet.
        assert len(group["terms"]) == 5
        assert "http://iconclass.org/4" not in [t["concept"]["id"] for t in group["terms"]]
        assert group["terms"][0]["concept"]["broader"][-1]["id"] == "http://iconclass.org/4"


def test_prompts_say_each_label_in_its_own_language() -> None:
    prompts = term_prompts({"fr": "fauteuil", "en": "armchair", "de": "Sessel"})
    assert "fauteuil" in prompts and "dessin : fauteuil" in prompts
    assert "a drawing of armchair" in prompts
    assert "Sessel" in prompts  # a language without phrasings: the bare label
    assert not any("Sessel" in p and p != "Sessel" for p in prompts)


# -- suggestions -----------------------------------------------------------------------------


def test_each_shape_gets_its_shape_and_colour_suggested_first(store: Path, api) -> None:
    pictures = shape_items(store)
    assert len(pictures) >= 16
    shapes_right = colours_right = 0
    for item_id, shape, colour in pictures:
        (group,) = api.get(f"/api/items/{item_id}/terms?k=8").json()["vocabularies"]
        ranked = concept_ids(group)
        shapes_right += [c for c in ranked if c in SHAPES][0] == shape
        colours_right += [c for c in ranked if c in COLOURS][0] == colour
    assert shapes_right / len(pictures) >= 0.9
    assert colours_right / len(pictures) >= 0.9


def test_suggestions_are_marked_as_the_models_and_ranked(store: Path, api) -> None:
    item_id, _, _ = shape_items(store)[0]
    body = api.get(f"/api/items/{item_id}/terms?k=8&vocabulary={VOCABULARY}").json()
    (group,) = body["vocabularies"]
    terms = group["terms"]
    # The facets (the thesaurus's two tops) are never suggested: 8 candidates remain.
    assert sorted(concept_ids(group)) == sorted(SHAPES + COLOURS)
    assert [t["suggestion"]["rank"] for t in terms] == list(range(1, 9))
    cosines = [t["suggestion"]["cosine"] for t in terms]
    assert cosines == sorted(cosines, reverse=True)
    for term in terms:
        suggestion = term["suggestion"]
        assert suggestion["machine"] is True
        assert suggestion["model"].startswith("regard-test|")
        assert suggestion["suggested_at"]
        assert term["decision"] is None
    # regard-test is a CLIP model: one softmax over the vocabulary's candidates.
    assert {t["suggestion"]["scoring"] for t in terms} == {"softmax"}
    assert sum(t["suggestion"]["score"] for t in terms) == pytest.approx(1.0, abs=1e-3)
    star = next(t for t in terms if t["concept"]["id"] == EX + "star")
    assert star["concept"]["notation"] == "S4"
    assert star["concept"]["broader"] == [
        {"id": EX + "shape", "labels": {"en": "shape", "fr": "forme"}}
    ]


def test_the_cli_suggests_as_the_api_does(store: Path, api, capsys) -> None:
    item_id, _, _ = shape_items(store)[0]
    assert run("suggest", item_id, "--store", str(store), "--k", "3", "--json") == 0
    (printed,) = json.loads(capsys.readouterr().out)
    (group,) = api.get(f"/api/items/{item_id}/terms?k=3").json()["vocabularies"]
    assert [t["id"] for t in printed["terms"]] == [t["concept"]["id"] for t in group["terms"]]
    assert [t["score"] for t in printed["terms"]] == [
        t["suggestion"]["score"] for t in group["terms"]
    ]


# -- decisions -------------------------------------------------------------------------------


def decide(api: TestClient, item_id: str, concept: str, decision: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"vocabulary": VOCABULARY, "concept": EX + concept, "decision": decision}
    return api.put(f"/api/items/{item_id}/terms", json=body, headers=headers)


def test_a_decision_needs_a_reviewers_token(store: Path, api, token: str) -> None:
    item_id, shape, _ = shape_items(store)[1]
    refused = decide(api, item_id, shape, "accepted", None)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "regard reviewer add" in refused.json()["error"]["message"]
    wrong = decide(api, item_id, shape, "accepted", token + "x")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unknown_token")
    (group,) = api.get(f"/api/items/{item_id}/terms").json()["vocabularies"]
    assert all(t["decision"] is None for t in group["terms"])


def test_a_decision_the_disk_will_not_take_is_a_507_that_says_so(
    store: Path, token: str, tmp_path: Path
) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    item_id, shape, _ = shape_items(copy)[2]
    # A write past a file size limit fails as on a full disk, rather than stopping the
    # server (the disposition is inherited by the process started now).
    ignored = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        service = start_service(copy)
    finally:
        signal.signal(signal.SIGXFSZ, ignored)
    try:
        resource.prlimit(service.process.pid, resource.RLIMIT_FSIZE, (0, 0))  # no room
        url = f"{service.url}/api/items/{urllib.parse.quote(item_id)}/terms"
        body = {"vocabulary": VOCABULARY, "concept": EX + shape, "decision": "accepted"}
        answer = httpx.put(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 507, answer.text
        error = answer.json()["error"]
        assert error["code"] == "storage_full" and "could not be written" in error["message"]
        assert "Nothing of this request was saved" in error["message"]
        # The server goes on answering, and the decision is not recorded.
        (group,) = httpx.get(url).json()["vocabularies"]
        assert all(term["decision"] is None for term in group["terms"])
    finally:
        stop_service(service)


def test_accepting_and_rejecting_keep_who_when_and_the_models_word(
    store: Path, api, token: str
) -> None:
    item_id, shape, colour = shape_items(store)[2]
    other = next(c for c in COLOURS if c != colour)
    accepted = decide(api, item_id, shape, "accepted", token)
    assert accepted.status_code == 200
    body = accepted.json()
    assert body["decision"]["decision"] == "accepted"
    assert body["decision"]["by"] == "Marie Dupont"
    assert body["suggestion"]["machine"] is True and body["suggestion"]["rank"] >= 1
    rejected = decide(api, item_id, other, "rejected", token).json()
    assert rejected["decision"]["decision"] == "rejected"
    # Both show with the item's terms, even the one below the top k asked for.
    (group,) = api.get(f"/api/items/{item_id}/terms?k=1").json()["vocabularies"]
    decided = {
        t["concept"]["id"].removeprefix(EX): t["decision"] for t in group["terms"] if t["decision"]
    }
    assert decided[shape]["decision"] == "accepted"
    assert decided[other]["decision"] == "rejected"
    assert len(group["terms"]) >= 2
    # Withdrawn: back to a plain suggestion.
    withdrawn = decide(api, item_id, other, "undecided", token).json()
    assert withdrawn["decision"] is None
    (group,) = api.get(f"/api/items/{item_id}/terms?k=1").json()["vocabularies"]
    assert all(t["decision"] is None for t in group["terms"] if t["concept"]["id"] == EX + other)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"vocabulary": "nope", "concept": EX + "star", "decision": "accepted"},
            404,
            "unknown_vocabulary",
        ),
        (
            {"vocabulary": VOCABULARY, "concept": EX + "hexagon", "decision": "accepted"},
            404,
            "unknown_concept",
        ),
        (
            {"vocabulary": VOCABULARY, "concept": EX + "star", "decision": "maybe"},
            422,
            "invalid_request",
        ),
    ],
)
def test_a_wrong_decision_says_what_was_wrong(store, api, token, body, status, code) -> None:
    item_id, _, _ = shape_items(store)[0]
    answer = api.put(
        f"/api/items/{item_id}/terms", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


def test_terms_of_an_unknown_item_or_vocabulary_are_404(store: Path, api) -> None:
    assert api.get("/api/items/nope/terms").json()["error"]["code"] == "unknown_item"
    item_id, _, _ = shape_items(store)[0]
    missing = api.get(f"/api/items/{item_id}/terms?vocabulary=joconde")
    assert missing.status_code == 404
    assert VOCABULARY in missing.json()["error"]["message"]  # names the ones there are
    assert api.get(f"/api/items/{item_id}/terms?k=0").status_code == 400


def test_a_reviewer_removed_can_no_longer_decide(store: Path, api) -> None:
    second = _new_token(store, "Paul")
    item_id, shape, _ = shape_items(store)[3]
    assert decide(api, item_id, shape, "accepted", second).status_code == 200
    assert run("reviewer", "remove", "Paul", "--store", str(store)) == 0
    assert decide(api, item_id, shape, "rejected", second).status_code == 401
    # The decision made stays, under Paul's name.
    (group,) = api.get(f"/api/items/{item_id}/terms").json()["vocabularies"]
    (made,) = [t["decision"] for t in group["terms"] if t["decision"]]
    assert (made["decision"], made["by"]) == ("accepted", "Paul")


# -- export ----------------------------------------------------------------------------------


def test_accepted_terms_export_as_web_annotations(store: Path, api, token: str) -> None:
    item_id, shape, colour = shape_items(store)[4]
    assert decide(api, item_id, shape, "accepted", token).status_code == 200
    assert decide(api, item_id, colour, "rejected", token).status_code == 200
    answer = api.get("/api/export/annotations")
    assert answer.headers["content-type"].startswith("application/ld+json")
    page = answer.json()
    assert page["type"] == "AnnotationPage"
    assert page["@context"][0] == "http://www.w3.org/ns/anno.jsonld"
    mine = [a for a in page["items"] if _target_id(a).endswith(_canvas_of(store, item_id))]
    assert len(mine) == 1  # the rejected colour is not published
    (note,) = mine
    assert note["motivation"] == "classifying"
    assert note["body"][0]["source"]["id"] == EX + shape
    assert {b["value"] for b in note["body"][1:]} == {shape, _french(shape)}
    assert note["creator"] == {"type": "Person", "name": "Marie Dupont"}
    assert note["generator"] == {"type": "Software", "name": "Regard"}
    assert note["regard:suggestion"]["model"].startswith("regard-test|")
    assert note["regard:suggestion"]["rank"] >= 1
    assert note["target"]["source"]["partOf"][0]["type"] == "Manifest"
    assert note["id"].startswith("urn:regard:term:")


def test_every_decision_exports_as_csv_by_the_api_and_the_cli(
    store: Path, api, token: str, tmp_path: Path
) -> None:
    item_id, shape, colour = shape_items(store)[5]
    decide(api, item_id, shape, "accepted", token)
    decide(api, item_id, colour, "rejected", token)
    rows = list(csv.DictReader(io.StringIO(api.get("/api/export/terms.csv").text)))
    mine = {r["concept_id"].removeprefix(EX): r for r in rows if r["item_id"] == item_id}
    assert mine[shape]["decision"] == "accepted"
    assert mine[colour]["decision"] == "rejected"
    assert mine[shape]["machine_suggestion"] == "yes"
    assert mine[shape]["label_fr"] == _french(shape)
    assert float(mine[shape]["score"]) > 0
    out = tmp_path / "terms.csv"
    assert run("export", "--store", str(store), "--format", "csv", "--output", str(out)) == 0
    assert list(csv.DictReader(out.open(encoding="utf-8"))) == rows
    assert not (tmp_path / "terms.csv.partial").exists()


def test_a_vocabulary_in_use_is_removed_only_on_request(store: Path, api, token, capsys) -> None:
    item_id, shape, _ = shape_items(store)[6]
    decide(api, item_id, shape, "accepted", token)
    scratch = store.parent / "scratch-store"
    shutil.copytree(store, scratch)
    assert run("vocab", "remove", VOCABULARY, "--store", str(scratch)) == 1
    assert "--forget-decisions" in capsys.readouterr().err
    assert run("vocab", "remove", VOCABULARY, "--store", str(scratch), "--forget-decisions") == 0
    (info,) = api.get("/api/vocabularies").json()["vocabularies"]
    assert info["decisions"] >= 1
    assert f"and {info['decisions']} decision(s)" in capsys.readouterr().out
    assert run("vocab", "list", "--store", str(scratch), "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


def _target_id(note: dict[str, Any]) -> str:
    return note["target"]["source"]["id"]


def _canvas_of(store: Path, item_id: str) -> str:
    item = Store.open(store).get_item(item_id)
    assert item is not None
    return item.canvas_id


def _french(shape: str) -> str:
    return {"circle": "cercle", "square": "carré", "triangle": "triangle", "star": "étoile"}[shape]


# -- the thesaurus changes, runs are cut short, input is wrong --------------------------------


def test_a_thesaurus_updated_keeps_its_decisions(store: Path, api, token: str, tmp_path) -> None:
    scratch = tmp_path / "store"
    shutil.copytree(store, scratch)
    item_id, _, _ = shape_items(scratch)[7]
    with TestClient(create_app(Settings(store=scratch))) as client:
        assert decide(client, item_id, "triangle", "accepted", token).status_code == 200
        decisions = client.get("/api/vocabularies").json()["vocabularies"][0]["decisions"]
    # The museum renames "square" and drops "triangle" from its thesaurus.
    text = THESAURUS.read_text(encoding="utf-8")
    text = text.replace('"carré"@fr', '"quadrilatère"@fr')
    start = text.index("ex:triangle a skos:Concept")
    text = text[:start] + text[text.index("ex:star a skos:Concept") :]
    updated = tmp_path / "shapes-thesaurus.ttl"
    updated.write_text(text, encoding="utf-8")
    assert run("vocab", "add", str(updated), "--store", str(scratch)) == 0
    with TestClient(create_app(Settings(store=scratch))) as client:
        (info,) = client.get("/api/vocabularies").json()["vocabularies"]
        assert (info["concepts"], info["embedded"], info["decisions"]) == (9, 9, decisions)
        (group,) = client.get(f"/api/items/{item_id}/terms?k=8").json()["vocabularies"]
    ids = concept_ids(group)
    triangle = group["terms"][ids.index("triangle")]
    assert triangle["concept"]["retired"] is True
    assert triangle["decision"]["decision"] == "accepted"
    assert triangle["suggestion"]["rank"] >= 1  # the model's word when it was accepted
    square = group["terms"][ids.index("square")]
    assert square["concept"]["labels"]["fr"] == "quadrilatère"
    assert ids.count("triangle") == 1 and len(ids) == 8  # 7 candidates and the retired one


def test_an_interrupted_import_embeds_the_rest_when_run_again(store: Path, tmp_path, capsys):
    scratch = tmp_path / "store"
    shutil.copytree(store, scratch)
    opened = Store.open(scratch)
    with opened.writing() as conn:  # as if the run had stopped after some of the terms
        conn.execute(
            "DELETE FROM concept_vectors WHERE concept_key IN "
            "(SELECT key FROM concepts WHERE id LIKE '%e')"  # circle, square, triangle, blue, shape
        )
    assert run("vocab", "list", "--store", str(scratch)) == 0
    assert "5 not embedded yet" in capsys.readouterr().out
    assert run("vocab", "add", str(THESAURUS), "--store", str(scratch)) == 0
    assert "10 unchanged, 0 retired; 5 term(s) embedded" in capsys.readouterr().out


def test_a_store_without_a_model_takes_no_vocabulary(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    Store.open(empty, create=True)
    assert run("vocab", "add", str(THESAURUS), "--store", str(empty)) == 1
    assert "index something into it first" in capsys.readouterr().err
    assert run("vocab", "list", "--store", str(empty), "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("vocab", "add", "no-such-thesaurus.ttl"), "no such file, nor a vocabulary Regard ships"),
        (("vocab", "add", str(THESAURUS), "--name", "Bad Name"), "cannot name a vocabulary"),
        (("suggest", "nope"), "no searchable item 'nope'"),
        (("vocab", "remove", "nope"), "no vocabulary named 'nope'"),
        (("reviewer", "remove", "Nobody"), "no reviewer named 'Nobody'"),
    ],
)
def test_wrong_input_to_the_terms_commands_says_what_to_do(store, args, said, capsys) -> None:
    assert run(*args, "--store", str(store)) == 1
    assert said in capsys.readouterr().err


def test_the_models_suggestions_for_every_item_export_marked_as_the_machines(
    store: Path, api, token: str, tmp_path: Path
) -> None:
    item_id, shape, colour = shape_items(store)[8]
    decide(api, item_id, shape, "accepted", token)
    out = tmp_path / "suggested.jsonld"
    args = ("export", "--store", str(store), "--suggestions", "2", "--output", str(out))
    assert run(*args) == 0
    page = json.loads(out.read_text(encoding="utf-8"))
    searchable = len(items_by_label(store))
    machine = [a for a in page["items"] if a["creator"]["type"] == "Software"]
    people = [a for a in page["items"] if a["creator"]["type"] == "Person"]
    assert people and all(a["generator"]["name"] == "Regard" for a in people)
    # Two terms an item, less those a reviewer decided (they are the Person's).
    per_item: dict[str, int] = {}
    for note in machine:
        per_item[_target_id(note)] = per_item.get(_target_id(note), 0) + 1
    decided_items = (
        Store.open(store)
        .reader()
        .execute("SELECT COUNT(DISTINCT item_key) FROM term_decisions")
        .fetchone()[0]
    )
    assert max(per_item.values()) == 2
    assert sum(n == 2 for n in per_item.values()) >= searchable - decided_items
    mine = [a for a in page["items"] if _target_id(a) == _canvas_of(store, item_id)]
    by_concept = {a["body"][0]["source"]["id"].removeprefix(EX): a for a in mine}
    assert by_concept[shape]["creator"]["type"] == "Person"
    assert by_concept[colour]["creator"] == {
        "type": "Software",
        "name": f"Regard ({by_concept[colour]['regard:suggestion']['model']})",
    }
    assert by_concept[colour]["regard:suggestion"]["rank"] in (1, 2)
    assert len({a["id"] for a in page["items"]}) == len(page["items"])


def test_suggestions_export_as_csv_lines_of_their_own(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "suggested.csv"
    args = ("--store", str(store), "--format", "csv", "--output", str(out))
    assert run("export", *args, "--suggestions", "1", "--vocabulary", VOCABULARY) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    suggested = [r for r in rows if r["decision"] == "suggested"]
    assert suggested and all(
        r["decided_by"] == "" and r["machine_suggestion"] == "yes" for r in suggested
    )
    assert all(r["rank"] == "1" for r in suggested)
    assert {r["decision"] for r in rows} <= {"accepted", "rejected", "suggested"}
    # Each item's first suggestion is the one the API ranks first.
    with TestClient(create_app(Settings(store=store))) as client:
        row = suggested[0]
        (group,) = client.get(f"/api/items/{row['item_id']}/terms?k=1").json()["vocabularies"]
    assert group["terms"][0]["concept"]["id"] == row["concept_id"]
    assert float(row["score"]) == group["terms"][0]["suggestion"]["score"]


def test_suggestions_need_a_vocabulary_first(shapes_store: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    shutil.copytree(shapes_store, store)
    assert run("export", "--store", str(store), "--suggestions", "3") == 1
    assert "regard vocab add" in capsys.readouterr().err


def test_a_token_says_whose_it_is(api, token: str) -> None:
    mine = api.get("/api/reviewer", headers={"Authorization": f"Bearer {token}"})
    assert mine.json() == {"name": "Marie Dupont"}
    assert api.get("/api/reviewer").status_code == 401
    wrong = api.get("/api/reviewer", headers={"Authorization": "Bearer nope"})
    assert wrong.json()["error"]["code"] == "unknown_token"
