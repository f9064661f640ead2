"""Other web sites' pages calling the API (a museum's collection site): CORS, opt-in."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.cli import main as regard
from tests.regard_fixtures import start_service, stop_service

SITE = "https://collections.example.org"
ALLOW = "access-control-allow-origin"


def test_a_site_named_in_the_setting_may_call_the_api_from_its_pages(shapes_store: Path):
    service = start_service(shapes_store, env={"REGARD_CORS_ORIGINS": f"{SITE}, http://l:3000"})
    try:
        search = f"{service.url}/api/search?q=carr%C3%A9%20rouge"
        answer = httpx.get(search, headers={"Origin": SITE})
        assert answer.status_code == 200 and answer.headers[ALLOW] == SITE
        assert "origin" in answer.headers["vary"].lower()  # caches keep sites apart
        assert httpx.get(search, headers={"Origin": "http://l:3000"}).headers[ALLOW] == (
            "http://l:3000"
        )
        # Another site's pages get no leave to read the answer.
        assert ALLOW not in httpx.get(search, headers={"Origin": "https://other.example"}).headers
        # An error is readable too, so that the site can say what went wrong.
        missing = httpx.get(f"{service.url}/api/items/nothing", headers={"Origin": SITE})
        assert missing.status_code == 404 and missing.headers[ALLOW] == SITE
        # The browser's preflight: reading is allowed, nothing else is.
        asked = {"Origin": SITE, "Access-Control-Request-Method": "GET"}
        preflight = httpx.options(search, headers=asked)
        assert (
            preflight.status_code == 200
            and "GET" in preflight.headers["access-control-allow-methods"]
        )
        refused = httpx.options(
            search, headers={**asked, "Access-Control-Request-Method": "DELETE"}
        )
        assert refused.status_code == 400
        # A picture to search with may be posted, under its own type.
        by_picture = f"{service.url}/api/search/image"
        posting = {**asked, "Access-Control-Request-Method": "POST"}
        posting["Access-Control-Request-Headers"] = "content-type"
        preflight = httpx.options(by_picture, headers=posting)
        assert preflight.status_code == 200 and preflight.headers[ALLOW] == SITE
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
        sent = httpx.post(by_picture, content=b"", headers={"Origin": SITE})
        assert sent.status_code == 400 and sent.headers[ALLOW] == SITE  # its error is readable
        # A selection's export says what it left out in headers the site's page may read.
        exported = httpx.post(
            f"{service.url}/api/export/selection",
            json={"ids": [answer.json()["results"][0]["id"], "gone"]},
            headers={"Origin": SITE},
        )
        assert exported.status_code == 200 and exported.headers["x-regard-skipped"] == "1"
        exposed = exported.headers["access-control-expose-headers"].lower()
        assert "x-regard-skipped" in exposed and "x-regard-skipped-ids" in exposed
    finally:
        stop_service(service)


def test_without_the_setting_no_other_site_may(api: TestClient):
    answer = api.get("/api/search?q=carr%C3%A9", headers={"Origin": SITE})
    assert answer.status_code == 200 and ALLOW not in answer.headers


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("collections.example.org", "'collections.example.org' is not an origin"),
        (f"{SITE}/search", f"'{SITE}/search' is not an origin"),
        ("https://x.org:port", "'https://x.org:port' is not an origin"),
    ],
)
def test_a_value_that_is_no_origin_stops_serve_before_any_work(
    shapes_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    given: str,
    named: str,
):
    assert regard(["serve", "--store", str(shapes_store), "--cors-origins", given]) == 2
    error = capsys.readouterr().err
    assert "REGARD_CORS_ORIGINS" in error and named in error and "https://" in error
    monkeypatch.setenv("REGARD_CORS_ORIGINS", f"{SITE} {given}")
    assert regard(["serve", "--store", str(shapes_store)]) == 2
    assert named in capsys.readouterr().err


def test_a_public_address_that_is_no_url_stops_serve(
    shapes_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("REGARD_PUBLIC_URL", "collections.example.org/regard")
    assert regard(["serve", "--store", str(shapes_store)]) == 2
    error = capsys.readouterr().err
    assert "REGARD_PUBLIC_URL" in error and "https://" in error
