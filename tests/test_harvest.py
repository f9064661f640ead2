"""Harvesting real collections: politely, resumably, and re-harvesting only what changed."""

from __future__ import annotations

import copy
import gc
import io
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from indexer.encoders import fingerprint_record
from indexer.fetch import Fetcher, FetchSettings
from indexer.harvest import Harvest
from indexer.imageapi import ImageService
from indexer.pipeline import (
    IndexOptions,
    NoProgress,
    ServiceInfos,
    prepared_in_order,
    run_index,
)
from indexer.store import PendingItem, Store
from models import TEST_MODEL, Encoder
from tests.iiif_images import BitmapPicture
from tests.iiif_server import IIIFTestServer
from tests.interrupting import CtrlCOnSecondBatch
from tests.regard_fixtures import index, regard_command, stored_vectors


def stats(store: Path) -> dict:
    return Store.open(store).stats()


def last_run(store: Path) -> dict:
    return stats(store)["last_run"]["summary"]


def search_ids(store: Path) -> set[str]:
    conn = sqlite3.connect(store / "store.sqlite")
    return {row[0] for row in conn.execute("SELECT id FROM items WHERE state = 'indexed'")}


def shapes_doc(server: IIIFTestServer, seed: int, per_pair: int = 1) -> dict:
    url = server.shapes_manifest_url(per_pair=per_pair, seed=seed, twins=[])
    return httpx.get(url).json()


def test_a_collection_of_manifests_is_harvested_whole(tmp_path: Path, server):
    store = tmp_path / "store"
    assert index(server.shapes_collection_url(per_pair=1, seed=300), store=store) == 0
    counts = stats(store)
    assert counts["manifests"] == 16 and counts["items"] == 16 and counts["failed"] == 0


def test_a_collection_of_one_manifest_per_image_is_harvested_whole(tmp_path: Path, server):
    store = tmp_path / "store"
    assert index(server.shapes_objects_url(per_pair=2, seed=301), store=store) == 0
    counts = stats(store)
    assert counts["manifests"] == 32 and counts["items"] == 32 and counts["failed"] == 0
    assert len(search_ids(store)) == 32


def test_reharvest_fetches_only_what_changed_and_marks_the_gone_removed(tmp_path: Path, server):
    doc = shapes_doc(server, seed=400)
    url = server.add_document("/docs/changing.json", doc, rewrite=False)
    store = tmp_path / "store"
    assert index(url, store=store) == 0
    first = search_ids(store)
    assert len(first) == 16

    # unchanged: the manifest is asked conditionally (304) and no image is fetched
    server.reset()
    server.add_document("/docs/changing.json", doc, rewrite=False)
    assert index(url, store=store) == 0
    assert last_run(store)["unchanged_manifests"] == 1
    assert server.count("/shapes/iiif/*") == 0
    assert [status for _, key, status in server.log if key == "/docs/changing.json"] == [304]

    # changed: one canvas gone, one new: only the new image is fetched
    changed = copy.deepcopy(doc)
    gone = changed["items"].pop(0)
    changed["items"].append(shapes_doc(server, seed=401)["items"][0])
    server.reset()
    server.add_document("/docs/changing.json", changed, rewrite=False)
    assert index(url, store=store) == 0
    assert server.count("/shapes/iiif/*") == 1
    counts = stats(store)
    assert counts["items"] == 16 and counts["removed"] == 1
    assert last_run(store)["removed"] == 1
    now = search_ids(store)
    assert len(now - first) == 1 and len(first - now) == 1

    # removed items are kept but hidden from search
    conn = sqlite3.connect(store / "store.sqlite")
    (state,) = conn.execute("SELECT state FROM items WHERE canvas_id = ?", (gone["id"],)).fetchone()
    assert state == "removed"

    # and the canvas that comes back is searchable again without a download
    server.reset()
    server.add_document("/docs/changing.json", doc, rewrite=False)
    assert index(url, store=store) == 0
    assert server.count(gone["items"][0]["items"][0]["body"]["service"][0]["id"] + "/*") == 0
    assert (
        conn.execute("SELECT state FROM items WHERE canvas_id = ?", (gone["id"],)).fetchone()[0]
        == "indexed"
    )


