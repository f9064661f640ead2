"""The long-lived objects of a running service, built once at start-up.

Routes receive them as typed dependencies (`ContextDep`), never as module globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from indexer.encoders import encoder_for_store
from indexer.fetch import Fetcher, FetchSettings
from indexer.index_plan import IndexSettings
from indexer.record_synonyms import ThesaurusWords
from indexer.search import Searcher
from indexer.store import Store
from indexer.store_map import MapCounts
from indexer.store_terms import TermStore
from indexer.terms import ModelScoring, TermScorer
from indexer.text_cache import TextEmbeddingCache
from models.encoder_thread import EncoderThread

from .settings import Settings


@dataclass
class ServiceContext:
    settings: Settings
    store: Store
    encoder: EncoderThread
    searcher: Searcher
    terms: TermStore
    scorer: TermScorer
    thesaurus: ThesaurusWords
    # The map's cluster sizes, counted once per map and state of the store.
    map_counts: MapCounts = field(default_factory=MapCounts)
    # Fetches the part of an item a search asks with, from its image server: an answer
    # is awaited by a person, so it waits less and retries once.
    fetcher: Fetcher = field(
        default_factory=lambda: Fetcher(
            FetchSettings(connect_timeout=5.0, read_timeout=20.0, retries=1)
        )
    )

    @classmethod
    def load(cls, settings: Settings) -> ServiceContext:
        store = Store.open(settings.store)
        # The service embeds only texts (always in float32): a fast image runtime would
        # only add its conversion and check to the start. Requests come on many threads;
        # the model stays on one (see models.encoder_thread).
        encoder = EncoderThread(
            lambda: encoder_for_store(store, settings.device, runtime="float32")
        )
        searcher = Searcher(
            store,
            encoder,
            IndexSettings.from_env(),
            TextEmbeddingCache(settings.text_cache_size),
            run_search=encoder.run,
        )
        # Build or load the index now, not on the first query; on the model's thread, as
        # a build runs OpenMP too.
        encoder.run(searcher.index)
        terms = TermStore(store)
        scorer = TermScorer(terms, ModelScoring.of(encoder.encoder))
        return cls(settings, store, encoder, searcher, terms, scorer, ThesaurusWords(terms))

    def close(self) -> None:
        self.encoder.close()
        self.fetcher.close()


def get_context(request: Request) -> ServiceContext:
    return request.app.state.context


ContextDep = Annotated[ServiceContext, Depends(get_context)]
