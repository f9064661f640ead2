"""Draft subject terms: the store's vocabularies, an item's suggested terms, reviewers'
decisions on them (with a token), and the export of those decisions."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from indexer.reviewers import reviewer_of
from indexer.store import ItemRecord, now
from indexer.store_terms import Decision, MachineSuggestion, StoredConcept, TermsError
from indexer.term_export import annotation_page, csv_rows, decided_terms
from indexer.term_precedents import Precedent, decisions_nearby, listed_terms
from indexer.terms import Suggestion

from ..context import ContextDep, ServiceContext
from ..errors import BadRequest, NotFound, Unauthorized
from ..item_lookup import find_item, why_no_vector
from ..term_schemas import (
    Concept,
    ConceptRef,
    DecisionRequest,
    ItemTermsResponse,
    MachineScore,
    ReviewDecision,
    ReviewerResponse,
    Term,
    TermPrecedent,
    VocabulariesResponse,
    VocabularySummary,
    VocabularyTerms,
)
from .items import ItemId
from .limits import blank_means, require_utf8_query

router = APIRouter(tags=["terms"], dependencies=[Depends(require_utf8_query)])

DEFAULT_TERMS = 10
MAX_TERMS = 100
TermCount = Annotated[int, blank_means(DEFAULT_TERMS)]


def reviewer(ctx: ContextDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """The reviewer whose token the request carries: changes need one."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "accepting or rejecting a term needs a reviewer's token, sent as "
            "'Authorization: Bearer TOKEN'; an administrator makes one with "
            "`regard reviewer add NAME --store DIR`"
        )
    name = reviewer_of(ctx.store, token.strip())
    if name is None:
        raise Unauthorized(
            "this token is no reviewer's (mistyped, or taken away): ask an administrator "
            "for one (`regard reviewer add NAME --store DIR`)",
            code="unknown_token",
        )
    return name


ReviewerDep = Annotated[str, Depends(reviewer)]


@router.get("/reviewer", response_model=ReviewerResponse)
async def whose_token(by: ReviewerDep) -> ReviewerResponse:
    """The reviewer whose token the request carries (401 when none is): a client checks
    a token, and says whose it is, before any decision."""
    return ReviewerResponse(name=by)


@router.get("/vocabularies", response_model=VocabulariesResponse)
async def vocabularies(ctx: ContextDep) -> VocabulariesResponse:
    """The thesauri whose terms this store suggests."""
    infos = await run_in_threadpool(ctx.terms.vocabularies, ctx.scorer.model.fingerprint)
    return VocabulariesResponse(
        vocabularies=[
            VocabularySummary(
                name=i.name,
                title=i.title,
                format=i.format,
                languages=i.languages,
                concepts=i.concepts,
                embedded=i.embedded,
                decisions=i.decisions,
                updated_at=i.updated_at,
            )
            for i in infos
        ]
    )


@router.get("/items/{item_id}/terms", response_model=ItemTermsResponse)
async def item_terms(
    ctx: ContextDep,
    item_id: ItemId,
    vocabulary: Annotated[
        str | None, Query(description="Only this vocabulary (default: every one).")
    ] = None,
    k: Annotated[TermCount, Query(description="Suggestions per vocabulary.")] = DEFAULT_TERMS,
) -> ItemTermsResponse:
    """Draft subject terms for an item: each vocabulary's terms the model finds closest,
    best first (machine suggestions, with their scores), and the terms reviewers decided."""
    if not 1 <= k <= MAX_TERMS:
        raise BadRequest(
            f"k={k} is out of range: ask for between 1 and {MAX_TERMS} terms",
            code="k_out_of_range",
        )
    return await run_in_threadpool(_item_terms, ctx, item_id, vocabulary, k)


@router.put("/items/{item_id}/terms", response_model=Term)
async def decide(
    ctx: ContextDep, item_id: ItemId, request: DecisionRequest, by: ReviewerDep
) -> Term:
    """Accept or reject a term for an item (or withdraw the decision: `undecided`). The
    model's word on the term is kept with the decision; the reviewer's name comes from
    the token."""
    return await run_in_threadpool(_decide, ctx, item_id, request, by)


@router.get("/export/annotations")
async def export_annotations(ctx: ContextDep) -> StreamingResponse:
    """The accepted terms as one W3C AnnotationPage (motivation `classifying`)."""
    # Read in one worker thread: the store's connections belong to their thread.
    accepted = await run_in_threadpool(lambda: list(decided_terms(ctx.store, "accepted")))
    return StreamingResponse(
        annotation_page(accepted),
        media_type='application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"',
        headers={"Content-Disposition": 'inline; filename="regard-terms.jsonld"'},
    )


@router.get("/export/terms.csv")
async def export_csv(ctx: ContextDep) -> StreamingResponse:
    """Every decision, rejections too, one a line, with the model's word on each."""
    decided = await run_in_threadpool(lambda: list(decided_terms(ctx.store)))
    return StreamingResponse(
        csv_rows(decided),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="regard-terms.csv"'},
    )


# -- the work, off the event loop ------------------------------------------------------------


