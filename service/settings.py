"""The service's settings, in one place; each can be set as an environment variable
with the REGARD_ prefix (REGARD_STORE, REGARD_MAX_K, …) or by `regard serve` options.
The index's own (REGARD_INDEX_*) are read by indexer.index_plan.IndexSettings.from_env,
for every command alike."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    text_cache_size: int = Field(1024, description="Text queries whose vectors are kept.")
