"""Which canvases a manifest has: every embedded v2 sequence, each canvas once; canvases
and sequences given only by reference, and manifests with no canvas, noted as skipped.

Built on the real e-codices, Library of Congress and Wellcome fixtures; where a test needs
a variant (a sequence given by reference, say), it edits a copy of the real document.
"""

from __future__ import annotations

import copy
import json
from contextlib import closing
from pathlib import Path

from indexer.iiif import Manifest, Skipped, parse_document
from indexer.iiif_canvas import DUPLICATE
from indexer.iiif_sequences import CANVAS_REFERENCE, NO_CANVAS, SEQUENCE_REFERENCE
from indexer.store import Store
from tests.iiif_server import FIXTURES, IIIFTestServer
from tests.regard_fixtures import index

GAU = "v2/ecodices_gau.json"  # "Standard" sequence (13 canvases), "Reader-friendly" (16)


def fixture(relpath: str) -> dict:
    return json.loads((FIXTURES / relpath).read_text(encoding="utf-8"))


def read(doc: dict) -> Manifest:
    parsed = parse_document(doc, "https://example.org/manifest.json")
    assert isinstance(parsed, Manifest)
    return parsed


def canvas_ids(sequence: dict) -> list[str]:
    return [canvas["@id"] for canvas in sequence["canvases"]]


def first_sequence_only(doc: dict) -> dict:
    return {**doc, "sequences": doc["sequences"][:1]}


# -- several sequences ---------------------------------------------------------------------


def test_every_canvas_of_every_sequence_is_indexed():
    doc = fixture(GAU)
    standard, reader_friendly = (canvas_ids(s) for s in doc["sequences"])
    extra = [c for c in reader_friendly if c not in standard]
    assert len(standard) == 13 and len(extra) == 12

    parsed = read(doc)

    assert parsed.canvas_count == 25
    indexes = {ref.canvas_id: ref.canvas_index for ref in parsed.images}
    # The standard order first, then the canvases only the reader-friendly one has.
    assert indexes == {canvas: n for n, canvas in enumerate(standard + extra)}
    # The canvases both list hold the same annotation twice: each image once.
    assert [s.reason for s in parsed.skipped] == [DUPLICATE] * 4


def test_item_ids_of_the_first_sequence_do_not_change():
    doc = fixture(GAU)
    alone = read(first_sequence_only(doc)).images
    both = read(doc).images
    assert both[: len(alone)] == alone


def test_a_sequence_that_reorders_the_same_canvases_adds_nothing():
    doc = fixture(GAU)
    alone = read(first_sequence_only(doc))
    standard = doc["sequences"][0]
    embedded = {**standard, "@id": standard["@id"] + "/reversed"}
    embedded["canvases"] = list(reversed(copy.deepcopy(standard["canvases"])))
    by_reference = {**embedded, "canvases": list(reversed(canvas_ids(standard)))}

    for reordered in (embedded, by_reference):
        parsed = read({**doc, "sequences": [standard, reordered]})
        assert parsed.images == alone.images
        assert parsed.skipped == alone.skipped
        assert parsed.canvas_count == alone.canvas_count == 13


def test_a_sequence_given_by_reference_is_noted_not_fetched():
    doc = fixture(GAU)
    reader_friendly = doc["sequences"][1]
    reference = {key: reader_friendly[key] for key in ("@id", "@type", "label")}

    parsed = read({**doc, "sequences": [doc["sequences"][0], reference]})

    assert len(parsed.images) == 13
    assert Skipped(reader_friendly["@id"], SEQUENCE_REFERENCE) in parsed.skipped


def test_an_embedded_copy_in_a_later_sequence_stands_in_for_a_reference():
    doc = fixture(GAU)
    standard, reader_friendly = copy.deepcopy(doc["sequences"])
    first = standard["canvases"][0]
    standard["canvases"][0] = first["@id"]
    reader_friendly["canvases"].append(first)

    parsed = read({**doc, "sequences": [standard, reader_friendly]})

    assert parsed.images == read(doc).images
    assert CANVAS_REFERENCE not in {s.reason for s in parsed.skipped}


# -- canvases given by reference, and none at all ------------------------------------------


def test_v2_canvases_given_by_reference_are_skipped_with_the_reason():
    doc = fixture("v2/loc_loc.json")
    canvases = doc["sequences"][0]["canvases"]
    whole = read(doc)
    as_string, as_stub = canvases[3]["@id"], canvases[5]["@id"]
    canvases[3] = as_string
    canvases[5] = {"@id": as_stub, "@type": "sc:Canvas", "label": canvases[5]["label"]}

    parsed = read(doc)

    assert parsed.skipped == [
        Skipped(as_string, CANVAS_REFERENCE, 3),
        Skipped(as_stub, CANVAS_REFERENCE, 5),
    ]
    assert parsed.canvas_count == whole.canvas_count == 55
    assert len(parsed.images) == 53
    assert [ref for ref in whole.images if ref.canvas_index not in (3, 5)] == parsed.images


def test_v3_canvases_given_by_reference_are_skipped_with_the_reason():
    doc = fixture("v3/wellcome_wellcome-p3.json")
    canvas = doc["items"][2]
    doc["items"][2] = {"id": canvas["id"], "type": "Canvas"}

    parsed = read(doc)

    assert parsed.skipped == [Skipped(canvas["id"], CANVAS_REFERENCE, 2)]
    assert parsed.canvas_count == 10 and len(parsed.images) == 9


def test_a_canvas_without_an_id_is_named_by_its_manifest_and_place():
    v2 = fixture("v2/loc_loc.json")
    del v2["sequences"][0]["canvases"][3]["@id"]
    v2_refs = [ref for ref in read(v2).images if ref.canvas_index == 3]
    assert v2_refs and {ref.canvas_id for ref in v2_refs} == {v2["@id"] + "#canvas=3"}

    v3 = fixture("v3/wellcome_wellcome-p3.json")
    del v3["items"][2]["id"]
    v3["items"][4] = ""  # a reference with no id at all
    parsed = read(v3)
    assert {ref.canvas_id for ref in parsed.images if ref.canvas_index == 2} == {
        v3["id"] + "#canvas=2"
    }
    assert parsed.skipped == [Skipped(v3["id"] + "#canvas=4", CANVAS_REFERENCE, 4)]


def test_a_manifest_without_canvases_says_so():
    v2 = fixture("edge/loc_2017498721.json")  # no sequences at all
    parsed = read(v2)
    assert parsed.images == [] and parsed.canvas_count == 0
    assert parsed.skipped == [Skipped(v2["@id"], NO_CANVAS)]

    v3 = {**fixture("v3/wellcome_wellcome-p3.json"), "items": []}
    assert read(v3).skipped == [Skipped(v3["id"], NO_CANVAS)]


# -- through a real run --------------------------------------------------------------------


def test_a_run_indexes_the_extra_sequence_and_stats_show_what_was_skipped(
    tmp_path: Path, iiif_server: IIIFTestServer
):
    iiif_server.reset()
    members = [GAU, "edge/loc_2017498721.json"]
    url = iiif_server.add_collection(
        "/sequences/collection.json", [iiif_server.url(m) for m in members]
    )
    store = tmp_path / "store"

    assert index(url, store=store) == 0

    with closing(Store.open(store)) as opened:
        stats = opened.stats()
    assert stats["manifests"] == 2 and stats["items"] == 25 and stats["failed"] == 0
    assert stats["skipped_by_reason"] == {DUPLICATE: 4, NO_CANVAS: 1}
