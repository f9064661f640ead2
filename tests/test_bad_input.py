"""Bad input: one clear message, a non-zero exit or a 4xx JSON error, nothing lost."""

from __future__ import annotations

import errno
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.store import Store
from indexer.store_lock import indexing_lock
from service.app import create_app
from service.cli import main as regard
from service.settings import Settings
from service.storage_errors import storage_problem
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import index, regard_command, stored_vectors

GOOD = "v3/vam_ocean-liners.json"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(regard_command(*args), capture_output=True, text=True, timeout=120)


def snapshot(store: Path) -> dict:
    stats = Store.open(store).stats()
    return {k: stats[k] for k in ("items", "failed", "manifests", "generation")}


@pytest.fixture
def small_store(tmp_path: Path, server: IIIFTestServer) -> Path:
    store = tmp_path / "store"
    assert index(server.url(GOOD), store=store) == 0
    return store


@pytest.mark.parametrize(
    ("mode", "kwargs", "message"),
    [
        ("status", {"status": 404}, "HTTP 404"),
        ("html", {}, "HTML page"),
        ("invalid_json", {}, "not valid JSON"),
        ("empty", {}, "empty"),
    ],
)
def test_an_unreadable_manifest_is_one_clear_line_and_the_store_is_as_it_was(
    server: IIIFTestServer, small_store: Path, mode: str, kwargs: dict, message: str
):
    before = snapshot(small_store)
    url = server.url("v2/artic_manifest.2.artic-27992.json")
    server.fail("/fixtures/v2/artic*", mode, **kwargs)
    result = run_cli("index", url, "--store", str(small_store), "--model", "regard-test", "--quiet")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if url in line]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(small_store) == before


def test_json_that_is_not_iiif_is_refused_and_no_store_is_left(tmp_path: Path, server):
    url = server.add_document("/docs/not-iiif.json", {"name": "a museum", "items": 3})
    store = tmp_path / "new-store"
    result = run_cli("index", url, "--store", str(store), "--model", "regard-test", "--quiet")
    assert result.returncode == 1
    assert url in result.stderr and "IIIF" in result.stderr
    assert not store.exists()


def test_a_first_run_that_reads_nothing_removes_only_what_it_made(
    tmp_path: Path, server, capsys: pytest.CaptureFixture[str]
):
    unreadable = server.add_document("/docs/not-iiif.json", {"name": "a museum", "items": 3})
    empty = tmp_path / "empty"
    empty.mkdir()
    assert regard(["index", unreadable, "--store", str(empty), "--model", "regard-test"]) == 1
    assert empty.is_dir() and list(empty.iterdir()) == []  # as it was: there and empty
    assert regard(["index", unreadable, "--store", str(empty), "--model", "no-such-model"]) == 1
    assert empty.is_dir() and list(empty.iterdir()) == []

    # A folder holding anything else is never made a store, so never emptied either.
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "thesis.txt").write_text("years of work")
    capsys.readouterr()
    assert regard(["index", unreadable, "--store", str(papers), "--model", "regard-test"]) == 1
    error = capsys.readouterr().err
    assert "holds other files and no Regard store" in error and "new or empty folder" in error
    assert [p.name for p in papers.iterdir()] == ["thesis.txt"]
    assert (papers / "thesis.txt").read_text() == "years of work"


def test_many_unread_members_are_named_up_to_a_limit_then_counted(
    tmp_path: Path, server, capsys: pytest.CaptureFixture[str]
):
    missing = [f"{server.base_url}/docs/gone-{n}.json" for n in range(25)]
    url = server.add_collection("/docs/mostly-gone.json", [server.url(GOOD), *missing])
    store = tmp_path / "s"
    assert regard(["index", url, "--store", str(store), "--model", "regard-test", "--quiet"]) == 1
    said = capsys.readouterr()
    named = [line for line in said.err.splitlines() if "/docs/gone-" in line]
    assert len(named) == 20 and all("HTTP 404" in line for line in named)
    assert f"… and 5 more sources not read: `regard failures --store {store}`" in said.err
    assert "  unread:  25 × HTTP 404" in said.out  # the summary counts them by problem
    assert Store.open(store).stats()["items"] > 0  # the readable member was indexed


