"""Response and request bodies of the terms' endpoints, as the OpenAPI schema shows them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

LabelsByLanguage = dict[str, str]


class VocabularySummary(BaseModel):
    name: str = Field(description="The vocabulary's name in this store.")
    title: LabelsByLanguage = Field(description="Its title, per language, when its file gives one.")
    format: str = Field(description="csv, skos or joconde.")
    languages: list[str] = Field(description="Languages of its preferred labels.")
    concepts: int = Field(description="Terms that may be suggested or chosen (not retired).")
    embedded: int = Field(description="Of those, terms embedded by the store's model.")
    decisions: int = Field(description="Decisions cataloguers made with its terms.")
    updated_at: str


class VocabulariesResponse(BaseModel):
    vocabularies: list[VocabularySummary]


class ConceptRef(BaseModel):
    id: str = Field(description="The concept's URI in its thesaurus.")
    labels: LabelsByLanguage = Field(description="Preferred label per language.")


class Concept(ConceptRef):
    vocabulary: str
    notation: str | None = None
    broader: list[ConceptRef] = Field(
        description="Its parents, nearest first, up to the top of the thesaurus."
    )
    retired: bool = Field(description="Gone from the vocabulary's file since: kept for decisions.")


class MachineScore(BaseModel):
    """What the model said: always a machine suggestion, never a description."""

    machine: Literal[True] = True
    model: str = Field(description="Fingerprint of the model that scored it.")
    scoring: Literal["sigmoid", "softmax"] = Field(
        description="sigmoid: the term's own likelihood (SigLIP models); softmax: its share "
        "among the vocabulary's terms (CLIP models)."
    )
    score: float
    cosine: float
    rank: int = Field(description="1: the model's first choice in this vocabulary.")
    suggested_at: str


class TermPrecedent(BaseModel):
    """What cataloguers decided for this term on the images most like the item: why it is
    put forward (accepted more often) or back (rejected more often) in the list."""

    accepted: int = Field(description="Of the item's nearest images, how many have it accepted.")
    rejected: int = Field(description="And how many have it rejected.")
    looked_at: int = Field(description="How many of the item's nearest images were looked at.")
    nearest_item: str = Field(description="The most similar of them with a decision on it.")
    similarity: float = Field(description="That image's cosine to the item.")


class ReviewDecision(BaseModel):
    decision: Literal["accepted", "rejected"]
    by: str = Field(description="The reviewer who decided.")
    at: str


class Term(BaseModel):
    concept: Concept
    suggestion: MachineScore | None = Field(
        description="The model's word on this term for this item, now (for a decided term: "
        "when it was decided). None for a term the model cannot score (retired)."
    )
    decision: ReviewDecision | None = None
    precedent: TermPrecedent | None = Field(
        None, description="Decisions on this term for similar images, when there are some."
    )


class VocabularyTerms(BaseModel):
    vocabulary: str
    terms: list[Term] = Field(
        description="First the terms that decisions on similar images back (see "
        "`precedent`), then the model's top k, best first, then those that decisions on "
        "similar images speak against, then the other terms decided for this item."
    )


class ItemTermsResponse(BaseModel):
    item: str
    k: int
    vocabularies: list[VocabularyTerms]


class DecisionRequest(BaseModel):
    vocabulary: str = Field(description="The vocabulary's name, as /api/vocabularies lists it.")
    concept: str = Field(description="The concept's id (URI).")
    decision: Literal["accepted", "rejected", "undecided"] = Field(
        description="accepted or rejected; undecided withdraws a decision."
    )


class ReviewerResponse(BaseModel):
    name: str = Field(description="The reviewer's name, as their decisions carry it.")
