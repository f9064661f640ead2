"""The service's settings, in one place; each can be set as an environment variable
with the REGARD_ prefix (REGARD_STORE, REGARD_MAX_K, …) or by `regard serve` options."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.index_plan import IndexSettings

VIEWER_DIR = Path(__file__).resolve().parent.parent / "viewer"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGARD_")

    store: Path = Field(description="Folder of the collection store to serve.")
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, description="Port to listen on.")
    device: str | None = Field(
        None, description="Torch device for the text encoder (default: cuda when available)."
    )
    max_k: int = Field(200, description="Largest number of results one request may ask for.")
    max_query_length: int = Field(500, description="Longest text query accepted, in characters.")
    thumbnail_size: int = Field(256, description="Side of the thumbnails linked in results.")
    viewer_dir: Path = Field(VIEWER_DIR, description="Folder of the web viewer's static files.")
    index_kind: str = Field(
        "auto", description="auto (exact up to index_exact_limit, IVF above), exact or ivf."
    )
    index_exact_limit: int = Field(100_000, description="auto: exact search up to this size.")
    index_nprobe: int | None = Field(
        None, description="IVF cells scanned per image query (default: measured at build)."
    )
    index_text_nprobe: int | None = Field(
        None, description="IVF cells scanned per text query (default: measured at build)."
    )
    index_rerank: int | None = Field(None, description="IVF candidates re-scored exactly.")
    index_mmap: bool = Field(False, description="Memory-map the index instead of loading it.")
    index_memory_limit: int | None = Field(
        None, description="Bytes the index may use (default: the memory available)."
    )
    text_cache_size: int = Field(1024, description="Text queries whose vectors are kept.")

    def index_settings(self) -> IndexSettings:
        return IndexSettings(
            kind=self.index_kind,
            exact_limit=self.index_exact_limit,
            nprobe=self.index_nprobe,
            text_nprobe=self.index_text_nprobe,
            rerank=self.index_rerank,
            mmap=self.index_mmap,
            memory_limit=self.index_memory_limit,
        )
