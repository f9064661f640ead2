"""A result's way back to its source: the manifest's summary, rights, required statement,
record page and provider, read from real manifests, kept in a real store (old stores
migrate) and served by /api/items/{id}.

The manifests come from tests/fixtures/iiif (see SOURCES.md), served by the local IIIF
server, which rewrites their links to itself: a link's path keeps the original host.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.iiif import Manifest, parse_document
from indexer.schema import SCHEMA_VERSION
from indexer.store import Store
from service.app import create_app
from service.settings import Settings
from tests.iiif_server import IIIFTestServer
from tests.regard_fixtures import index

FIXTURES = Path(__file__).parent / "fixtures" / "iiif"

# Real manifests whose record fields the QA pass found lost or garbled.
RECORD_MANIFESTS = [
    "v2/nlw_nlw-manifest.json",  # rights as <a href=…> markup; description in en and cy-GB
    "edge/biblissima_emptyCanvas.json",  # two `license` values
    "edge/iiifcookbook_0006-text-language_manifest.json",  # "Détenu par"; fr summary
    "v3/wellcome_wellcome-p3-2.json",  # homepage, provider; canvas labels "-"
    "v2/gallica_manifest.2.gallica.bnf.12148.btv1b53243704g.f1.json",  # related: a string
    "v2/ubleipzig_ubl-0000000001.json",  # related: a page, and the manifest itself
    "v2/bsb_digitale-sammlungen-bsb00026283.json",  # "Lauingen<br/>um 1430"
    "v2/loc_loc.json",  # "&amp;" and <cite> in metadata values
    "v2/nls_nls-manifest.json",  # attribution "…Scotland<br/>License: <a …>"
    "v3/ubleipzig_manifest-00000004119.json",  # "…Library<br/>No Copyright"; labels "-"
    "edge/loc-prtd_hamilton.json",  # language key "true"
]


def manifest(relpath: str) -> Manifest:
    parsed = parse_document(json.loads((FIXTURES / relpath).read_text()), relpath)
    assert isinstance(parsed, Manifest)
    return parsed


def index_record_store(store: Path, iiif_server: IIIFTestServer) -> Path:
    iiif_server.reset()
    assert index(*[iiif_server.url(path) for path in RECORD_MANIFESTS], store=store) == 0
    return store


def first_item(store: Path, iiif_server: IIIFTestServer, relpath: str) -> str:
    """The id of the first image of a fixture manifest indexed in `store`."""
    with sqlite3.connect(store / "store.sqlite") as conn:
        row = conn.execute(
            "SELECT i.id FROM items i JOIN manifests m ON m.id = i.manifest_id "
            "WHERE m.source = ? ORDER BY i.canvas_index, i.image_index LIMIT 1",
            (iiif_server.url(relpath),),
        ).fetchone()
    assert row, f"nothing of {relpath} in {store}"
    return row[0]


@pytest.fixture(scope="module")
def record_store(tmp_path_factory, iiif_server: IIIFTestServer) -> Path:
    return index_record_store(tmp_path_factory.mktemp("records") / "store", iiif_server)


@pytest.fixture(scope="module")
def client(record_store: Path):
    with TestClient(create_app(Settings(store=record_store))) as client:
        yield client


@pytest.fixture
def item_of(client, record_store: Path, iiif_server: IIIFTestServer):
    def get(relpath: str) -> dict:
        response = client.get(f"/api/items/{first_item(record_store, iiif_server, relpath)}")
        assert response.status_code == 200, response.text
        return response.json()

    return get


# ---- the reader -------------------------------------------------------------------------


def test_every_rights_value_is_kept_and_markup_gives_its_url():
    assert manifest("edge/biblissima_emptyCanvas.json").rights == [
        "http://creativecommons.org/licenses/by-nc/4.0/",
        "https://gallica.bnf.fr/html/und/conditions-dutilisation-des-contenus-de-gallica",
    ]
    # license: '<a href="https://creativecommons.org/publicdomain/mark/1.0/">…</a>'
    assert manifest("v2/nlw_nlw-manifest.json").rights == [
        "https://creativecommons.org/publicdomain/mark/1.0/"
    ]
    assert manifest("v3/riksarkivet_manifest.3.riksarkivet-arkis-40008772.json").rights == [
        "https://creativecommons.org/publicdomain/mark/1.0/"
    ]


def test_record_pages_of_both_versions():
    wellcome = manifest("v3/wellcome_wellcome-p3-2.json")
    assert wellcome.homepage == [
        {
            "url": "https://wellcomecollection.org/works/krqp99r9",
            "label": {"en": ["Wunder der Vererbung / von Fritz Bolle."]},
            "language": ["en"],
        }
    ]
    assert [link["url"] for link in manifest("v2/wellcome_wellcome-b18035723.json").homepage] == [
        "https://wellcomecollection.org/works/krqp99r9"
    ]  # v2 related: one object, the same record
    gallica = manifest("v2/gallica_manifest.2.gallica.bnf.12148.btv1b53243704g.f1.json")
    assert gallica.homepage == [
        {"url": "https://gallica.bnf.fr/ark:/12148/btv1b53243704g", "label": {}, "language": []}
    ]  # a bare string
    # Leipzig lists its record page and the manifest itself: only the page is a record.
    assert [link["url"] for link in manifest("v2/ubleipzig_ubl-0000000001.json").homepage] == [
        "https://digital.ub.uni-leipzig.de/object/viewid/0000000001"
    ]
    bsb = manifest("v2/bsb_digitale-sammlungen-bsb00026283.json")
    assert [link["label"] for link in bsb.homepage] == [{"none": ["Details"]}, {"none": ["OPAC"]}]
    tudelft = manifest("edge/tudelft_exhibition-1.json")
    assert [link["language"] for link in tudelft.homepage] == [["nl"], ["en"]]


def test_only_web_pages_are_record_links():
    doc = json.loads(
        (FIXTURES / "v2/gallica_manifest.2.gallica.bnf.12148.btv1b53243704g.f1.json").read_text()
    )
    doc["related"] = [
        "javascript:alert(1)",
        {"@id": "https://example.org/record.xml", "format": "application/xml"},
        {"@id": "https://example.org/record", "format": "text/html"},
    ]
    assert [link["url"] for link in parse_document(doc, "x").homepage] == [
        "https://example.org/record"
    ]


def test_provider_with_its_label_and_homepage():
    (archive,) = manifest("v3/internetarchive_manifest.3.ia-masterhighwaypla00char.json").provider
    assert archive["label"] == {"en": ["The Internet Archive"]}
    assert [page["url"] for page in archive["homepage"]] == ["https://archive.org"]
    (riksarkivet,) = manifest("v3/riksarkivet_manifest.3.riksarkivet-arkis-40008772.json").provider
    assert riksarkivet["label"] == {"sv": ["Riksarkivet"], "en": ["National Archives of Sweden"]}


def test_the_required_statement_keeps_its_label():
    whistler = manifest("edge/iiifcookbook_0006-text-language_manifest.json")
    assert whistler.required_label == {"en": ["Held By"], "fr": ["Détenu par"]}
    assert whistler.required_statement == {"none": ["Musée d'Orsay, Paris, France"]}
    # v2 attribution has no label; LoC's {"true": [true]} names nothing.
    assert manifest("v2/nls_nls-manifest.json").required_label is None
    assert manifest("edge/loc-prtd_hamilton.json").required_label is None


# ---- the API, over a store indexed from the served manifests -----------------------------


def test_the_summary_is_served_in_every_language(item_of):
    whistler = item_of("edge/iiifcookbook_0006-text-language_manifest.json")
    assert whistler["summary"]["fr"] == [
        "Arrangement en gris et noir n°1, also called Portrait de la mère de l'artiste."
    ]
    assert set(item_of("v2/nlw_nlw-manifest.json")["summary"]) == {"en", "cy-GB"}


def test_rights_and_required_statement_are_served_whole(item_of):
    assert item_of("edge/biblissima_emptyCanvas.json")["rights"] == [
        "http://creativecommons.org/licenses/by-nc/4.0/",
        "https://gallica.bnf.fr/html/und/conditions-dutilisation-des-contenus-de-gallica",
    ]
    assert item_of("v2/nlw_nlw-manifest.json")["rights"] == [
        "https://creativecommons.org/publicdomain/mark/1.0/"
    ]
    whistler = item_of("edge/iiifcookbook_0006-text-language_manifest.json")
    assert whistler["required_statement_label"] == {"en": ["Held By"], "fr": ["Détenu par"]}
    assert whistler["required_statement"] == {"none": ["Musée d'Orsay, Paris, France"]}


def test_the_record_page_and_provider_are_served(item_of, iiif_server: IIIFTestServer):
    wellcome = item_of("v3/wellcome_wellcome-p3-2.json")
    assert wellcome["homepage"] == [
        {
            "url": iiif_server.rewrite("https://wellcomecollection.org/works/krqp99r9"),
            "label": {"en": ["Wunder der Vererbung / von Fritz Bolle."]},
            "language": ["en"],
        }
    ]
    (provider,) = wellcome["provider"]
    assert provider["label"]["en"][0] == "Wellcome Collection"
    assert [page["url"] for page in provider["homepage"]] == [
        iiif_server.rewrite("https://wellcomecollection.org/works")
    ]
    gallica = item_of("v2/gallica_manifest.2.gallica.bnf.12148.btv1b53243704g.f1.json")
    assert [link["url"] for link in gallica["homepage"]] == [
        iiif_server.rewrite("https://gallica.bnf.fr/ark:/12148/btv1b53243704g")
    ]


def test_placeholder_canvas_labels_give_way_to_the_manifest_label(item_of, client):
    for relpath in ("v3/wellcome_wellcome-p3-2.json", "v3/ubleipzig_manifest-00000004119.json"):
        item = item_of(relpath)  # its canvas is labelled "-"
        assert item["labels"] == {}
        assert item["label"] == item["manifest_label"] != "-"
    # Search results carry the same label.
    hits = client.get("/api/search", params={"q": "page", "k": 200}).json()["results"]
    assert hits and all(hit["label"].strip() not in ("-", "") for hit in hits)


# ---- a store written before these fields -------------------------------------------------


def as_version_1(store: Path) -> None:
    """Turn a store into what Regard wrote at schema 1: one rights text, none of the
    record columns."""
    conn = sqlite3.connect(store / "store.sqlite")
    with conn:
        for column in ("required_label", "homepage", "provider"):
            conn.execute(f"ALTER TABLE manifests DROP COLUMN {column}")
        for manifest_id, rights in conn.execute("SELECT id, rights FROM manifests").fetchall():
            first = json.loads(rights)[0] if rights else None
            conn.execute("UPDATE manifests SET rights = ? WHERE id = ?", (first, manifest_id))
        conn.execute("PRAGMA user_version = 1")
    conn.close()


def test_a_store_of_schema_1_migrates_and_the_next_run_fills_the_new_fields(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    wellcome, nlw = "v3/wellcome_wellcome-p3-2.json", "v2/nlw_nlw-manifest.json"
    store = index_record_store(tmp_path / "store", iiif_server)
    as_version_1(store)
    item_id = first_item(store, iiif_server, wellcome)

    # It opens, and serves what it had.
    opened = Store.open(store)
    assert opened._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert opened.get_item(item_id).rights == ["http://creativecommons.org/licenses/by-nc/4.0/"]
    before = opened.stats()
    with TestClient(create_app(Settings(store=store))) as client:
        item = client.get(f"/api/items/{item_id}").json()
    assert item["rights"] == ["http://creativecommons.org/licenses/by-nc/4.0/"]
    assert item["homepage"] == [] and item["provider"] == []
    opened.close()

    # The next run reads the manifests again, not the images, and fills the new fields.
    iiif_server.reset()
    assert index(iiif_server.url(wellcome), iiif_server.url(nlw), store=store) == 0
    assert iiif_server.count("/h/*") == 0
    after = Store.open(store)
    assert after.get_item(item_id).homepage[0]["label"] == {
        "en": ["Wunder der Vererbung / von Fritz Bolle."]
    }
    assert after.get_item(item_id).provider
    assert after.stats()["items"] == before["items"]
    assert after.stats()["generation"] == before["generation"]
