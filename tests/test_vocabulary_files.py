"""Thesaurus files (CSV, SKOS, Joconde lists) read into one shape: real slices in
tests/fixtures/vocab (see its SOURCES.md), the bundled vocabularies, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.vocabulary import Concept, Vocabulary, VocabularyError, read_vocabulary

FIXTURES = Path(__file__).parent / "fixtures" / "vocab"
BUNDLED = Path(__file__).parent.parent / "indexer" / "vocabularies"
ARK = "https://ark.frantiq.fr/ark:/26678/"
SILKNOW = "http://data.silknow.org/vocabulary/"


def by_label(vocabulary: Vocabulary, label: str, language: str = "fr") -> Concept:
    [concept] = [c for c in vocabulary.concepts if c.labels.get(language) == label]
    return concept


def joconde_id(stem: str, label: str) -> str:
    return next(
        c.id for c in read_vocabulary(FIXTURES / f"{stem}.txt").concepts if c.labels["fr"] == label
    )


# --- CSV ---------------------------------------------------------------------------------


def test_csv_slice_reads_concepts_labels_and_parents_in_file_order():
    vocabulary = read_vocabulary(FIXTURES / "pactols-slice.csv")
    assert vocabulary.format == "csv"
    assert len(vocabulary.concepts) == 48
    assert vocabulary.concepts[0].labels == {"fr": "entités matérielles", "en": "material entity"}
    assert vocabulary.languages == ("fr", "en")  # semi-méplat has no English label
    assert vocabulary.title == {} and vocabulary.warnings == ()
    meuble = by_label(vocabulary, "meuble")
    assert meuble.id == ARK + "pcrtUt7XJjD0Si"
    assert meuble.labels == {"fr": "meuble", "en": "furniture"}
    assert meuble.alt_labels == {
        "fr": ("ameublement",),
        "en": ("item of furniture", "piece of furniture"),
    }
    assert by_label(vocabulary, "lit").broader == (meuble.id,)
    assert by_label(vocabulary, "semi-méplat").labels == {"fr": "semi-méplat"}
    assert by_label(vocabulary, "entités matérielles").broader == ()
    assert meuble.notation is None


@pytest.mark.parametrize(
    ("name", "count"),
    [("iconclass-decorative-arts.csv", 400), ("pactols-decorative-arts.csv", 202)],
)
def test_bundled_vocabularies_read_whole_without_warnings(name, count):
    vocabulary = read_vocabulary(BUNDLED / name)
    assert len(vocabulary.concepts) == count
    assert len({c.id for c in vocabulary.concepts}) == count
    assert set(vocabulary.languages) == {"fr", "en"}
    assert vocabulary.warnings == ()


def test_bundled_iconclass_keeps_quoted_commas_and_its_single_root():
    vocabulary = read_vocabulary(BUNDLED / "iconclass-decorative-arts.csv")
    root = vocabulary.concepts[0]
    assert root.labels == {
        "fr": "Société, Civilisation, Culture",
        "en": "Society, Civilization, Culture",
    }
    assert root.alt_labels["en"] == ("civilization", "culture", "society")
    assert [c.id for c in vocabulary.concepts if not c.broader] == ["http://iconclass.org/4"]


def test_csv_variants_bom_semicolons_notation_other_languages_and_skipped_rows(tmp_path):
    path = tmp_path / "export.csv"
    text = (
        "ID;pref_label_de;pref_label_fr;alt_label_fr;broader_id;notation;scheme\n"
        "urn:a;Stuhl; chaise ;siège |  | chaise;urn:root | urn:other;41A711;x\n"
        "urn:a;Sessel;fauteuil;;;;\n"
        "urn:b;;;seulement alt;;;\n"
        ";Tisch;table;;;;\n"
        "urn:c;;lampe;;urn:c;;\n"
    )
    path.write_bytes(text.encode("utf-8-sig"))  # spreadsheets write a byte-order mark
    vocabulary = read_vocabulary(path)
    [chair, lamp] = vocabulary.concepts
    assert chair == Concept(
        id="urn:a",
        labels={"de": "Stuhl", "fr": "chaise"},
        alt_labels={"fr": ("siège",)},  # the repeated preferred label is not an alternative
        broader=("urn:root", "urn:other"),
        notation="41A711",
    )
    assert lamp.broader == ()  # a concept is not its own parent
    assert vocabulary.languages == ("fr", "de")
    assert vocabulary.warnings == (
        f"{path}:3: row skipped: id urn:a already on an earlier row",
        f"{path}:4: row skipped: urn:b has no pref_label_* value",
        f"{path}:5: row skipped: its id cell is empty",
    )


# --- SKOS --------------------------------------------------------------------------------


def test_skos_turtle_slice_labels_alternatives_and_parents():
    vocabulary = read_vocabulary(FIXTURES / "silknow-slice.ttl")
    assert vocabulary.format == "skos"
    assert len(vocabulary.concepts) == 26  # the collection and the scheme are not concepts
    ids = [c.id for c in vocabulary.concepts]
    assert ids == sorted(ids)
    assert vocabulary.languages == ("en", "es", "it", "fr")  # silknow:886 has no French
    assert vocabulary.title == {}  # the SILKNOW scheme has a version but no title
    assert vocabulary.warnings == ()
    bird = by_label(vocabulary, "Oiseau")
    assert bird.labels == {"en": "Bird", "es": "Pájaro", "fr": "Oiseau", "it": "Uccello"}
    assert bird.alt_labels == {
        "en": ("birds",),
        "es": ("ave", "pájaros"),
        "it": ("augello", "pennuto"),
    }
    # Two parents: one in the thesaurus, one a Wikidata entity.
    assert bird.broader == (SILKNOW + "747", "http://www.wikidata.org/entity/Q5113")
    isabella = by_label(vocabulary, "Isabelle")
    assert "http://vocab.getty.edu/aat/300129784" in isabella.broader
    assert by_label(vocabulary, "Thread", "en").broader == ("http://vocab.getty.edu/aat/300231580",)
    assert "fr" not in by_label(vocabulary, "Yarn by origin", "en").labels
    # silknow:7000 is no concept of the file: the parent is kept all the same.
    assert by_label(vocabulary, "Festive attire", "en").broader == (SILKNOW + "7000",)


def test_skos_rdf_xml_gives_the_same_concepts_as_turtle():
    turtle = read_vocabulary(FIXTURES / "silknow-slice.ttl")
    rdf_xml = read_vocabulary(FIXTURES / "silknow-slice.rdf")
    assert rdf_xml == turtle


SKOS_ODD = """\
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix : <http://example.org/> .

