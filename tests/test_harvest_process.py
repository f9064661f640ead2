"""Manifests read and saved in a process of their own, beside picture processes (a GPU's
way: indexer.harvest_process): the same store as in one process, resumable, and a clear
stop when that process fails or dies."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
import numpy as np
import pytest

from indexer import harvest_process
from indexer.errors import IndexerError
from indexer.fetch import FetchSettings
from indexer.harvest import Harvest, HarvestReport
from indexer.harvest_process import HarvestProcess
from indexer.pipeline import IndexOptions, run_index
from indexer.store import Store
from models import TEST_MODEL, Encoder
from tests.iiif_server import IIIFTestServer
from tests.test_picture_processes import new_store, vectors_by_canvas


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder(TEST_MODEL)


def test_manifests_read_apart_make_the_same_store_and_a_rerun_finds_them_unchanged(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder
):
    url = server.shapes_objects_url(per_pair=1, seed=920)  # 16 manifests, one image each
    found = {}
    for processes in (0, 1):
        path = tmp_path / f"store-{processes}"
        with closing(new_store(path, encoder)) as store:
            report = run_index([url], store, encoder, IndexOptions(processes=processes))
            harvest = report.harvest
            assert (harvest.manifests, harvest.images_found, report.embedded) == (16, 16, 16)
            found[processes] = vectors_by_canvas(path, store)
    assert found[0].keys() == found[1].keys() and len(found[1]) == 16
    assert all(np.array_equal(found[0][canvas], found[1][canvas]) for canvas in found[0])
    # The sources' validators were saved with the manifests: asked again, all unchanged,
    # nothing to embed, and so no picture process started.
    with closing(Store.open(tmp_path / "store-1")) as store:
        again = run_index([url], store, encoder, IndexOptions(processes=1))
    assert (again.harvest.manifests, again.harvest.unchanged) == (0, 16)
    assert (again.embedded, again.picture_processes) == (0, 0)


def test_the_manifests_saved_meanwhile_are_handed_on_together_in_order(
    tmp_path: Path, server: IIIFTestServer, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
):
    url = server.shapes_objects_url(per_pair=1, seed=922)  # 16 manifests
    members = [member["id"] for member in httpx.get(url).json()["items"]]
    monkeypatch.setattr(harvest_process, "GROUP", 4)
    path = tmp_path / "store"
    groups = []
    with closing(new_store(path, encoder)) as store:
        walk = HarvestProcess(path, FetchSettings(), None, store.begin_run([url]), 4)
        report = HarvestReport()
        for group in walk.walked([url], into=report):
            if not groups:  # meanwhile, the child saves the rest
                _wait_for(lambda: store.stats()["manifests"] == 16)
            groups.append(group)
    assert [manifest_id for group in groups for manifest_id, _ in group] == members
    assert not any(local for group in groups for _, local in group)
    assert max(len(group) for group in groups) == 4  # together, up to GROUP
    assert (report.manifests, report.images_found) == (16, 16)


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.05)


def _fails(harvest: Harvest) -> None:
    raise RuntimeError("the store could not be written")


def _dies(harvest: Harvest) -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the system's OOM killer does


@pytest.mark.parametrize(
    ("ending", "said"),
    [
        (_fails, r"stopped on an error.*run the same command.*could not be written"),
        (_dies, r"stopped unexpectedly.*run the same command to resume"),
    ],
)
def test_a_harvest_process_that_fails_or_dies_stops_the_run_with_what_to_do(
    tmp_path: Path,
    server: IIIFTestServer,
    encoder: Encoder,
    monkeypatch: pytest.MonkeyPatch,
    ending,
    said: str,
):
    url = server.shapes_objects_url(per_pair=1, seed=921)
    # The child is forked: it ends its walk this way, once every manifest is saved.
    monkeypatch.setattr(Harvest, "finish", ending)
    path = tmp_path / "store"
    with closing(new_store(path, encoder)) as store:
        with pytest.raises(IndexerError, match=f"(?s){said}"):
            run_index([url], store, encoder, IndexOptions(processes=1))
    monkeypatch.undo()
    with closing(Store.open(path)) as store:  # the store opens, the run marked failed
        last_run = store.stats()["last_run"]
        assert last_run["status"] == "failed"
        # with what the walk had found before it stopped
        assert (last_run["summary"]["manifests"], last_run["summary"]["images_found"]) == (16, 16)
        report = run_index([url], store, encoder, IndexOptions(processes=1))  # resumes
    assert report.harvest.unchanged + report.harvest.manifests == 16 and not report.failed
    with closing(Store.open(path)) as store:
        assert store.searchable_count() == 16
