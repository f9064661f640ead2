"""Folders that overlap in one store are refused, and leave the store as it was.

Folder item ids are relative paths (they survive moving a folder), so two folders with
the same relative paths, or a folder inside another, cannot share a store; a folder
that holds one of the store takes over its items, vectors and all.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.folders import folder_id_key, read_folder, renamed_into
from indexer.iiif_canvas import stable_id
from indexer.search import Searcher, VectorsOnly
from indexer.store import Store
from indexer.store_takeover import ItemName
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


def test_a_folder_inside_another_of_the_store_is_refused(tmp_path, capsys):
    outer = folder(tmp_path / "a", "a.jpg", "sub/d.jpg")
    inner = outer / "sub"
    store = tmp_path / "store"
    assert index(str(outer), store=store) == 0
    before = items(store)
    capsys.readouterr()

    assert index(str(inner), store=store) == 1

    assert f"{inner}: it is inside {outer.resolve()}, already in this store" in (
        capsys.readouterr().err
    )
    assert items(store) == before and searched(store) == set(before)


# -- a folder that holds one of the store takes over its items ----------------------------


def draw(path: Path, shape: str, colour: str, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    render(ShapeSpec(shape, colour, seed), 96).save(path)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """archive/box1 (three pictures, indexed first as a trial), box2 (one), and one at
    the top whose relative path, a.jpg, is also one of box1's: a clash of the nesting."""
    root = tmp_path / "archive"
    draw(root / "box1" / "a.jpg", "circle", "red", 1)
    draw(root / "box1" / "sub" / "b.jpg", "square", "blue", 2)
    draw(root / "box1" / "c.jpg", "star", "green", 3)
    draw(root / "box2" / "d.jpg", "triangle", "yellow", 4)
    draw(root / "a.jpg", "star", "red", 5)
    return root