:scheme a skos:ConceptScheme ; skos:prefLabel "ignored"@en ;
    dct:title "Mobilier Royère"@fr, "Royère furniture"@en .
:furniture a skos:Concept ; skos:prefLabel "mobilier" ; skos:notation "M" ;
    skos:narrower :chair .
:chair a skos:Concept ; skos:prefLabel "siège"@fr, "chaise"@fr, "chair"@en ;
    skos:altLabel "seat"@en .
:lamp a skos:Concept ; rdfs:label "lampe"@fr ; skos:broader :furniture, :furniture .
:sconce a skos:Concept ; skos:altLabel "applique"@fr, "bras de lumière"@fr .
:nothing a skos:Concept ; skos:notation "X" .
"""


def test_skos_title_notation_narrower_and_label_fallbacks(tmp_path):
    path = tmp_path / "royere.ttl"
    path.write_text(SKOS_ODD, encoding="utf-8")
    vocabulary = read_vocabulary(path)
    assert vocabulary.title == {"fr": "Mobilier Royère", "en": "Royère furniture"}
    concepts = {c.id.removeprefix("http://example.org/"): c for c in vocabulary.concepts}
    assert list(concepts) == ["chair", "furniture", "lamp", "sconce"]
    assert concepts["furniture"].notation == "M"
    assert concepts["chair"].broader == ("http://example.org/furniture",)  # from skos:narrower
    assert concepts["lamp"].broader == ("http://example.org/furniture",)
    # Two French prefLabels: the first in sort order wins, the other stays an alternative.
    assert concepts["chair"].labels == {"en": "chair", "fr": "chaise"}
    assert concepts["chair"].alt_labels == {"en": ("seat",), "fr": ("siège",)}
    assert concepts["lamp"].labels == {"fr": "lampe"}  # rdfs:label
    assert concepts["sconce"].labels == {"fr": "applique"}  # the first altLabel
    assert concepts["sconce"].alt_labels == {"fr": ("bras de lumière",)}
    # Untagged labels are filed under "und", and one warning says how to name them.
    assert concepts["furniture"].labels == {"und": "mobilier"}
    assert vocabulary.warnings == (
        f"{path}: concept http://example.org/nothing skipped: it has no label",
        f"{path}: 1 labels have no language tag and are filed under 'und': "
        "pass default_language (e.g. 'fr') to give them one",
    )
    french = read_vocabulary(path, default_language="fr")
    assert french.concepts[1].labels == {"fr": "mobilier"}
    assert len(french.warnings) == 1


def test_skos_without_concept_types_takes_the_subjects_with_a_pref_label(tmp_path):
    path = tmp_path / "untyped.nt"
    path.write_text(
        "<http://x/s> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> "
        "<http://www.w3.org/2004/02/skos/core#ConceptScheme> .\n"
        '<http://x/s> <http://www.w3.org/2004/02/skos/core#prefLabel> "Scheme"@en .\n'
        '<http://x/a> <http://www.w3.org/2004/02/skos/core#prefLabel> "armchair"@en .\n',
        encoding="utf-8",
    )
    vocabulary = read_vocabulary(path)
    assert [c.id for c in vocabulary.concepts] == ["http://x/a"]
    assert vocabulary.title == {"en": "Scheme"}


# --- Joconde -----------------------------------------------------------------------------


def test_joconde_header_title_synonyms_and_ids():
    path = FIXTURES / "lexdeno-slice.txt"
    vocabulary = read_vocabulary(path)
    assert vocabulary.format == "joconde"
    assert len(vocabulary.concepts) == 48
    assert vocabulary.title == {"fr": "Liste des dénominations"}
    assert vocabulary.languages == ("fr",)
    assert vocabulary.warnings == ()
    # "Mise à jour mai 2014" is header, not a term: the terms start at abaisse-langue.
    assert vocabulary.concepts[0].labels == {"fr": "abaisse-langue"}
    abecedaire = by_label(vocabulary, "abécédaire")
    assert abecedaire.alt_labels == {"fr": ("alphabet",)}
    assert abecedaire.id == "urn:regard:lexdeno-slice:ab%C3%A9c%C3%A9daire"
    assert by_label(vocabulary, "abreuvoir à oiseaux").id == (
        "urn:regard:lexdeno-slice:abreuvoir%20%C3%A0%20oiseaux"
    )


def test_joconde_tabs_give_the_hierarchy():
    vocabulary = read_vocabulary(FIXTURES / "lexdeno-slice.txt")
    ids = {c.labels["fr"]: c.id for c in vocabulary.concepts}
    parent = {c.labels["fr"]: c.broader for c in vocabulary.concepts}
    assert parent["aéronef"] == ()
    assert parent["aérodyne"] == (ids["aéronef"],)
    assert parent["avion"] == (ids["aérodyne"],)
    assert parent["hydravion"] == (ids["avion"],)  # three tabs
    assert parent["hélicoptère"] == (ids["aérodyne"],)
    assert parent["aérostat"] == (ids["aéronef"],)
    assert parent["affiche"] == ()


def test_joconde_a_term_listed_twice_is_one_concept_with_both_parents():
    vocabulary = read_vocabulary(FIXTURES / "lexdeno-slice.txt")
    ids = {c.labels["fr"]: c.id for c in vocabulary.concepts}
    merrain = by_label(vocabulary, "merrain")
    assert merrain.broader == (ids["andouiller"], ids["ramure"])
    andouiller = by_label(vocabulary, "andouiller")  # a root once, under ramure once
    assert andouiller.broader == (ids["ramure"],)
    assert andouiller.alt_labels == {"fr": ("bois animal",)}
    assert by_label(vocabulary, "daniel 1").broader == (ids["jeton de Bretagne"],)  # five times


def test_joconde_usage_notes_before_the_terms_and_placeholders_are_skipped():
    path = FIXTURES / "lexdomn-slice.txt"
    vocabulary = read_vocabulary(path)
    labels = [c.labels["fr"] for c in vocabulary.concepts]
    assert labels[0] == "I. domaine par support de conservation"
    assert not [label for label in labels if label.startswith(("Ex :", "Important", "Les termes"))]
    assert len(labels) == 17
    assert vocabulary.warnings == (f"{path}:32: line skipped: '?' is not a term",)
    # Spaces inside a line are collapsed: "Afrique sub-saharienne =  Afrique noire".
    assert by_label(vocabulary, "Afrique sub-saharienne").alt_labels == {"fr": ("Afrique noire",)}


def test_joconde_spaces_between_tabs_are_filler():
    vocabulary = read_vocabulary(FIXTURES / "lexrepr-slice.txt")
    ids = {c.labels["fr"]: c.id for c in vocabulary.concepts}
    parent = {c.labels["fr"]: c.broader for c in vocabulary.concepts}
    assert vocabulary.title == {"fr": "Liste des sujets représentés"}
    assert len(vocabulary.concepts) == 27
    assert parent["thèmes"] == () and parent["la nature"] == ()  # one leading space: a root
    assert parent["genre iconographique"] == (ids["genre de la représentation"],)  # "\t \t"
    assert parent["figure biblique"] == (ids["figures"],)  # six tabs, five spaces
    assert parent["saison"] == (ids["année"],)


def test_joconde_dash_bullets_sit_one_level_below_their_tabs():
    repr_ = read_vocabulary(FIXTURES / "lexrepr-slice.txt")
    ids = {c.labels["fr"]: c.id for c in repr_.concepts}
    assert by_label(repr_, "janv").broader == (ids["mois"],)  # "\t \t \t  - -janv"
    epoq = read_vocabulary(FIXTURES / "lexepoq-slice.txt")
    ids = {c.labels["fr"]: c.id for c in epoq.concepts}
    assert by_label(epoq, "Meriibre kheti").broader == (ids["IXe dynastie"],)
    priests = by_label(epoq, "grands prêtres et rois prêtres")
    assert priests.broader == (ids["XXIe dynastie"],)
    assert by_label(epoq, "Djedkhonsouioufankh").broader == (priests.id,)
    assert by_label(epoq, "rois tanites").broader == (ids["XXIe dynastie"],)
    assert len(epoq.concepts) == 24


def test_joconde_space_indented_and_flat_lists(tmp_path):
    spaces = tmp_path / "mobilier.txt"
    spaces.write_text("Mobilier\n\nsiège\n    fauteuil = bergère\n        cabriolet\n", "utf-8")
    vocabulary = read_vocabulary(spaces, default_language="en")
    assert vocabulary.title == {"en": "Mobilier"}
    assert [c.broader for c in vocabulary.concepts] == [
        (),
        ("urn:regard:mobilier:si%C3%A8ge",),
        ("urn:regard:mobilier:fauteuil",),
    ]
    assert vocabulary.concepts[1].alt_labels == {"en": ("bergère",)}
    flat = tmp_path / "flat.txt"
    flat.write_text("Luminaires\n\nlampe\napplique\n", "utf-8")
    assert [c.labels["fr"] for c in read_vocabulary(flat).concepts] == ["lampe", "applique"]
    no_header = tmp_path / "bare.txt"
    no_header.write_text("lampe\n\tapplique\n", "utf-8")
    assert read_vocabulary(no_header).title == {}


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("empty.csv", b"", "export the thesaurus again"),
        ("blank.txt", b"\n  \n", "export the thesaurus again"),
        ("latin1.csv", "id,pref_label_fr\nurn:a,entrée\n".encode("latin-1"), "save it as UTF-8"),
        ("noid.csv", b"uri,pref_label_fr\nurn:a,lampe\n", "give a CSV with a header row"),
        ("nolabel.csv", b"id,label\nurn:a,lampe\n", "pref_label_fr"),
        ("header-only.csv", b"id,pref_label_fr\n", "give a CSV with a header row"),
        ("broken.ttl", b"@prefix s: <http://x#> .\n<http://a> s:p .\n", "export it again"),
        ("broken.rdf", b"<rdf:RDF xmlns:rdf='x'>\n<a>\n</b>\n", "export it again"),
        ("nothing.ttl", b"<http://a> <http://b> <http://c> .\n", "skos:Concept"),
        ("nothing.txt", b"?\n", "one term a line"),
        ("terms.docx", b"PK", "--format"),
    ],
)
def test_unreadable_files_say_which_file_and_what_to_do(tmp_path, name, content, says):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VocabularyError) as caught:
        read_vocabulary(path)
    assert str(path) in str(caught.value)
    assert says in str(caught.value)


def test_errors_name_the_line_when_known(tmp_path):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("id,pref_label_fr\nurn:a,lampe\nurn:b,entrée\n".encode("latin-1"))
    with pytest.raises(VocabularyError, match=r"latin1\.csv:3: is not UTF-8"):
        read_vocabulary(latin1)
    turtle = tmp_path / "broken.ttl"
    turtle.write_text("@prefix s: <http://x#> .\n\n<http://a> s:p .\n", "utf-8")
    with pytest.raises(VocabularyError, match=r"broken\.ttl:3: is not valid Turtle"):
        read_vocabulary(turtle)
    xml = tmp_path / "broken.rdf"
    xml.write_text("<rdf:RDF xmlns:rdf='x'>\n<a>\n</b>\n", "utf-8")
    with pytest.raises(VocabularyError, match=r"broken\.rdf:3: is not valid RDF/XML"):
        read_vocabulary(xml)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(VocabularyError, match="no such file: check the path"):
        read_vocabulary(tmp_path / "absent.csv")
    with pytest.raises(VocabularyError, match=r"'excel' is unknown.*--format csv\|skos"):
        read_vocabulary(FIXTURES / "pactols-slice.csv", format="excel")
    # A suffix the reader does not know is fine when the format is named.
    path = tmp_path / "terms.list"
    path.write_text("lampe\n", "utf-8")
    assert read_vocabulary(path, format="joconde").concepts[0].labels == {"fr": "lampe"}
