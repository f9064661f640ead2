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


class VocabularyTerms(BaseModel):
    vocabulary: str
    terms: list[Term] = Field(
        description="The model's top k, best first, then the other terms decided for this item."
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