def test_a_collection_that_names_no_manifest_says_so(
    tmp_path: Path, server, capsys: pytest.CaptureFixture[str]
):
    url = server.add_collection("/docs/empty-collection.json", [])
    store = tmp_path / "s"
    assert regard(["index", url, "--store", str(store), "--model", "regard-test", "--quiet"]) == 1
    assert "nothing was indexed: the sources name no manifest" in capsys.readouterr().err
    assert not store.exists()


def test_a_store_path_that_is_a_file_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a store")
    for command in (["index", "x.json"], ["stats"], ["serve"]):
        assert regard([*command, "--store", str(a_file)]) == 1
        error = capsys.readouterr().err
        assert f"{a_file} is a file, not a store folder" in error, error
    assert regard(["index", "x.json", "--store", str(a_file / "sub")]) == 1
    assert "cannot make the store folder" in capsys.readouterr().err
    assert a_file.read_text() == "not a store"


def test_a_second_index_run_on_one_store_stops_at_once_naming_the_first(
    small_store: Path, server, capsys: pytest.CaptureFixture[str]
):
    before = snapshot(small_store)
    with indexing_lock(small_store):  # as a run in progress holds it
        capsys.readouterr()
        assert regard(["index", server.url(GOOD), "--store", str(small_store), "--quiet"]) == 1
        error = capsys.readouterr().err
        assert f"another `regard index` (process {os.getpid()}) is indexing" in error, error
    assert snapshot(small_store) == before
    # Released: the next run goes ahead.
    assert regard(["index", server.url(GOOD), "--store", str(small_store), "--quiet"]) == 0