# With picture processes, the manifests are read and saved in a process of their own.
@pytest.mark.parametrize("processes", ["0", "1"])
def test_a_manifest_that_leaves_its_collection_is_removed(tmp_path: Path, server, processes):
    a = server.shapes_manifest_url(per_pair=1, seed=500, twins=[])
    b = server.shapes_manifest_url(per_pair=1, seed=501, twins=[])
    url = server.add_collection("/docs/coll.json", [a, b])
    store = tmp_path / "store"
    extra = ["--processes", processes]
    assert index(url, store=store, extra=extra) == 0
    assert stats(store)["items"] == 32

    # a collection page that fails proves nothing gone: nothing is removed
    server.reset()
    server.add_collection("/docs/coll.json", [a, b])
    server.fail(b, "status", status=503)
    assert index(url, store=store, extra=extra) == 1
    assert stats(store)["items"] == 32 and stats(store)["removed"] == 0

    server.reset()
    server.add_collection("/docs/coll.json", [a])
    assert index(url, store=store, extra=extra) == 0
    counts = stats(store)
    assert counts["items"] == 16 and counts["removed"] == 16
    assert last_run(store)["removed"] == 16

    # It comes back as it was: read again (not taken as unchanged, which would leave it
    # removed) and searchable again, with the vectors it had.
    server.reset()
    server.add_collection("/docs/coll.json", [a, b])
    assert index(url, store=store, extra=extra) == 0
    counts = stats(store)
    assert counts["items"] == 32 and counts["removed"] == 0
    run = last_run(store)
    assert (run["manifests"], run["unchanged_manifests"], run["embedded"]) == (1, 1, 0)


def test_a_canvas_cut_from_a_local_manifest_file_is_counted_removed(tmp_path: Path, server, capsys):
    doc = shapes_doc(server, seed=520)
    source = tmp_path / "manifest.json"
    source.write_text(json.dumps(doc))
    store = tmp_path / "store"
    assert index(str(source), store=store) == 0
    assert stats(store)["items"] == 16

    doc["items"] = doc["items"][2:]  # two canvases cut
    source.write_text(json.dumps(doc))
    capsys.readouterr()
    assert index(str(source), store=store) == 0

    assert stats(store)["items"] == 14 and stats(store)["removed"] == 2
    assert last_run(store)["removed"] == 2 and last_run(store)["embedded"] == 0
    assert "0 failed, 2 removed;" in capsys.readouterr().out


def test_requests_to_one_host_are_limited(tmp_path: Path, server):
    server.latency = 0.05
    url = server.shapes_manifest_url(per_pair=2, seed=600, twins=[])
    assert index(url, store=tmp_path / "s", extra=["--per-host", "2", "--workers", "8"]) == 0
    assert server.max_in_flight == 2


class BatchLog:
    """Progress that notes the size of each batch of vectors written."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def manifest_read(self) -> None:
        pass

    def images_queued(self, count: int) -> None:
        pass

    def images_done(self, count: int) -> None:
        self.batches.append(count)


def test_a_slow_server_gets_short_batches_so_the_model_keeps_up(tmp_path: Path, server):
    server.latency = 0.1  # 2 requests at once: 20 images/s, far below the model
    url = server.shapes_manifest_url(per_pair=3, seed=650, twins=[])
    store = Store.open(tmp_path / "s", create=True)
    encoder = Encoder(TEST_MODEL, device="cpu")
    store.bind_model(TEST_MODEL, "", fingerprint_record(encoder))
    options = IndexOptions(batch_size=32, fetch=FetchSettings(per_host=2))
    log = BatchLog()
    report = run_index([url], store, encoder, options, log)
    assert report.embedded == sum(log.batches) == 48
    # Not two full batches with the model idle while the first fills: a batch goes
    # from a quarter full when the next image is slow to come.
    assert len(log.batches) > 2
    assert all(size >= 32 // 4 for size in log.batches[:-1])


def test_the_first_batches_ramp_up_so_the_model_starts_early(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=3, seed=655, twins=[])  # 48 images
    store = Store.open(tmp_path / "s", create=True)
    encoder = Encoder(TEST_MODEL, device="cpu")
    store.bind_model(TEST_MODEL, "", fingerprint_record(encoder))
    log = BatchLog()
    report = run_index([url], store, encoder, IndexOptions(batch_size=16), log)
    assert report.embedded == sum(log.batches) == 48
    # a quarter, then at most a half, then full batches: the model does not wait for a
    # whole batch before it starts
    assert log.batches[0] == 4 and log.batches[1] <= 8 and max(log.batches) == 16


class FrozenCounts(BatchLog):
    """Notes, at each batch, how many objects the garbage collector was told to skip."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen: list[int] = []

    def images_done(self, count: int) -> None:
        super().images_done(count)
        self.frozen.append(gc.get_freeze_count())