def query(store: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        return conn.execute(sql).fetchall()


def records(store: Path) -> dict[str, tuple[int, str, str]]:
    """id -> (key, manifest id, state), for every item."""
    return {
        i: (k, m, s) for i, k, m, s in query(store, "SELECT id, key, manifest_id, state FROM items")
    }


def blobs(store: Path) -> dict[int, bytes]:
    return dict(query(store, "SELECT item_key, vector FROM vectors"))


def manifests(store: Path) -> list[str]:
    return sorted(m for (m,) in query(store, "SELECT id FROM manifests"))


def roots(store: Path) -> set[tuple[str, str]]:
    return set(query(store, "SELECT root, manifest_id FROM source_manifests"))


def ids_of(root: Path) -> dict[str, str]:
    """relative path -> item id, as the folder lists its files now."""
    return {image.canvas_label["none"][0]: image.item_id for image in read_folder(root).images}


def test_a_folder_holding_one_of_the_store_takes_over_its_items_and_vectors(
    archive, tmp_path, capsys
):
    box1, store = archive / "box1", tmp_path / "store"
    assert index(str(box1), store=store) == 0
    trial, trial_vectors = records(store), blobs(store)
    key_of = {relpath: trial[item_id][0] for relpath, item_id in ids_of(box1).items()}
    draw(box1 / "c.jpg", "circle", "yellow", 6)  # changed since the trial
    capsys.readouterr()

    assert index(str(archive), store=store) == 0

    out = capsys.readouterr().out
    said = f"took over 2 image(s) of {box1.resolve()}, already in this store (not embedded again)"
    assert said in out
    now, ids, uri = records(store), ids_of(archive), archive.resolve().as_uri()
    assert manifests(store) == [uri]  # box1 is no longer a folder of the store
    assert set(now) == set(ids.values()) and {m for _, m, _ in now.values()} == {uri}
    assert {relpath: now[ids[f"box1/{relpath}"]][0] for relpath in key_of} == key_of
    vectors = blobs(store)
    for relpath in ("a.jpg", "sub/b.jpg"):  # the same vectors: not embedded again
        assert vectors[key_of[relpath]] == trial_vectors[key_of[relpath]]
    assert vectors[key_of["c.jpg"]] != trial_vectors[key_of["c.jpg"]]  # embedded again
    assert summary(store)["embedded"] == 3  # box1/c.jpg, box2/d.jpg and the top a.jpg
    assert summary(store)["taken_over"] == {str(box1.resolve()): 2}  # kept in the run's log
    assert searched(store) == set(ids.values())
    with closing(Store.open(store)) as opened:
        vector = opened.vector_of(key_of["a.jpg"])
        assert vector is not None
        [hit] = Searcher(opened, VectorsOnly()).search_vector(vector, 1)
    assert hit.item.id == ids["box1/a.jpg"] and hit.item.manifest_id == uri
    with TestClient(create_app(Settings(store=store))) as client:
        picture = client.get(f"/api/items/{ids['box1/sub/b.jpg']}/image")
    assert picture.status_code == 200  # served as a file of the archive

    assert index(str(archive), store=store) == 0  # a later run has nothing to do
    assert records(store) == now
    assert summary(store)["embedded"] == 0 and summary(store)["removed"] == 0
    capsys.readouterr()

    assert index(str(box1), store=store) == 1
    err = capsys.readouterr().err
    assert f"it is inside {archive.resolve()}, already in this store" in err
    assert f"index {archive.resolve()} again instead" in err
    assert records(store) == now


def test_a_file_gone_from_a_folder_taken_over_is_removed_as_usual(archive, tmp_path):
    box1, store = archive / "box1", tmp_path / "store"
    assert index(str(box1), store=store) == 0
    gone = box1 / "c.jpg"
    key = records(store)[ids_of(box1)["c.jpg"]][0]
    picture, mtime = gone.read_bytes(), gone.stat().st_mtime_ns
    gone.unlink()

    assert index(str(archive), store=store) == 0

    assert summary(store)["removed"] == 1
    [(item_id, state)] = query(store, f"SELECT id, state FROM items WHERE key = {key}")
    assert state == "removed"
    gone.write_bytes(picture)  # back as it was: searchable again, under its new id
    os.utime(gone, ns=(mtime, mtime))
    assert ids_of(archive)["box1/c.jpg"] == item_id
    assert index(str(archive), store=store) == 0
    assert summary(store)["embedded"] == 0
    assert records(store)[item_id] == (key, archive.resolve().as_uri(), "indexed")


def test_a_folder_taken_over_is_no_source_of_the_store_any_more(archive, tmp_path):
    box1, other, store = archive / "box1", tmp_path / "other", tmp_path / "store"
    draw(other / "e.jpg", "square", "green", 7)
    assert index(str(box1), str(other), store=store) == 0

    # box1 given too, read again before the archive takes it over
    assert index(str(box1), str(archive), store=store) == 0

    folders = {path.resolve(): path.resolve().as_uri() for path in (archive, other)}
    assert roots(store) == {(str(path), uri) for path, uri in folders.items()}
    assert manifests(store) == sorted(folders.values())
    assert index(str(other), store=store) == 0  # another root's run keeps the archive
    assert summary(store)["removed"] == 0
    assert searched(store) == set(records(store))


def test_a_folder_given_after_one_that_holds_it_is_read_with_it(archive, tmp_path, capsys):
    box1, store = archive / "box1", tmp_path / "store"
    assert index(str(archive), str(box1), store=store) == 0  # not refused: read once
    assert "already in this store" not in capsys.readouterr().err
    uri = archive.resolve().as_uri()
    assert manifests(store) == [uri] and roots(store) == {(str(archive.resolve()), uri)}
    assert set(records(store)) == set(ids_of(archive).values())


def test_a_take_over_that_fails_midway_leaves_the_store_as_it_was(archive, tmp_path):
    box1, store = archive / "box1", tmp_path / "store"
    assert index(str(box1), store=store) == 0
    before = (records(store), blobs(store), manifests(store), roots(store))
    # The archive's own files are written after box1's items were taken over: the
    # failure of one of them comes in the middle of the take-over's transaction.
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        conn.execute(
            "CREATE TRIGGER provoked BEFORE INSERT ON items "
            f"WHEN NEW.id = '{ids_of(archive)['box2/d.jpg']}' "
            "BEGIN SELECT RAISE(ABORT, 'provoked failure'); END"
        )
        conn.commit()

    with pytest.raises(sqlite3.IntegrityError, match="provoked failure"):
        index(str(archive), store=store)

    assert (records(store), blobs(store), manifests(store), roots(store)) == before
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        conn.execute("DROP TRIGGER provoked")
        conn.commit()
    assert index(str(archive), store=store) == 0
    assert manifests(store) == [archive.resolve().as_uri()]


def test_an_item_whose_label_is_not_its_relative_path_is_not_renamed(tmp_path):
    (tmp_path / "outer" / "box").mkdir(parents=True)
    outer = read_folder(tmp_path / "outer")
    inner = (tmp_path / "outer" / "box").resolve().as_uri()
    good = ItemName(1, stable_id(folder_id_key("a.jpg")), {"none": ["a.jpg"]})
    bad = ItemName(2, stable_id(folder_id_key("b.jpg")), {"none": ["c.jpg"]})

    renamed = renamed_into(outer, inner, [good, bad])

    assert renamed == [ItemName(1, stable_id(folder_id_key("box/a.jpg")), {"none": ["box/a.jpg"]})]


def test_a_stale_item_with_the_new_id_of_a_file_gives_it_up(tmp_path):
    archive, store = tmp_path / "archive", tmp_path / "store"
    draw(archive / "box1" / "a.jpg", "circle", "red", 1)
    assert index(str(archive), store=store) == 0
    stale = records(store)[ids_of(archive)["box1/a.jpg"]][0]
    (archive / "box1" / "a.jpg").unlink()
    assert index(str(archive), store=store) == 0  # the archive holds nothing searchable now
    draw(archive / "box1" / "a.jpg", "square", "blue", 2)
    assert index(str(archive / "box1"), store=store) == 0
    trial = records(store)[ids_of(archive / "box1")["a.jpg"]][0]

    assert index(str(archive), store=store) == 0

    item_id = ids_of(archive)["box1/a.jpg"]
    assert records(store)[item_id] == (trial, archive.resolve().as_uri(), "indexed")
    assert summary(store)["embedded"] == 0
    assert stale not in blobs(store) and stale not in {k for k, _, _ in records(store).values()}


def test_a_gone_file_of_a_folder_taken_over_leaves_its_new_id_to_another_folder(tmp_path):
    archive, other, store = tmp_path / "archive", tmp_path / "other", tmp_path / "store"
    draw(other / "box1" / "x.jpg", "circle", "red", 1)  # the archive's box1/x.jpg id
    draw(archive / "box1" / "a.jpg", "square", "blue", 2)
    draw(archive / "box1" / "x.jpg", "star", "green", 3)
    assert index(str(other), str(archive / "box1"), store=store) == 0
    others = records(store)[ids_of(other)["box1/x.jpg"]]
    gone = records(store)[ids_of(archive / "box1")["x.jpg"]][0]
    (archive / "box1" / "x.jpg").unlink()
    assert index(str(archive / "box1"), store=store) == 0  # x.jpg marked removed

    assert index(str(archive), store=store) == 0

    assert records(store)[ids_of(other)["box1/x.jpg"]] == others  # untouched
    assert gone not in {key for key, _, _ in records(store).values()}
    assert summary(store)["removed"] == 0 and summary(store)["embedded"] == 0
