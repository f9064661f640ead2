"""Decisions on similar images steer an item's draft terms (indexer/term_precedents.py):
a term accepted on the images most like it comes first, even where the model ranked it
low; one rejected there goes last; each says what was decided, where and how close.

The store is a copy of the shapes store with the shapes thesaurus; "twin of red circle 1"
is the same picture as "red circle 1" at another id, so that each is the other's
nearest image.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.store_terms import Decision
from indexer.term_precedents import Precedent, precedents, put_in_order
from service.app import create_app
from service.settings import Settings
from tests.test_terms import (
    EX,
    THESAURUS,
    VOCABULARY,
    _new_token,
    concept_ids,
    decide,
    items_by_label,
    run,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory, shapes_store: Path) -> Path:
    path = tmp_path_factory.mktemp("precedents") / "store"
    shutil.copytree(shapes_store, path)
    assert run("vocab", "add", str(THESAURUS), "--store", str(path)) == 0
    return path


@pytest.fixture(scope="module")
def api(store: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store=store))) as client:
        yield client


def made(item: int, concept: int, decision: str) -> Decision:
    return Decision(item, concept, decision, "Marie", "2026-11-27T10:00:00Z", None)


# ---- the rules, on their own ----------------------------------------------------------


def test_decisions_on_neighbours_are_counted_per_term_with_the_closest():
    neighbours = [(11, 0.95), (12, 0.90), (13, 0.80)]
    found = precedents(
        neighbours,
        [made(12, 1, "accepted"), made(13, 1, "accepted"), made(11, 2, "rejected")]
        + [made(99, 1, "rejected")],  # not a neighbour: not counted
    )
    assert found[1] == Precedent(2, 0, 3, 12, 0.9)
    assert found[2] == Precedent(0, 1, 3, 11, 0.95)
    assert (found[1].leaning, found[2].leaning) == (1, -1)


def test_backed_terms_come_first_and_opposed_ones_last():
    found = {
        5: Precedent(1, 0, 10, 7, 0.8),  # outside the model's top: put forward
        3: Precedent(2, 0, 10, 7, 0.7),  # more accepted: before 5
        1: Precedent(0, 1, 10, 7, 0.9),  # rejected: last
        2: Precedent(1, 1, 10, 7, 0.9),  # as often: stays where the model put it
    }
    assert put_in_order([1, 2, 3, 4], [5], found) == [3, 5, 2, 4, 1]


# ---- through the API and the CLI -------------------------------------------------------


def terms_of(api: TestClient, item_id: str, k: int = 3) -> list[dict]:
    response = api.get(f"/api/items/{item_id}/terms?k={k}&vocabulary={VOCABULARY}")
    assert response.status_code == 200, response.text
    (group,) = response.json()["vocabularies"]
    return group["terms"]


def test_decisions_on_a_twin_reorder_the_items_terms(store: Path, api: TestClient, capsys):
    labels = items_by_label(store)
    original, twin = labels["red circle 1"], labels["twin of red circle 1"]
    token = _new_token(store, "Marie Dupont")
    before = terms_of(api, original, k=8)
    assert all(t["precedent"] is None for t in before)
    first, last = before[0]["concept"]["id"], before[-1]["concept"]["id"]

    # On the twin, a cataloguer rejects the model's first choice and accepts its last.
    assert decide(api, twin, first.removeprefix(EX), "rejected", token).status_code == 200
    assert decide(api, twin, last.removeprefix(EX), "accepted", token).status_code == 200

    after = terms_of(api, original, k=3)
    ids = [t["concept"]["id"] for t in after]
    # The accepted term comes first although the model ranks it last (8th of 8)...
    assert ids[0] == last and after[0]["suggestion"]["rank"] == 8
    backing = after[0]["precedent"]
    assert (backing["accepted"], backing["rejected"], backing["nearest_item"]) == (1, 0, twin)
    assert backing["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert backing["looked_at"] >= 1
    # ... and the rejected one, the model's first, goes last, still marked the machine's.
    assert ids[-1] == first and after[-1]["precedent"]["rejected"] == 1
    assert after[-1]["suggestion"]["rank"] == 1 and after[-1]["suggestion"]["machine"]

    # The CLI lists them as the API does.
    assert run("suggest", original, "--store", str(store), "--k", "3", "--json") == 0
    (printed,) = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in printed["terms"]] == ids
    assert printed["terms"][0]["precedent"]["accepted"] == 1

    # Decisions withdrawn, the model's order is back.
    decide(api, twin, first.removeprefix(EX), "undecided", token)
    decide(api, twin, last.removeprefix(EX), "undecided", token)
    restored = terms_of(api, original, k=8)
    assert concept_ids({"terms": restored}) == concept_ids({"terms": before})


def test_the_decisions_report_counts_ranks_and_replays_each_decision(
    store: Path, api: TestClient, capsys
):
    labels = items_by_label(store)
    pair = [labels["twin of red circle 1"], labels["red circle 1"]]
    token = _new_token(store, "Jean Royère")
    ranked = [t["concept"]["id"].removeprefix(EX) for t in terms_of(api, pair[1], k=8)]
    first, last = ranked[0], ranked[-1]
    # The twins agree: each one's decisions are what the other's neighbours say.
    for item_id in pair:
        assert decide(api, item_id, last, "accepted", token).status_code == 200
        assert decide(api, item_id, first, "rejected", token).status_code == 200
    try:
        assert run("decisions", "--store", str(store), "--json") == 0
        (report,) = json.loads(capsys.readouterr().out)
        assert report["vocabulary"] == VOCABULARY
        assert (report["accepted"], report["rejected"]) == (2, 2)
        assert report["reviewers"] == ["Jean Royère"]
        # The model ranked the accepted term last (8th) and the rejected one first.
        assert report["by_rank"]["1"] == {"accepted": 0, "rejected": 2}
        assert report["by_rank"]["4-10"] == {"accepted": 2, "rejected": 0}
        assert report["similar_images"] == {"agreed": 4, "disagreed": 0, "silent": 0}

        assert run("decisions", "--store", str(store)) == 0
        text = capsys.readouterr().out
        assert f"{VOCABULARY}: 2 accepted, 2 rejected, by 1 reviewer" in text
        assert "agreed with 4, went against 0, said nothing of 0" in text
    finally:
        for item_id in pair:
            decide(api, item_id, last, "undecided", token)
            decide(api, item_id, first, "undecided", token)


def test_search_looks_for_the_other_labels_of_a_concept_the_query_names(api: TestClient):
    """The store's thesaurus bridges the words of a search and of the records: "rond",
    an alternative label of "cercle", finds the circles, and the answer says so."""
    records = api.get("/api/search", params={"q": "rond", "k": 100}).json()["records"]
    assert sorted(records["also"]["rond"]) == ["cercle", "circle", "disc"]
    circles = [r for r in records["results"] if "circle" in r["labels"].get("en", [""])[0]]
    assert records["total"] > 0 and len(circles) == len(records["results"])