def test_the_collector_skips_what_outlives_the_run_and_has_it_back_after(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=1, seed=657, twins=[])
    store = Store.open(tmp_path / "s", create=True)
    encoder = Encoder(TEST_MODEL, device="cpu")
    store.bind_model(TEST_MODEL, "", fingerprint_record(encoder))
    log = FrozenCounts()
    alive = len(gc.get_objects())  # the modules, the model, the store...
    assert gc.get_freeze_count() == 0
    report = run_index([url], store, encoder, IndexOptions(batch_size=4), log)
    assert report.embedded == sum(log.batches) == 16 and len(log.frozen) > 1
    # During the run the collector's passes leave them out (indexer.heap)...
    assert all(frozen >= alive * 0.9 for frozen in log.frozen)
    # ...and once it ends they are the collector's again.
    assert gc.get_freeze_count() == 0


def test_ctrl_c_keeps_every_download_that_had_finished(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=3, seed=670, twins=[])  # 48 images
    store = Store.open(tmp_path / "s", create=True)
    encoder = Encoder(TEST_MODEL, device="cpu")
    store.bind_model(TEST_MODEL, "", fingerprint_record(encoder))
    with pytest.raises(KeyboardInterrupt):
        run_index([url], store, CtrlCOnSecondBatch(encoder), IndexOptions(batch_size=8))
    fetched = [key for _, key, _ in server.log if key.startswith("/shapes/iiif/")]
    kept = store.stats()["items"]
    store.close()
    # Beyond the two batches in hand, the window's finished downloads were embedded:
    # the next run fetches none of them again.
    assert kept == len(fetched) > 2 + 4
    assert index(url, store=tmp_path / "s") == 0
    again = [key for _, key, _ in server.log if key.startswith("/shapes/iiif/")]
    assert len(again) == len(set(again)) == 48


def test_downloads_are_topped_up_as_each_image_is_handed_on(tmp_path: Path, server):
    # The window of downloads stays full: a batch handed to the model leaves the next
    # one already in flight, instead of a gap of one server answer after every batch.
    url = server.shapes_manifest_url(per_pair=4, seed=660, twins=[])  # 64 images
    store = Store.open(tmp_path / "s", create=True)
    encoder = Encoder(TEST_MODEL, device="cpu")
    store.bind_model(TEST_MODEL, "", fingerprint_record(encoder))
    options = IndexOptions(batch_size=8, workers=2)
    window = 16  # two batches
    pulled = 0

    def counted(items: Iterator[PendingItem]) -> Iterator[PendingItem]:
        nonlocal pulled
        for item in items:
            pulled += 1
            yield item

    with Fetcher(options.fetch) as fetcher:
        harvest = Harvest(store, fetcher, store.begin_run([url]), NoProgress(), 1)
        images = prepared_in_order(counted(harvest.pending_items([url])), fetcher, encoder, options)
        in_flight = []
        for handed, (prepared, _) in enumerate(images, start=1):
            assert not prepared.error
            in_flight.append(pulled - handed)
        assert handed == 64
    # full once the first images are in (at most a window's worth of them), and to the end
    assert window in in_flight
    filled = in_flight.index(window)
    assert filled <= window
    assert in_flight[filled:] == [window] * (64 - window - filled) + list(range(window - 1, -1, -1))


def test_a_slow_walk_of_manifests_does_not_hold_finished_images_back(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=2, seed=665, twins=[])  # 32 images
    store = Store.open(tmp_path / "s", create=True)
    encoder = Encoder(TEST_MODEL, device="cpu")
    store.bind_model(TEST_MODEL, "", fingerprint_record(encoder))
    options = IndexOptions(batch_size=8, workers=2)  # a window of 16
    pulled = 0

    def slow_after_two(items: Iterator[PendingItem]) -> Iterator[PendingItem]:
        nonlocal pulled
        for item in items:
            if pulled >= 2:
                time.sleep(0.1)  # as if each came from a manifest still to fetch
            pulled += 1
            yield item

    with Fetcher(options.fetch) as fetcher:
        harvest = Harvest(store, fetcher, store.begin_run([url]), NoProgress(), 1)
        images = prepared_in_order(
            slow_after_two(harvest.pending_items([url])), fetcher, encoder, options
        )
        first, _ = next(images)
        assert not first.error
        # handed on once it was ready, not after the walk had filled the whole window
        assert pulled < 16
        images.close()