def test_serve_says_a_busy_port_before_loading_and_reads_regard_port(
    small_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert regard(["serve", "--store", str(small_store), "--port", str(port)]) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
        monkeypatch.setenv("REGARD_PORT", str(port))  # no --port: the setting is used
        assert regard(["serve", "--store", str(small_store)]) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_setting_that_means_nothing_stops_a_command_before_any_work(
    small_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.setenv("REGARD_INDEX_NPROBE", "abc")
    store = tmp_path / "new"
    assert regard(["index", "x.json", "--store", str(store)]) == 2
    assert "REGARD_INDEX_NPROBE='abc' is not a whole number" in capsys.readouterr().err
    assert not store.exists()
    assert regard(["serve", "--store", str(small_store)]) == 2
    assert "REGARD_INDEX_NPROBE='abc'" in capsys.readouterr().err
    monkeypatch.delenv("REGARD_INDEX_NPROBE")
    monkeypatch.setenv("REGARD_MAX_K", "many")
    assert regard(["serve", "--store", str(small_store)]) == 2
    error = capsys.readouterr().err
    assert "a setting means nothing: REGARD_MAX_K:" in error and "Traceback" not in error


def test_an_index_too_large_for_memory_at_the_end_of_a_run_keeps_the_run_and_says_so(
    tmp_path: Path, server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("REGARD_INDEX_MEMORY_LIMIT", "10")  # bytes: no index fits
    store = tmp_path / "s"
    assert index(server.url(GOOD), store=store) == 1
    said = capsys.readouterr()
    assert "image(s) embedded now" in said.out  # the summary, as after any run
    assert "the search index was not built" in said.err and "MEMORY_LIMIT" in said.err
    kept = Store.open(store).stats()
    assert kept["items"] > 0 and kept["last_run"]["status"] == "finished"
    assert "REGARD_INDEX_MEMORY_LIMIT" in kept["last_run"]["summary"]["index_refused"]


def test_a_disk_that_takes_no_more_stops_the_run_plainly_and_it_resumes(tmp_path: Path):
    folder = tmp_path / "drawings"
    folder.mkdir()
    count = 400
    for n in range(count):
        Image.new("RGB", (160, 120), (n % 256, 255 - n % 256, (n * 37) % 256)).save(
            folder / f"d{n:03d}.jpg"
        )
    store = tmp_path / "store"
    command = regard_command("index", str(folder), "--store", str(store), "--model", "regard-test")
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A write past a file size limit then fails, as on a full disk, rather than
        # stopping the process.
        preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline:
        if stored_vectors(store) >= 8:  # the disk fills once the run is under way
            files = [path.stat().st_size for path in store.glob("store.sqlite*")]
            resource.prlimit(run.pid, resource.RLIMIT_FSIZE, (max(files), max(files)))
            break
        time.sleep(0.02)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 1, out + err
    assert "Traceback" not in err
    assert f"the store in {store} (" in err and "MB free on its disk" in err
    assert "could not be written" in err and "file size limit" in err
    assert "run the same command to resume" in err
    kept = Store.open(store).stats()["items"]  # the store opens, with what was committed
    assert 8 <= kept < count
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{count - kept} image(s) embedded now" in again.stdout  # none twice
    assert Store.open(store).stats()["items"] == count


def test_storage_errors_are_told_as_such_and_others_left_alone(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "small.sqlite")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("PRAGMA max_page_count = 2")  # a full disk, as SQLite reports it
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    told = storage_problem(full.value, tmp_path)
    assert told is not None and told.startswith("the disk is full")
    assert f"in {tmp_path} (" in told and "run the same command to resume" in told
    no_space = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert "the disk is full" in (storage_problem(no_space, tmp_path) or "")
    with pytest.raises(sqlite3.OperationalError) as other:
        conn.execute("SELECT nothing FROM t")
    assert storage_problem(other.value, tmp_path) is None
    assert storage_problem(FileNotFoundError(errno.ENOENT, "gone"), tmp_path) is None


def test_a_missing_local_file_is_named(tmp_path: Path):
    missing = tmp_path / "nope.json"
    result = run_cli(
        "index", str(missing), "--store", str(tmp_path / "s"), "--model", "regard-test"
    )
    assert result.returncode == 1
    assert str(missing) in result.stderr and "no such file" in result.stderr


def test_a_local_manifest_file_is_indexed(tmp_path: Path, server: IIIFTestServer):
    # A file on disk whose images are on the (test) web, as a museum exporting its manifests.
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(httpx.get(server.url("v3/kranenburgh_ldmax.json")).content)
    assert index(str(manifest), store=tmp_path / "store") == 0
    assert Store.open(tmp_path / "store").stats()["items"] == 6


def test_images_that_fail_are_recorded_and_the_run_goes_on(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=1, seed=100, twins=[])
    server.fail("/shapes/iiif/red-circle-100/*", "status", status=404)
    server.fail("/shapes/iiif/blue-star-100/*", "truncated")
    server.fail("/shapes/iiif/green-square-100/*", "html")
    store = tmp_path / "store"
    assert index(url, store=store) == 0
    stats = Store.open(store).stats()
    assert stats["items"] == 13 and stats["failed"] == 3
    reasons = " | ".join(stats["failed_by_reason"])
    assert "HTTP 404" in reasons and "truncated or corrupt" in reasons and "text/html" in reasons

    listing = run_cli("failures", "--store", str(store))
    assert listing.returncode == 0
    assert "red-circle-100" in listing.stdout and "HTTP 404" in listing.stdout
    assert run_cli("stats", "--store", str(store)).stdout.count("failed:    3") == 1

    # "More like this" for a failed image says why it has no vector and what to do.
    failed = next(f for f in Store.open(store).failures() if "red-circle-100" in f["url"])
    with TestClient(create_app(Settings(store=store))) as api:
        answer = api.get(f"/api/items/{failed['item_id']}/similar")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "no_vector"
    message = answer.json()["error"]["message"]
    assert "its image failed (HTTP 404" in message and "`regard index` tries it again" in message

    # the server mends; the next run embeds only the three that failed
    server.reset()
    assert index(url, store=store) == 0
    stats = Store.open(store).stats()
    assert stats["items"] == 16 and stats["failed"] == 0
    assert server.count("/shapes/iiif/*") == 3


def test_a_store_refuses_another_model(small_store: Path, server):
    result = run_cli("index", server.url(GOOD), "--store", str(small_store), "--model", "ViT-B-32")
    assert result.returncode == 1
    assert "regard-test" in result.stderr and "new --store" in result.stderr


def test_stats_of_a_missing_store_says_how_to_make_one(tmp_path: Path):
    result = run_cli("stats", "--store", str(tmp_path / "none"))
    assert result.returncode == 1 and "regard index" in result.stderr


def test_a_read_only_store_is_said_plainly_and_left_as_it_was(
    small_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    def files() -> list[str]:  # SQLite's -wal and -shm come and go with its connections
        names = (p.name for p in small_store.iterdir())
        return sorted(name for name in names if not name.endswith(("-wal", "-shm")))

    before, counts = files(), snapshot(small_store)
    # As on a read-only mount (which root, running these tests, could write through chmod).
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: real_access(p, mode) and Path(p) != small_store
    )
    for command in ("stats", "failures", "serve"):
        assert regard([command, "--store", str(small_store)]) == 1
        error = capsys.readouterr().err
        assert f"the store {small_store} is read-only here" in error, error
        assert "Traceback" not in error
    monkeypatch.undo()
    assert files() == before and snapshot(small_store) == counts


# -- the API -------------------------------------------------------------------------------


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code
    return body["error"]["message"]


@pytest.mark.parametrize(
    ("params", "status", "code", "words"),
    [
        ({"q": ""}, 400, "empty_query", "empty"),
        ({"q": "   "}, 400, "empty_query", "empty"),
        ({"q": "x" * 501}, 400, "query_too_long", "limit is 500"),
        ({"q": "chaise", "k": 0}, 400, "k_out_of_range", "out of range"),
        ({"q": "chaise", "k": 100000}, 400, "k_out_of_range", "out of range"),
        ({"q": "chaise", "k": "many"}, 422, "invalid_request", "k"),
    ],
)
def test_bad_queries_get_a_json_error(api, params: dict, status: int, code: str, words: str):
    response = api.get("/api/search", params=params)
    assert response.status_code == status
    assert words in error_of(response)
    assert response.json()["error"]["code"] == code


def test_unknown_item_is_a_404_that_says_where_ids_come_from(api):
    for path in ("/api/items/nope", "/api/items/nope/similar"):
        response = api.get(path)
        assert response.status_code == 404
        assert "/api/search" in error_of(response)


def test_similar_k_out_of_range(api):
    item = api.get("/api/search", params={"q": "circle", "k": 1}).json()["results"][0]
    response = api.get(f"/api/items/{item['id']}/similar", params={"k": 0})
    assert response.status_code == 400 and "out of range" in error_of(response)


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/nothing-here")
    assert response.status_code == 404 and "/api" in error_of(response)


# -- images and documents that misbehave (the harvesting issue's list) ----------------------


@pytest.mark.parametrize(
    ("mode", "kwargs", "reason"),
    [
        ("empty", {}, "empty response (0 bytes)"),
        ("corrupt", {}, "corrupt"),
        ("truncated", {}, "truncated or corrupt"),
        ("invalid_json", {}, "not an image"),
        ("redirect_loop", {}, "redirect"),
        ("status", {"status": 410}, "HTTP 410"),
        ("status", {"status": 500}, "HTTP 500"),
        ("reset", {}, "network error"),
    ],
)
def test_each_bad_image_is_a_recorded_failure_with_its_reason(
    tmp_path: Path, server: IIIFTestServer, mode: str, kwargs: dict, reason: str
):
    url = server.shapes_manifest_url(per_pair=1, seed=1000, twins=[])
    server.fail("/shapes/iiif/yellow-star-1000/*", mode, **kwargs)
    store = tmp_path / "store"
    assert index(url, store=store, extra=["--timeout", "5"]) == 0
    stats = Store.open(store).stats()
    assert stats["items"] == 15 and stats["failed"] == 1
    (recorded,) = stats["failed_by_reason"]
    assert reason in recorded


def test_an_image_labelled_with_the_wrong_type_is_still_used(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=1, seed=1001, twins=[])
    server.fail("/shapes/iiif/*", "wrong_type")
    assert index(url, store=tmp_path / "s") == 0
    assert Store.open(tmp_path / "s").stats()["items"] == 16


def test_a_manifest_labelled_with_the_wrong_type_is_still_read(tmp_path: Path, server):
    url = server.url(GOOD)
    server.fail("/fixtures/v3/vam*", "wrong_type")
    assert index(url, store=tmp_path / "s") == 0
    assert Store.open(tmp_path / "s").stats()["items"] == 1


def test_an_image_of_too_many_pixels_is_refused_before_decoding(tmp_path: Path, server):
    # A level-0 service can only give its whole image: here 1200 x 900 = 1.08 MP.
    url = server.url("v2/harvardartmuseums_299843.json")
    store = tmp_path / "store"
    assert index(url, store=store, extra=["--max-pixels", "1000"]) == 0
    stats = Store.open(store).stats()
    assert stats["items"] == 0 and stats["failed"] == 6
    assert all("exceeds the limit of 1,000 pixels" in r for r in stats["failed_by_reason"])


def test_a_slow_server_times_out_and_the_run_goes_on(tmp_path: Path, server):
    url = server.shapes_manifest_url(per_pair=1, seed=1002, twins=[])
    server.fail("/shapes/iiif/red-star-1002/*", "slow", delay=3.0)
    store = tmp_path / "store"
    assert index(url, store=store, extra=["--timeout", "0.5"]) == 0
    stats = Store.open(store).stats()
    assert stats["items"] == 15 and list(stats["failed_by_reason"]) == ["timed out"]


def test_a_manifest_redirect_loop_is_named(tmp_path: Path, small_store: Path, server):
    url = server.url("v2/artic_manifest.2.artic-27992.json")
    server.fail("/fixtures/v2/artic*", "redirect_loop")
    result = run_cli("index", url, "--store", str(small_store), "--model", "regard-test")
    assert result.returncode == 1 and "redirect" in result.stderr


def test_a_five_megabyte_manifest_is_read(tmp_path: Path, server):
    base = httpx.get(server.shapes_manifest_url(per_pair=1, seed=1003, twins=[])).json()
    padding = [{"label": {"en": [f"note {i}"]}, "value": {"en": ["x" * 500]}} for i in range(9000)]
    big = dict(base, metadata=padding)
    url = server.add_document("/docs/big-manifest.json", big, rewrite=False)
    assert len(httpx.get(url).content) > 5_000_000
    store = tmp_path / "store"
    assert index(url, store=store) == 0
    assert Store.open(store).stats()["items"] == 16


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--workers", "0", "0 is too small: give 1 or more"),
        ("--batch-size", "-4", "-4 is too small"),
        ("--per-host", "two", "'two' is not a whole number"),
        ("--max-pixels", "0", "0 is too small"),
        ("--timeout", "0", "0 is too small: give more than 0"),
        ("--timeout", "nan", "nan is too small"),
    ],
)
def test_a_count_or_timeout_that_means_nothing_is_refused_before_anything_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, words: str
):
    store = tmp_path / "store"
    with pytest.raises(SystemExit) as stopped:
        regard(["index", "x.json", "--store", str(store), option, value])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}" in error and words in error, error
    assert not store.exists()
