"""Pictures prepared in worker processes (indexer.picture_processes), as on a GPU.

The same vectors as the threads' bit for bit, the same politeness to each host across all
the processes, the same rule for local files, and a clear stop when a process dies.
Each run here starts real processes (a few seconds each on 2 cores).
"""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from indexer.encoders import fingerprint_record
from indexer.errors import IndexerError
from indexer.fetch import FetchSettings
from indexer.picture_processes import PicturePool, PictureSlots, auto_processes
from indexer.pipeline import IndexOptions, run_index
from indexer.store import Store
from models import TEST_MODEL, Encoder
from models.preprocess import stack_pixels
from tests.iiif_server import IIIFTestServer
from tests.interrupting import CtrlCOnSecondBatch
from tests.regard_fixtures import index
from tests.test_local_files import REFUSED, failures, manifest, picture, stats, write_json


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(TEST_MODEL)


def new_store(path: Path, encoder: Encoder) -> Store:
    store = Store.open(path, create=True)
    store.bind_model(encoder.name, encoder.pretrained, fingerprint_record(encoder))
    return store


def vectors_by_canvas(path: Path, store: Store) -> dict[str, np.ndarray]:
    with closing(sqlite3.connect(path / "store.sqlite")) as conn:
        rows = conn.execute("SELECT key, canvas_id FROM items WHERE state = 'indexed'").fetchall()
    found = {canvas: store.vector_of(key) for key, canvas in rows}
    return {canvas: vector for canvas, vector in found.items() if vector is not None}


def test_pixels_normalised_on_the_device_are_the_preprocessed_tensor_bit_for_bit(
    encoder: Encoder,
):
    rng = np.random.default_rng(0)
    shapes = [(300, 400), (64, 64), (500, 90)]  # resized, as is, and cropped
    images = [Image.fromarray(rng.integers(0, 256, (*s, 3), dtype=np.uint8)) for s in shapes]
    preprocessing = encoder.preprocessing
    pixels = np.stack([preprocessing.pixels(image) for image in images])
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 64, 64, 3)
    expected = torch.stack([encoder.preprocess(image) for image in images])
    assert torch.equal(preprocessing.normalise(torch.from_numpy(pixels)), expected)
    assert np.array_equal(encoder.embed_pixels(pixels), encoder.embed_tensors(expected))


def test_pictures_placed_one_after_another_are_batched_where_they_lie():
    slots = PictureSlots(6, (2, 2, 3))
    try:
        places = [slots.take() for _ in range(4)]
        assert places == [0, 1, 2, 3]  # in turn
        for place in places:
            slots[place][...] = place
        pictures = [slots.lease(place) for place in places]
        batch = stack_pixels(pictures[1:])
        assert np.shares_memory(batch, slots[1])  # read where it lies, not copied
        assert np.array_equal(batch, np.stack(pictures[1:]))
        # Not one after another (a picture between them failed): copied, the same pixels.
        apart = stack_pixels([pictures[0], pictures[2]])
        assert not np.shares_memory(apart, slots[0])
        assert np.array_equal(apart, np.stack([pictures[0], pictures[2]]))
        # Turn by turn round the file: a place still held is passed over.
        del pictures[1:3], batch
        assert [slots.take(), slots.take(), slots.take(), slots.take()] == [4, 5, 1, 2]
        assert (slots.take(), slots.free) == (None, 0)
        del pictures
        assert slots.free == 2 and slots.take() == 3
    finally:
        slots.unlink()


def test_processes_are_the_default_on_an_accelerator_only():
    assert auto_processes("cpu", cores=64) == 0
    assert auto_processes("cuda", cores=16) == 12  # one per core but two, at most 12
    assert auto_processes("cuda", cores=6) == 4
    assert auto_processes("cuda", cores=2) == 0


def test_a_run_in_processes_gives_the_threads_vectors_and_keeps_to_one_request_per_host(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder
):
    url = server.shapes_manifest_url(per_pair=1, seed=910, twins=[])
    server.latency = 0.01  # so that two requests at once would overlap on the server
    found = {}
    for processes in (0, 2):
        path = tmp_path / f"store-{processes}"
        options = IndexOptions(processes=processes, fetch=FetchSettings(per_host=1))
        with closing(new_store(path, encoder)) as store:
            report = run_index([url], store, encoder, options)
            assert report.embedded == 16 and not report.failed
            assert report.picture_processes == processes
            found[processes] = vectors_by_canvas(path, store)
        assert server.max_in_flight == 1, processes  # the manifest's request included
        server.max_in_flight = 0
    assert found[0].keys() == found[2].keys() and len(found[0]) == 16
    for canvas, vector in found[0].items():
        assert np.array_equal(vector, found[2][canvas]), canvas


def test_a_run_with_nothing_new_to_embed_starts_no_picture_process(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder
):
    url = server.shapes_manifest_url(per_pair=1, seed=914, twins=[])
    path = tmp_path / "store"
    options = IndexOptions(processes=2)
    with closing(new_store(path, encoder)) as store:
        first = run_index([url], store, encoder, options)
        again = run_index([url], store, encoder, options)  # the collection unchanged
        assert (first.embedded, first.picture_processes) == (16, 2)
        assert (again.embedded, again.picture_processes) == (0, 0)
        assert store.stats()["last_run"]["summary"]["picture_processes"] == 0


