"""Folders that overlap in one store are refused, and leave the store as it was.

Folder item ids are relative paths (they survive moving a folder), so two folders with
the same relative paths, or one folder inside another, cannot share a store.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.shapes import ShapeSpec, render
from service.app import create_app
from service.settings import Settings
from tests.regard_fixtures import index

COLOURS = {"a.jpg": "red", "b.jpg": "blue", "c.jpg": "green", "sub/d.jpg": "yellow"}


def folder(path: Path, *names: str) -> Path:
    for n, name in enumerate(names):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        render(ShapeSpec("circle", COLOURS[name], n), 96).save(path / name)
    return path


def items(store: Path) -> dict[str, tuple[str, str]]:
    """id -> (manifest id, state), for every item."""
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        rows = conn.execute("SELECT id, manifest_id, state FROM items")
        return {row[0]: (row[1], row[2]) for row in rows}


def summary(store: Path) -> dict:
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        (text,) = conn.execute("SELECT summary FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return json.loads(text)


def searched(store: Path) -> set[str]:
    with TestClient(create_app(Settings(store=store))) as client:
        results = client.get("/api/search", params={"q": "circle", "k": 50}).json()["results"]
    return {hit["id"] for hit in results}


def test_two_folders_with_the_same_relative_paths_are_refused(tmp_path, capsys):
    a = folder(tmp_path / "a", "a.jpg", "b.jpg")
    b = folder(tmp_path / "b", "a.jpg", "c.jpg")
    store = tmp_path / "store"
    assert index(str(a), store=store) == 0
    before = items(store)
    assert {m for m, _ in before.values()} == {a.resolve().as_uri()}
    capsys.readouterr()

    assert index(str(b), store=store) == 1

    message = (
        f"{b}: 1 of its files have the same relative paths as files of {a.resolve()}, "
        "already in this store"
    )
    assert message in capsys.readouterr().err
    assert items(store) == before  # nothing moved, nothing of b added
    assert searched(store) == set(before)
    assert summary(store)["embedded"] == 0
    # and a is read again without anything to redo: no flipping back and forth
    assert index(str(a), store=store) == 0
    assert items(store) == before and summary(store)["embedded"] == 0


def test_in_one_command_the_second_folder_is_refused_and_the_first_kept(tmp_path, capsys):
    a = folder(tmp_path / "a", "a.jpg", "b.jpg")
    b = folder(tmp_path / "b", "a.jpg", "c.jpg")
    store = tmp_path / "store"

    assert index(str(a), str(b), store=store) == 1

    assert "same relative paths" in capsys.readouterr().err
    assert {m for m, _ in items(store).values()} == {a.resolve().as_uri()}
    assert len(searched(store)) == 2


def test_a_refused_folder_keeps_what_it_had(tmp_path):
    a = folder(tmp_path / "a", "a.jpg")
    b = folder(tmp_path / "b", "c.jpg")
    store = tmp_path / "store"
    assert index(str(a), store=store) == 0
    assert index(str(b), store=store) == 0
    before = items(store)

    folder(b, "a.jpg")  # now b shares a relative path with a
    (b / "c.jpg").unlink()  # and a deletion is not applied either
    assert index(str(b), store=store) == 1

    assert items(store) == before
    assert summary(store)["removed"] == 0
    assert searched(store) == set(before)


def test_a_moved_folder_is_accepted_beside_another_with_the_same_ids(tmp_path):
    a = folder(tmp_path / "a", "a.jpg", "b.jpg")
    other = folder(tmp_path / "other", "c.jpg")
    store = tmp_path / "store"
    assert index(str(a), str(other), store=store) == 0
    ids = {i for i, (m, _) in items(store).items() if m == a.resolve().as_uri()}

    moved = a.rename(tmp_path / "renamed")
    assert index(str(moved), store=store) == 0

    now = items(store)
    assert {i for i, (m, _) in now.items() if m == moved.resolve().as_uri()} == ids
    assert summary(store)["embedded"] == 0 and summary(store)["removed"] == 0
    assert searched(store) == set(now)


def test_a_file_moved_to_another_folder_keeps_its_item(tmp_path):
    a = folder(tmp_path / "a", "a.jpg", "b.jpg")
    store = tmp_path / "store"
    assert index(str(a), store=store) == 0
    before = items(store)

    (tmp_path / "b").mkdir()
    (a / "a.jpg").rename(tmp_path / "b" / "a.jpg")  # a still exists, without it
    assert index(str(tmp_path / "b"), store=store) == 0

    b_uri = (tmp_path / "b").resolve().as_uri()
    assert [m for m, _ in items(store).values()].count(b_uri) == 1
    assert set(items(store)) == set(before) and summary(store)["embedded"] == 0


def test_a_folder_given_twice_is_read_once(tmp_path):
    a = folder(tmp_path / "a", "a.jpg", "b.jpg")
    store = tmp_path / "store"

    assert index(str(a), str(tmp_path / "a" / ".." / "a"), store=store) == 0

    run = summary(store)
    assert run["manifests"] == 1 and run["images_found"] == 2 and run["embedded"] == 2


@pytest.mark.parametrize("inner_first", [False, True], ids=["inside", "holds"])
def test_a_folder_inside_another_of_the_store_is_refused(tmp_path, capsys, inner_first):
    outer = folder(tmp_path / "a", "a.jpg", "sub/d.jpg")
    inner = outer / "sub"
    first, second = (inner, outer) if inner_first else (outer, inner)
    store = tmp_path / "store"
    assert index(str(first), store=store) == 0
    before = items(store)
    capsys.readouterr()

    assert index(str(second), store=store) == 1

    relation = "holds" if inner_first else "is inside"
    assert f"{second}: it {relation} {first.resolve()}, already in this store" in (
        capsys.readouterr().err
    )
    assert items(store) == before and searched(store) == set(before)
