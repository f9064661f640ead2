"""The IIIF Presentation reader, over the real documents in tests/fixtures/iiif.

Expected counts were worked out from the JSON itself: the number of images painted on the
canvases of every sequence (v2, each canvas once) or of the canvases (v3), each image once.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from indexer.errors import NotIIIFError
from indexer.iiif import (
    Collection,
    Manifest,
    Reference,
    best_label,
    language_map,
    parse_document,
)
from indexer.iiif_canvas import AV_CONTENT, DUPLICATE, NO_IMAGE, PLACEHOLDER
from indexer.iiif_sequences import NO_CANVAS

FIXTURES = Path(__file__).parent / "fixtures" / "iiif"
DOCUMENTS = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json"))


def load(relpath: str) -> Manifest | Collection:
    return parse_document(json.loads((FIXTURES / relpath).read_text(encoding="utf-8")), relpath)


def manifest(relpath: str) -> Manifest:
    parsed = load(relpath)
    assert isinstance(parsed, Manifest)
    return parsed


def reasons(parsed: Manifest) -> Counter[str]:
    return Counter(skip.reason for skip in parsed.skipped)


# --- every document -----------------------------------------------------------------------


def test_all_shared_fixtures_were_copied():
    assert len(DOCUMENTS) == 80


@pytest.mark.parametrize("relpath", DOCUMENTS)
def test_every_fixture_reads_without_a_crash(relpath):
    if relpath.startswith("image-info/"):
        with pytest.raises(NotIIIFError, match="Image API info.json"):
            load(relpath)
        return
    parsed = load(relpath)
    assert parsed.id and parsed.version in (2, 3)
    if isinstance(parsed, Manifest):
        # Every canvas is accounted for: it gave an image or was skipped with a reason.
        indexes = {r.canvas_index for r in parsed.images} | {s.canvas_index for s in parsed.skipped}
        assert indexes - {None} == set(range(parsed.canvas_count))
        for ref in parsed.images:
            assert ref.image_url or ref.service
            assert len(ref.item_id) == 16
        assert len({ref.item_id for ref in parsed.images}) == len(parsed.images)


# --- manifests: exact counts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "version", "images", "skipped"),
    [
        ("v2/bl_bl-manifest.json", 2, 20, {}),
        ("v2/loc_loc.json", 2, 55, {}),
        ("v2/bodleian_bodleian-manifest.json", 2, 149, {}),
        ("v2/stanford_stanford-manifest.json", 2, 2, {}),
        ("v3/wellcome_wellcome-p3-2.json", 3, 36, {}),
        ("v3/yale_YaleCanterburyTalesV3ProviderNoLogo.json", 3, 170, {}),
        ("v3/internetarchive_manifest.3.ia-masterhighwaypla00char.json", 3, 204, {}),
        # Choice: the default (v2) or first (v3) option, once per canvas.
        ("edge/dlcs_body-choice.json", 2, 19, {}),
        ("v3/codexxolotl_manifest.3.codexxolotl.json", 3, 17, {}),
        ("edge/ghentcdh_ghent-choices.json", 3, 1, {}),
        # Several images on one canvas: one item each.
        ("edge/biblissima_biblissima-manifest.json", 2, 44, {}),
        ("edge/loc-prtd_hamilton.json", 3, 5, {}),
        ("edge/tudelft_exhibition-1.json", 3, 4, {}),
        # Canvases with no image.
        ("edge/biblissima_emptyCanvas.json", 2, 238, {NO_IMAGE: 84}),
        ("edge/iiifcookbook_0283-missing-image_manifest.json", 3, 3, {NO_IMAGE: 1}),
        ("edge/loc_2017498721.json", 2, 0, {NO_CANVAS: 1}),  # no sequences at all
        # Audio and video.
        ("edge/bl_bl-av-manifest.json", 3, 0, {AV_CONTENT: 2}),
        ("edge/nlw-gdmrdigital_choice.json", 3, 0, {AV_CONTENT: 1}),
        ("edge/villanova_audio.json", 2, 0, {PLACEHOLDER: 1, AV_CONTENT: 2}),
        # Several sequences: each canvas once; the same annotation twice: once.
        ("v2/ecodices_gau.json", 2, 25, {DUPLICATE: 4}),
        ("edge/ecodices_multipleSequences.json", 2, 2, {}),
        ("edge/wellcome_auth-megamix.json", 2, 5, {DUPLICATE: 2}),  # canvases repeated
        # No or odd @context, 'type' for '@type', zero-size canvas.
        ("edge/yale_Osbornfa1.json", 2, 1, {}),
        ("edge/bodleian_zeroWidthCanvas.json", 2, 1, {}),
        ("edge/yale_yale_decretum.json", 2, 787, {}),
        ("edge/internetarchive_plato.json", 2, 547, {}),
        ("edge/nlw_book-of-remembrance.json", 2, 1083, {}),
        ("edge/qdl_translations.json", 2, 498, {}),
        ("edge/vam_presentation3-paging.json", 3, 114, {}),
        ("edge/dlcs_manifest-l0.json", 2, 24, {}),
    ],
)
def test_manifests_give_one_item_per_painted_image(relpath, version, images, skipped):
    parsed = manifest(relpath)
    assert parsed.version == version
    assert len(parsed.images) == images
    assert reasons(parsed) == Counter(skipped)


def test_the_first_of_several_sequences_comes_first():
    parsed = manifest("edge/ecodices_multipleSequences.json")
    assert parsed.images[0].canvas_id.endswith("/canvas/gau-Fragment_frag001a.json")
    assert parsed.images[1].canvas_id.endswith("/canvas/gau-Fragment_frag001a_1r.json")


def test_v2_choice_indexes_the_default_and_notes_the_others():
    first = manifest("edge/dlcs_body-choice.json").images[0]
    assert first.image_url.endswith("X.010r_VIS/full/!2000,2000/0/default.jpg")
    assert [alt.split("/")[-5] for alt in first.choice_alternatives] == [
        "X.010r_IR",
        "X.010r_UVF",
        "X.010r_UVR",
    ]


def test_v3_choice_indexes_the_first_option():
    hamilton = manifest("edge/loc-prtd_hamilton.json").images
    assert "HL_524_1r_00_PSC" in hamilton[0].image_url
    assert len(hamilton[0].choice_alternatives) == 18
    assert [ref.image_index for ref in hamilton] == [0, 1, 2, 3, 4]
    assert {ref.canvas_id for ref in hamilton} == {"https://dvp.prtd.app/hamilton/canvas/p1.json"}


def test_several_images_on_one_canvas_keep_their_own_services():
    first, second = manifest("edge/biblissima_biblissima-manifest.json").images[:2]
    assert first.canvas_id == second.canvas_id
    assert (first.image_index, second.image_index) == (0, 1)
    assert (first.service.version, second.service.version) == (2, 1)


def test_specific_resources_give_their_source_and_region():
    refs = manifest("edge/tudelft_exhibition-1.json").images
    assert [ref.region for ref in refs] == [
        "4164,352,3702,5420",
        "4415,422,3758,5440",
        "4479,548,3718,5404",
        None,
    ]
    assert refs[0].image_url.endswith(
        "bdd5d699-94f9-465c-ae4a-d5d209f3c270/full/full/0/default.jpg"
    )
    assert refs[0].service.sizes[0] == (100, 74)


def test_image_size_is_the_resource_s_else_the_canvas_s():
    wellcome = manifest("v2/wellcome_wellcome-b18035723.json").images[0]
    assert (wellcome.width, wellcome.height) == (742, 1024)  # the resource, not the canvas
    assert wellcome.service.width == 2569  # the service states its own
    zero = manifest("edge/bodleian_zeroWidthCanvas.json").images[0]
    assert (zero.width, zero.height) == (None, None)  # 0 x 0 is no size


def test_image_service_versions_are_read_from_the_manifest():
    assert manifest("edge/yale_Osbornfa1.json").images[0].service.version == 1
    osborn = manifest("edge/yale_Osbornfa1.json").images[0].service
    assert (
        osborn.id == "https://images.britishart.yale.edu/iiif/b38081da-8991-4464-a71e-d9891226a35f"
    )
    bodleian = manifest("v3/bodleian_bodleian.json").images[0].service
    assert (bodleian.version, bodleian.level) == (3, 1)  # ImageService3 preferred to 2
    assert manifest("edge/dlcs_manifest-l0.json").images[0].service.level == 1


def test_http_ids_are_kept_as_they_are():
    parsed = manifest("v2/stanford_stanford-manifest.json")
    assert parsed.id.startswith("http://dms-data.stanford.edu/")


@pytest.mark.parametrize("odd", ["{{ id.url }}", "manifest.json", "/iiif/m", "", None, "urn:x:1"])
def test_an_id_that_is_not_an_absolute_url_becomes_where_the_document_was_read(odd, tmp_path):
    recipe = json.loads(
        (FIXTURES / "edge/iiifcookbook_0283-missing-image_manifest.json").read_text()
    )
    doc = {**recipe, "id": odd}
    url = "https://example.org/recipes/0283/manifest.json"
    assert parse_document(doc, url).id == url
    local = tmp_path / "0283.json"
    assert parse_document(doc, str(local)).id == local.resolve().as_uri()
    assert parse_document(doc, local.as_uri()).id == local.as_uri()
    assert parse_document({**doc, "id": "https://{{ host }}/m"}, url).id == url


def test_template_ids_no_longer_make_two_recipes_one_manifest():
    first, second = (
        parse_document(json.loads((FIXTURES / relpath).read_text()), f"https://example.org/{n}")
        for n, relpath in enumerate(
            [
                "edge/iiifcookbook_0283-missing-image_manifest.json",
                "edge/iiifcookbook_0006-text-language_manifest.json",
            ]
        )
    )
    assert (first.id, second.id) == ("https://example.org/0", "https://example.org/1")
    assert not {r.item_id for r in first.images} & {r.item_id for r in second.images}
    collection = json.loads(
        (FIXTURES / "collections/iiifcookbook_0032-collection_collection.json").read_text()
    )
    assert parse_document(collection, "https://example.org/c").id == "https://example.org/c"


def test_item_id_is_sha1_of_manifest_canvas_and_image():
    ref = manifest("v2/artic_manifest.2.artic-27992.json").images[0]
    key = f"{ref.manifest_id}\n{ref.canvas_id}\n{ref.image_url}"
    assert ref.item_id == hashlib.sha1(key.encode()).hexdigest()[:16]
    assert manifest("v2/artic_manifest.2.artic-27992.json").images[0].item_id == ref.item_id


def _v2_manifest(service: dict) -> dict:
    return {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": "https://x/manifest",
        "@type": "sc:Manifest",
        "label": "auth",
        "sequences": [
            {
                "canvases": [
                    {
                        "@id": "https://x/c1",
                        "width": 10,
                        "height": 10,
                        "images": [
                            {
                                "motivation": "sc:painting",
                                "resource": {
                                    "@id": "https://x/img/full/full/0/default.jpg",
                                    "@type": "dctypes:Image",
                                    "service": service,
                                },
                            }
                        ],
                    }
                ]
            }
        ],
    }


def test_images_behind_an_auth_service_are_skipped_with_the_kind():
    service = {
        "@context": "http://iiif.io/api/image/2/context.json",
        "@id": "https://x/img",
        "profile": "http://iiif.io/api/image/2/level2.json",
        "service": {"@id": "https://x/login", "profile": "http://iiif.io/api/auth/1/login"},
    }
    parsed = parse_document(_v2_manifest(service), "test")
    assert parsed.images == []
    assert reasons(parsed) == Counter({"image needs authentication (login)": 1})
    open_one = dict(service)
    del open_one["service"]
    assert len(parse_document(_v2_manifest(open_one), "test").images) == 1


# --- labels, metadata, rights ------------------------------------------------------------


def test_label_forms_met_in_the_wild():
    assert manifest("v2/europeana_BibliographicResource_3000126341277.json").label == {
        "none": ["Uusi Aura, nr: 274A - 1909-11-26"]
    }  # [{"@value": ...}]
    assert manifest("edge/dlcs_manifest-l0.json").label == {"none": ["level 0 example"]}
    assert "none" in manifest("v3/ubleipzig_manifest-00000004119.json").label  # "@none"
    assert manifest("edge/loc-prtd_hamilton.json").label == {
        "true": ["Letter from Alexander Hamilton Papers (September 6, 1780)"]
    }  # a bogus key, kept
    vam = manifest("edge/vam_presentation3-paging.json")
    assert vam.images[0].canvas_label == {"English": ["Front Cover"]}
    assert best_label(vam.images[0].canvas_label) == "Front Cover"


def test_labels_and_metadata_keep_every_language():
    whistler = manifest("edge/iiifcookbook_0006-text-language_manifest.json")
    assert whistler.label == {"en": ["Whistler's Mother"], "fr": ["La Mère de Whistler"]}
    assert best_label(whistler.label) == "La Mère de Whistler"
    assert best_label(whistler.label, prefer=("en",)) == "Whistler's Mother"
    assert whistler.metadata[0] == {
        "label": {"en": ["Creator"], "fr": ["Auteur"]},
        "value": {"none": ["Whistler, James Abbott McNeill"]},
    }
    assert whistler.required_statement == {"none": ["Musée d'Orsay, Paris, France"]}
    bsb = manifest("v2/bsb_digitale-sammlungen-bsb00026283.json")
    assert bsb.metadata[0]["label"] == {"de": ["Titel"], "zh": ["書名"], "en": ["Title"]}


def test_rights_and_attribution_of_both_versions():
    v2 = manifest("v2/europeana_BibliographicResource_3000126341277.json")
    assert v2.rights == ["http://creativecommons.org/publicdomain/mark/1.0/"]  # v2 license
    assert v2.required_statement and "Uusi Aura" in best_label(v2.required_statement)
    v3 = manifest("v3/ubleipzig_manifest-00000004119.json")
    assert v3.rights == ["https://creativecommons.org/publicdomain/mark/1.0/"]
    assert "Leipzig University Library" in v3.required_statement["en"][0]
    assert manifest("v2/bsb_digitale-sammlungen-bsb00026283.json").summary["en"]  # description


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Armchair", {"none": ["Armchair"]}),
        (["Armchair", "Chair"], {"none": ["Armchair", "Chair"]}),
        ({"@value": "Fauteuil", "@language": "fr"}, {"fr": ["Fauteuil"]}),
        (
            [{"@value": "Fauteuil", "@language": "fr"}, {"@value": "Armchair", "@language": "en"}],
            {"fr": ["Fauteuil"], "en": ["Armchair"]},
        ),
        ({"@value": "X1"}, {"none": ["X1"]}),
        ({"en": ["Armchair"], "@none": ["X1"]}, {"en": ["Armchair"], "none": ["X1"]}),
        ({"en": "Armchair"}, {"en": ["Armchair"]}),
        ({"true": [True]}, {"true": ["true"]}),
        ({"English": ["Front Cover"]}, {"English": ["Front Cover"]}),
        ({"en": [{"@value": "Armchair"}]}, {"en": ["Armchair"]}),
        (
            ["Armchair", {"@value": "Fauteuil", "@language": "fr"}],
            {"none": ["Armchair"], "fr": ["Fauteuil"]},
        ),
        ("", {}),
        (None, {}),
        (42, {"none": ["42"]}),
    ],
)
def test_language_map_normalises_every_form(value, expected):
    assert language_map(value) == expected


def test_best_label_order():
    lmap = {"en-GB": ["Armchair"], "none": ["X1"], "de": ["Sessel"]}
    assert best_label(lmap) == "Armchair"  # fr absent, en-GB matches en
    assert best_label(lmap, prefer=("fr",)) == "X1"  # then no-language
    assert best_label({"de": ["Sessel"]}, prefer=("fr",)) == "Sessel"  # then any
    assert best_label({"eng": ["Map"]}, prefer=("en",)) == "Map"
    assert best_label({}) == ""


# --- collections -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "manifests", "collections"),
    [
        ("collections/biblissima_biblissima-collection.json", 12, 0),
        ("collections/nlw_nlw-collection.json", 65, 0),  # members and manifests: each once
        ("collections/princeton_members-collection.json", 1, 1),
        ("collections/scta_collection-scta.json", 0, 205),  # no @context
        ("collections/wellcome_presentation-2_wellcome-collection.json", 4, 0),  # members
        ("collections/wellcome_presentation-3_wellcome-collection.json", 4, 0),  # v3 items
        ("collections/iiifcookbook_0032-collection_collection.json", 2, 0),
        ("collections/villanova_empty-collection.json", 0, 0),
        ("collections/villanova_nested-top.json", 0, 1),
        ("collections/villanova_nested-bottom.json", 9, 0),
        ("collections/wellcome_wellcome-b19974760_1.json", 16, 0),
    ],
)
def test_collections_list_their_members(relpath, manifests, collections):
    parsed = load(relpath)
    assert isinstance(parsed, Collection)
    assert (len(parsed.manifests), len(parsed.collections)) == (manifests, collections)


def test_nested_collections_name_their_children():
    top = load("collections/villanova_nested-top.json")
    assert top.collections == [
        Reference(
            "http://localhost:3001/nested-middle.json",
            {"none": ["Dime Novel and Popular Literature"]},
        )
    ]


def test_paged_collections_give_first_next_and_total():
    top = load("collections/bsb_paginated-collection.json")
    assert (
        top.first
        == "https://api.digitale-sammlungen.de/iiif/presentation/v2/collection/top?cursor=initial"
    )
    assert (top.total, top.manifests, top.next) == (3074231, [], None)
    page = load("collections/bsb_paginated-collection-page.json")
    assert len(page.manifests) == 250 and page.total == 3074231
    assert page.next.endswith("?cursor=AoIIP4AAACtic2IxMjAxODY5NA==")


# --- not IIIF ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ([], "is a JSON list, not a IIIF manifest"),
        ("Manifest", "is a JSON string, not a IIIF manifest"),
        (3, "is a JSON number, not a IIIF manifest"),
        (None, "is a JSON null, not a IIIF manifest"),
        (
            {"title": "x"},
            "is not a IIIF manifest or collection: it has no @type/type",
        ),
        (
            {"@type": "sc:Canvas", "@id": "c"},
            "has type 'sc:Canvas'; expected a Manifest or Collection",
        ),
        ({"@id": "x", "width": 1, "height": 1, "profile": "level1"}, "is an Image API info.json"),
    ],
)
def test_json_that_is_not_iiif_is_refused_with_a_readable_problem(doc, problem):
    with pytest.raises(NotIIIFError) as caught:
        parse_document(doc, "https://example.org/x.json")
    assert caught.value.source == "https://example.org/x.json"
    assert caught.value.problem.startswith(problem)
    assert str(caught.value).startswith("https://example.org/x.json: ")


def test_untyped_documents_are_read_when_their_keys_leave_no_doubt():
    parsed = parse_document({"@id": "m", "sequences": []}, "test")
    assert isinstance(parsed, Manifest) and parsed.version == 2
    assert isinstance(parse_document({"@id": "c", "manifests": []}, "test"), Collection)


def test_an_auth_2_probe_beside_the_image_service_protects_it():
    doc = _v2_manifest({"@id": "https://x/img", "profile": "level2", "@type": "ImageService3"})
    resource = doc["sequences"][0]["canvases"][0]["images"][0]["resource"]
    probe = {
        "id": "https://x/probe",
        "type": "AuthProbeService2",
        "service": [{"id": "https://x/access", "type": "AuthAccessService2", "profile": "kiosk"}],
    }
    resource["service"] = [resource["service"], probe]
    parsed = parse_document(doc, "test")
    assert [s.reason for s in parsed.skipped] == ["image needs authentication (kiosk)"]
