"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.iiif_server import IIIFTestServer

pytest_plugins = ["tests.regard_fixtures"]


@pytest.fixture(scope="session")
def iiif_server() -> Iterator[IIIFTestServer]:
    """The local IIIF server (fixtures, Image API, generated shapes) on a free port.

    Shared by the whole session: a test that sets failures or latency, or adds documents,
    calls `iiif_server.reset()` when done (see tests/iiif_server.py for the hooks).
    """
    with IIIFTestServer() as server:
        yield server


@pytest.fixture
def server(iiif_server: IIIFTestServer) -> Iterator[IIIFTestServer]:
    """The session's IIIF server, reset before and after the test: failures, latency,
    documents added and counters never leak from one test into another."""
    iiif_server.reset()
    yield iiif_server
    iiif_server.reset()