def test_manifests_read_while_others_were_saved_are_saved_together(tmp_path: Path, server):
    url = server.shapes_objects_url(per_pair=1, seed=923)  # 16 manifests of one picture
    members = [member["id"] for member in httpx.get(url).json()["items"]]
    store = Store.open(tmp_path / "s", create=True)
    store.bind_model("toy", "", {"key": "toy", "dim": 4})
    run = store.begin_run([url])
    commits: list[str] = []
    store.reader().set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip() == "COMMIT" else None
    )
    groups = []
    with Fetcher(FetchSettings()) as fetcher:
        harvest = Harvest(store, fetcher, run, NoProgress(), 4)
        for group in harvest.walked([url]):
            if not groups:
                time.sleep(0.5)  # a slow save: the walkers read the next ones meanwhile
            groups.append(group)
    assert [manifest_id for group in groups for manifest_id, _ in group] == members
    assert max(len(group) for group in groups) > 1
    assert len(commits) == len(groups)  # a commit a group, not a manifest
    assert (harvest.report.manifests, harvest.report.images_found) == (16, 16)
    assert (store.stats()["manifests"], store.stats()["pending"]) == (16, 16)


def static_services(server: IIIFTestServer, count: int) -> list[ImageService]:
    """Level 0 services as a manifest describes them, by id alone: their info.json gives
    their size."""
    picture = BitmapPicture(Image.new("RGB", (300, 200), (90, 120, 150)))
    return [
        ImageService(server.add_image_service(f"/static/{n}", picture, level=0), 2, level=0)
        for n in range(count)
    ]


def test_info_json_is_read_once_a_run_by_threads_that_ask_at_once(server):
    (service,) = static_services(server, 1)
    server.latency = 0.2  # every thread asks while the first answer is still coming
    infos = ServiceInfos()
    with Fetcher() as fetcher, ThreadPoolExecutor(8) as pool:
        described = list(pool.map(lambda _: infos.described(service, fetcher), range(8)))
    assert server.count(service.id + "/info.json") == 1
    assert {(s.id, s.width, s.height) for s in described} == {(service.id, 300, 200)}


def test_info_json_kept_is_bounded_to_the_services_used_last(server):
    first, second, third = static_services(server, 3)
    infos = ServiceInfos(capacity=2)
    with Fetcher() as fetcher:
        for service in (first, second, first, third, first, second):
            infos.described(service, fetcher)
    # `second` was the least recently used when `third` came: read again; `first` never.
    assert [server.count(s.id + "/info.json") for s in (first, second, third)] == [1, 2, 1]


def test_retry_after_is_honoured_and_the_run_goes_on(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=1, seed=700, twins=[])
    server.fail("/shapes/iiif/red-circle-700/*", "429", times=1, retry_after=1)
    server.fail("/shapes/iiif/blue-circle-700/*", "status", status=503, times=2)
    server.fail("/shapes/iiif/green-circle-700/*", "reset", times=1)
    assert index(url, store=tmp_path / "s") == 0
    counts = stats(tmp_path / "s")
    assert counts["items"] == 16 and counts["failed"] == 0
    assert server.count("/shapes/iiif/red-circle-700/*") == 2


def test_user_agent_names_regard_and_the_contact(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=1, seed=800, twins=[])
    assert index(url, store=tmp_path / "s", extra=["--contact", "archives@example.org"]) == 0
    (agent,) = server.user_agents
    assert agent.startswith("Regard/") and "archives@example.org" in agent