def _vector(ctx: ServiceContext, item: ItemRecord) -> np.ndarray:
    vector = ctx.store.vector_of(item.key) if item.state == "indexed" else None
    if vector is None:
        raise BadRequest(
            f"item {item.id!r} has no vector to suggest terms from: {why_no_vector(item)}",
            code="no_vector",
        )
    return vector


def _vocabulary_names(ctx: ServiceContext, only: str | None) -> list[str]:
    try:
        if only:
            ctx.terms.require(only)
            return [only]
        return ctx.terms.vocabulary_names()
    except TermsError as error:
        raise NotFound(str(error), code="unknown_vocabulary") from error


def _item_terms(ctx: ServiceContext, item_id: str, only: str | None, k: int) -> ItemTermsResponse:
    item = find_item(ctx, item_id)
    vector = _vector(ctx, item)
    names = _vocabulary_names(ctx, only)
    decisions = ctx.terms.decisions_for_item(item.key)
    decided = ctx.terms.concepts_by_key([d.concept_key for d in decisions])
    nearby = decisions_nearby(ctx.searcher, ctx.terms, item.key, vector)
    nearest_ids = {
        key: found.id
        for key, found in ctx.store.items_by_key([p.nearest_key for p in nearby.values()]).items()
    }
    stamp = now()
    fingerprint = ctx.scorer.model.fingerprint
    groups = []
    for name in names:
        terms = [
            _term(
                ctx,
                listed.suggestion.concept,
                listed.suggestion.machine(fingerprint, stamp),
                None,
                _precedent(listed.precedent, nearest_ids),
            )
            for listed in listed_terms(ctx.scorer, vector, name, k, nearby)
        ]
        by_id = {t.concept.id: t for t in terms}
        for made in decisions:
            concept = decided[made.concept_key]
            if concept.vocabulary != name:
                continue
            if concept.id in by_id:
                by_id[concept.id].decision = _review(made)
            else:
                precedent = _precedent(nearby.get(concept.key), nearest_ids)
                terms.append(_term(ctx, concept, made.suggestion, made, precedent))
        groups.append(VocabularyTerms(vocabulary=name, terms=terms))
    return ItemTermsResponse(item=item.id, k=k, vocabularies=groups)


def _precedent(found: Precedent | None, nearest_ids: dict[int, str]) -> TermPrecedent | None:
    if found is None or found.nearest_key not in nearest_ids:
        return None
    return TermPrecedent(
        accepted=found.accepted,
        rejected=found.rejected,
        looked_at=found.looked_at,
        nearest_item=nearest_ids[found.nearest_key],
        similarity=found.similarity,
    )


def _decide(ctx: ServiceContext, item_id: str, request: DecisionRequest, by: str) -> Term:
    item = find_item(ctx, item_id)
    names = _vocabulary_names(ctx, request.vocabulary)
    concept = ctx.terms.concept(names[0], request.concept)
    if concept is None:
        raise NotFound(
            f"vocabulary {request.vocabulary!r} has no concept {request.concept!r}: "
            f"ids are as /api/items/{item.id}/terms gives them",
            code="unknown_concept",
        )
    if request.decision == "undecided":
        ctx.terms.undecide(item.key, concept.key)
        return _term(ctx, concept, _judged(ctx, item, concept), None)
    made = ctx.terms.decide(
        item.key, concept.key, request.decision, by, _judged(ctx, item, concept)
    )
    return _term(ctx, concept, made.suggestion, made)


def _judged(
    ctx: ServiceContext, item: ItemRecord, concept: StoredConcept
) -> MachineSuggestion | None:
    """The model's word on this concept for this item now; None where it has none (an
    item without a vector can still be described by hand)."""
    vector = ctx.store.vector_of(item.key) if item.state == "indexed" else None
    judged: Suggestion | None = None if vector is None else ctx.scorer.judge(vector, concept)
    return None if judged is None else ctx.scorer.stamped_now(judged)


def _term(
    ctx: ServiceContext,
    concept: StoredConcept,
    suggestion: MachineSuggestion | None,
    made: Decision | None,
    precedent: TermPrecedent | None = None,
) -> Term:
    return Term(
        concept=Concept(
            id=concept.id,
            labels=concept.labels,
            vocabulary=concept.vocabulary,
            notation=concept.notation,
            broader=[
                ConceptRef(id=parent.id, labels=parent.labels)
                for parent in ctx.scorer.broader_chain(concept)
            ],
            retired=concept.retired,
        ),
        suggestion=None
        if suggestion is None
        else MachineScore(
            model=suggestion.fingerprint,
            scoring=suggestion.scoring,  # type: ignore[arg-type]
            score=suggestion.score,
            cosine=suggestion.cosine,
            rank=suggestion.rank,
            suggested_at=suggestion.suggested_at,
        ),
        decision=None if made is None else _review(made),
        precedent=precedent,
    )


def _review(made: Decision) -> ReviewDecision:
    return ReviewDecision(
        decision=made.decision,  # type: ignore[arg-type]
        by=made.decided_by,
        at=made.decided_at,
    )