def test_ctrl_c_in_processes_keeps_what_had_come_back_and_says_what_ran(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder
):
    url = server.shapes_manifest_url(per_pair=3, seed=916, twins=[])  # 48 pictures
    path = tmp_path / "store"
    options = IndexOptions(processes=1, batch_size=8)
    with closing(new_store(path, encoder)) as store:
        with pytest.raises(KeyboardInterrupt):
            run_index([url], store, CtrlCOnSecondBatch(encoder), options)
        counts = store.stats()
    ours = [f"-{seed}/" for seed in (916, 917, 918)]  # per_pair=3: three seeds' shapes
    fetched = {key for _, key, _ in server.log if any(seed in key for seed in ours)}
    # The first batch, and every picture that had come back behind the second, are kept
    # (written by the vectors' thread before the run ended): none is fetched again.
    assert 8 < counts["items"] == len(fetched)
    assert counts["last_run"]["status"] == "interrupted"
    assert counts["last_run"]["summary"]["picture_processes"] == 1


def test_a_failed_image_is_recorded_from_a_process_as_from_a_thread(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder
):
    url = server.shapes_manifest_url(per_pair=1, seed=911, twins=[])
    server.fail("/shapes/iiif/*", "status", status=404, times=1)  # the first image asked
    path = tmp_path / "store"
    with closing(new_store(path, encoder)) as store:
        report = run_index([url], store, encoder, IndexOptions(processes=1))
        assert report.embedded == 15 and dict(report.failed) == {"HTTP 404 Not Found": 1}
        [failure] = store.failures()
    assert failure["stage"] == "fetch" and failure["reason"] == "HTTP 404 Not Found"


def test_processes_read_the_files_the_operator_named_and_refuse_those_a_remote_one_named(
    tmp_path: Path, server: IIIFTestServer
):
    base = server.base_url
    folder = tmp_path / "folder"
    for colour in ("red", "blue", "green"):
        picture(folder / f"{colour}.png", colour)
    mine = picture(tmp_path / "pictures" / "mine.jpg")
    local_doc = manifest(f"{base}/pp/local.json", f"{base}/pp/remote.jpg", mine.as_uri())
    server.add_document("/pp/local.json", local_doc)  # serves the remote image
    local_source = write_json(tmp_path / "local.json", local_doc)
    private = picture(tmp_path / "private" / "private.jpg")
    remote_source = server.add_document(
        "/pp/remote.json", manifest(f"{base}/pp/remote.json", private.as_uri())
    )
    store = tmp_path / "store"

    sources = [str(folder), str(local_source), remote_source]
    assert index(*sources, store=store, extra=["--processes", "2"]) == 0

    counts = stats(store)
    assert counts["items"] == 3 + 2 and counts["failed"] == 1
    [refused] = failures(store, items=True).values()
    assert refused["url"] == private.as_uri()
    assert refused["reason"] == f"not an http(s) URL: {REFUSED}"


def test_a_picture_process_that_dies_stops_the_run_with_what_to_do(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder
):
    url = server.shapes_manifest_url(per_pair=1, seed=912, twins=[])
    path = tmp_path / "store"
    with PicturePool.for_encoder(1, FetchSettings(), encoder, 10**8) as pool:
        for pid in list(pool._pool._processes):  # killed, as the system's OOM killer does
            os.kill(pid, signal.SIGKILL)
        with closing(new_store(path, encoder)) as store:
            with pytest.raises(IndexerError, match=r"--processes 0 to prepare them in threads"):
                run_index([url], store, encoder, IndexOptions(pictures=pool))
    with closing(Store.open(path)) as store:  # the store opens, the run marked failed
        assert store.stats()["last_run"]["status"] == "failed"


@contextmanager
def collector_off() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_every_place_is_free_after_a_run_and_a_picture_that_finds_none_comes_by_the_pipe(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder
):
    url = server.shapes_manifest_url(per_pair=1, seed=913, twins=[])
    found = []
    # Without the collector: a place is free once its picture is embedded, not once a
    # pass finds the garbage (a cycle would hold places, and pictures come by the pipe).
    with collector_off(), PicturePool.for_encoder(2, FetchSettings(), encoder, 10**8) as pool:
        places = pool.slots.free
        for run, squeeze in enumerate((False, True)):
            # Squeezed: every place taken, as by pictures held elsewhere.
            held = [pool.slots.take() for _ in range(places)] if squeeze else []
            path = tmp_path / f"store-{run}"
            with closing(new_store(path, encoder)) as store:
                report = run_index([url], store, encoder, IndexOptions(pictures=pool))
                assert report.embedded == 16 and not report.failed
                found.append(vectors_by_canvas(path, store))
            for place in held:
                pool.slots.give_back(place)
            assert pool.slots.free == places, run  # none kept by the run's pictures
    assert found[0].keys() == found[1].keys()
    assert all(np.array_equal(found[0][canvas], found[1][canvas]) for canvas in found[0])


class BreaksInAProcess:
    """An argument that cannot be rebuilt in a worker process: as a pool whose processes
    die as they start (a broken environment, no memory)."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_refuse, ())


def _refuse() -> None:
    raise RuntimeError("cannot be rebuilt here")


def test_every_process_has_started_and_mapped_the_pictures_file_before_its_name_goes(
    encoder: Encoder,
):
    # The first process to start used to answer every start, and the file's name went
    # before the others had mapped it: they failed as they started.
    with PicturePool.for_encoder(3, FetchSettings(), encoder, 10**8) as pool:
        assert sorted(pool.pids) == sorted(pool._pool._processes)
        assert not pool.slots.path.exists()


def test_processes_that_cannot_start_are_an_error_that_says_what_to_do(encoder: Encoder):
    with pytest.raises(IndexerError, match=r"could not start .*use --processes 0"):
        PicturePool(1, FetchSettings(), encoder.preprocessing, 64, BreaksInAProcess())  # type: ignore[arg-type]
