"""The service's settings, in one place; each can be set as an environment variable
with the REGARD_ prefix (REGARD_STORE, REGARD_MAX_K, …) or by `regard serve` options.
The index's own (REGARD_INDEX_*) are read by indexer.index_plan.IndexSettings.from_env,
for every command alike."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
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
    max_upload_bytes: int = Field(
        32 * 1024 * 1024, description="Largest picture accepted by a search by image, in bytes."
    )
    cors_origins: str = Field(
        "",
        description="Web sites whose pages may call the API from the browser (a museum's "
        "collection site): origins such as https://collections.example.org, separated by "
        "commas or spaces, or * for any. None by default.",
    )

    public_url: str | None = Field(
        None,
        description="The address people reach the service at, when it is behind a proxy or "
        "under a path (https://collections.example.org/regard/): the links it writes into "
        "exported manifests start with it. Default: the address each request came to.",
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(
                f"{value!r} is not the service's address: give an http(s) URL, as "
                "https://collections.example.org/regard/ (no query)"
            )
        return value.strip().rstrip("/") + "/"

    @field_validator("cors_origins")
    @classmethod
    def _origins_only(cls, value: str) -> str:
        for origin in origins_in(value):
            if origin != "*" and not _is_origin(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: give the scheme and host alone, as "
                    "https://collections.example.org (a port may follow, no path)"
                )
        return value

    @property
    def allowed_origins(self) -> list[str]:
        return origins_in(self.cors_origins)


def origins_in(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def _is_origin(text: str) -> bool:
    """scheme://host[:port], as a browser sends it in its Origin header: no path, no
    trailing slash (a browser never matches those)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.path or parts.query or parts.fragment or parts.username)
    )