def run_until(
    store: Path, url: str, at_least: int, sig: int, processes: int = 0
) -> subprocess.Popen:
    """Start `regard index` and send it `sig` once `at_least` vectors are stored."""
    process = subprocess.Popen(
        regard_command(
            "index", url, "--store", str(store), "--model", "regard-test", "--quiet",
            "--batch-size", "4", "--workers", "2", "--processes", str(processes),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background (`cmd &` in a script)
        # passes SIGINT on ignored, and Python then never turns it into Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if stored_vectors(store) >= at_least:
            os.kill(process.pid, sig)
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    return process


# SIGTERM (systemd, docker stop) stops a run as Ctrl-C does; so it does with the pictures
# prepared in processes (as on a GPU), which are stopped with it.
@pytest.mark.parametrize(
    ("sig", "processes"),
    [
        (signal.SIGKILL, 0),
        (signal.SIGINT, 0),
        (signal.SIGTERM, 0),
        (signal.SIGINT, 2),
        (signal.SIGKILL, 2),
    ],
)
def test_an_interrupted_run_resumes_without_downloading_again(
    tmp_path: Path, server, sig, processes
):
    server.latency = 0.03  # slow enough to be stopped in the middle
    url = server.shapes_manifest_url(per_pair=3, seed=900 + sig + processes, twins=[])
    store = tmp_path / "store"
    process = run_until(store, url, at_least=8, sig=sig, processes=processes)
    if sig in (signal.SIGINT, signal.SIGTERM):
        assert process.returncode == 130
        assert "run the same command to resume" in process.stderr.read()
    else:
        assert process.returncode == -signal.SIGKILL
    # The processes' pictures' file is gone with them, however the run ended.
    for folder in (Path("/dev/shm"), Path(tempfile.gettempdir())):
        assert not list(folder.glob(f"regard-pictures-{process.pid}-*"))
    kept = Store.open(store)
    done = {item.id: item for item in kept.items_by_key(list(range(1, 49))).values()}
    stored = {i for i, item in done.items() if item.state == "indexed"}
    assert 8 <= len(stored) < 48

    # Requests the stopped run had already sent may still be answered: let them finish
    # before counting afresh.
    time.sleep(0.2)
    deadline = time.monotonic() + 10
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    server.reset()
    assert index(url, store=store) == 0
    counts = stats(store)
    assert counts["items"] == 48 and counts["failed"] == 0 and counts["pending"] == 0
    # The stopped run is on record as such; one killed outright, once the next run began.
    with closing(sqlite3.connect(store / "store.sqlite")) as conn:
        statuses = [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY id")]
    stopped = "aborted" if sig == signal.SIGKILL else "interrupted"
    assert statuses == [stopped, "finished"]
    # no image whose vector was kept is downloaded again, and none twice
    fetched = [key for _, key, _ in server.log if key.startswith("/shapes/iiif/")]
    assert len(fetched) == len(set(fetched)) == 48 - len(stored)
    kept_paths = {urlsplit(done[i].service["id"]).path + "/" for i in stored}
    assert not [key for key in fetched if key.startswith(tuple(kept_paths))]


def test_a_folder_of_images_is_indexed_and_kept_in_step(tmp_path: Path, capsys):
    from models.shapes import ShapeSpec, render

    scans = tmp_path / "scans"
    (scans / "box-1").mkdir(parents=True)
    (scans / "box-2").mkdir()
    render(ShapeSpec("circle", "red", 1), 200).save(scans / "box-1" / "a.jpg")
    render(ShapeSpec("square", "blue", 2), 200).save(scans / "box-1" / "b.png")
    render(ShapeSpec("star", "green", 3), 200).save(scans / "box-2" / "c.webp")
    render(ShapeSpec("triangle", "yellow", 4), 200).save(scans / "box-2" / "d.tiff")
    (scans / "notes.txt").write_text("not an image")
    store = tmp_path / "store"
    assert index(str(scans), store=store) == 0
    counts = stats(store)
    assert counts["items"] == 4 and counts["failed"] == 0

    # a file changed is embedded again; a file deleted is removed; nothing else is redone
    render(ShapeSpec("circle", "green", 5), 240).save(scans / "box-1" / "a.jpg")
    (scans / "box-2" / "d.tiff").unlink()
    generation = counts["generation"]
    capsys.readouterr()
    assert index(str(scans), store=store) == 0
    counts = stats(store)
    assert counts["items"] == 3 and counts["removed"] == 1
    assert last_run(store)["embedded"] == 1 and last_run(store)["removed"] == 1
    assert "0 failed, 1 removed;" in capsys.readouterr().out
    assert counts["generation"] > generation


def test_a_moved_folder_keeps_its_items_and_vectors(tmp_path: Path):
    from models.shapes import ShapeSpec, render

    scans = tmp_path / "scans"
    scans.mkdir()
    for i, colour in enumerate(["red", "blue", "green"]):
        render(ShapeSpec("circle", colour, i), 128).save(scans / f"{colour}.jpg")
    store = tmp_path / "store"
    assert index(str(scans), store=store) == 0
    before = search_ids(store)

    moved = tmp_path / "archive-2026"
    scans.rename(moved)
    assert index(str(moved), store=store) == 0
    assert search_ids(store) == before
    assert last_run(store)["embedded"] == 0 and stats(store)["removed"] == 0


def test_folder_images_are_served_by_the_service(tmp_path: Path):
    from fastapi.testclient import TestClient
    from PIL import Image

    from models.shapes import ShapeSpec, render
    from service.app import create_app
    from service.settings import Settings

    scans = tmp_path / "scans"
    scans.mkdir()
    render(ShapeSpec("star", "red", 1), 600).save(scans / "red star.png")
    store = tmp_path / "store"
    assert index(str(scans), store=store) == 0
    with TestClient(create_app(Settings(store=store))) as client:
        hit = client.get("/api/search", params={"q": "red star", "k": 1}).json()["results"][0]
        assert hit["label"] == "red star.png"
        thumbnail = client.get(hit["thumbnail_url"])
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 256
        full = client.get(hit["image_url"])
        assert Image.open(io.BytesIO(full.content)).size == (600, 600)
