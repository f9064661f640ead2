"""Factories and fixtures for stores and services built the way a user builds them.

Registered as a pytest plugin by conftest.py. Everything here is real: the shapes
collection is served by the local IIIF server, indexed by the `regard` CLI with the
shipped `regard-test` model, and served by a real `regard serve` process.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.cli import main as regard
from service.settings import Settings
from tests.iiif_server import IIIFTestServer

# Pictures whose exact image is also served under a second id, as an extra canvas.
TWINS = ["red-circle-1", "blue-star-2"]
SHAPES_PER_PAIR = 4


def index(*sources: str, store: Path, model: str = "regard-test", extra: list[str] = ()) -> int:
    """Run `regard index` in-process, as the CLI would; returns its exit code."""
    return regard(["index", *sources, "--store", str(store), "--model", model, "--quiet", *extra])


def regard_command(*args: str) -> list[str]:
    """The `regard` console script of this environment, as a user runs it."""
    script = Path(sys.executable).with_name("regard")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "service.cli", *args]


def stored_vectors(store: Path) -> int:
    """How many vectors a store being written by another process holds now (0 before it
    has any): read without making the database file, which the run must make."""
    if not (store / "store.sqlite").exists():
        return 0
    try:
        with closing(sqlite3.connect(store / "store.sqlite", timeout=5)) as conn:
            return conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    except sqlite3.OperationalError:  # its tables not made yet
        return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveService:
    url: str
    store: Path
    process: subprocess.Popen


def start_service(
    store: Path, timeout: float = 60.0, env: dict[str, str] | None = None
) -> LiveService:
    """`regard serve` over `store` in a process of its own, with `env` (settings such as
    REGARD_MAX_K) added to this process's environment."""
    port = free_port()
    process = subprocess.Popen(
        regard_command("serve", "--store", str(store), "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"regard serve exited early:\n{process.stdout.read()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return LiveService(url, store, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"regard serve did not answer within {timeout} s")


def stop_service(service: LiveService) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        service.process.kill()


@pytest.fixture(scope="session")
def shapes_url(iiif_server: IIIFTestServer) -> str:
    return iiif_server.shapes_manifest_url(per_pair=SHAPES_PER_PAIR, twins=TWINS)


@pytest.fixture(scope="session")
def shapes_store(tmp_path_factory: pytest.TempPathFactory, shapes_url: str) -> Path:
    """A store of the shapes collection (with twins), indexed by the CLI."""
    store = tmp_path_factory.mktemp("shapes") / "store"
    assert index(shapes_url, store=store) == 0
    return store


@pytest.fixture(scope="session")
def api(shapes_store: Path) -> Iterator[TestClient]:
    """The application over the shapes store, in-process."""
    with TestClient(create_app(Settings(store=shapes_store))) as client:
        yield client


@pytest.fixture(scope="session")
def live_service(shapes_store: Path) -> Iterator[LiveService]:
    """A real `regard serve` process over the shapes store."""
    service = start_service(shapes_store)
    yield service
    stop_service(service)
