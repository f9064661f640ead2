"""HTTP and file fetching, with errors a person can act on.

One `Fetcher` per run: a pooled httpx client that names Regard in its User-Agent,
follows a bounded number of redirects, retries what is worth retrying, and refuses
responses larger than a limit before reading them whole.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from . import __version__
from .errors import NotIIIFError, SourceError

RETRY_STATUSES = {429, 500, 502, 503, 504}


class FetchError(Exception):
    """An image could not be had; the message is the reason recorded for the item."""


@dataclass(frozen=True)
class FetchSettings:
    contact: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 2
    backoff: float = 0.5
    max_document_bytes: int = 64 * 1024 * 1024
    max_image_bytes: int = 64 * 1024 * 1024
    max_redirects: int = 5
    max_connections: int = 16

    @property
    def user_agent(self) -> str:
        contact = f"; {self.contact}" if self.contact else ""
        return f"Regard/{__version__} (IIIF image indexer{contact})"


@dataclass(frozen=True)
class Document:
    data: Any
    content_hash: str


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def describe_http_error(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.TooManyRedirects):
        return "too many redirects (a redirect loop?)"
    if isinstance(error, httpx.ConnectError):
        return f"could not connect ({error})"
    if isinstance(error, httpx.HTTPError):
        return f"network error ({type(error).__name__}: {error})"
    return str(error)


class Fetcher:
    def __init__(self, settings: FetchSettings | None = None):
        self.settings = settings or FetchSettings()
        s = self.settings
        self.client = httpx.Client(
            follow_redirects=True,
            max_redirects=s.max_redirects,
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            headers={"User-Agent": s.user_agent},
            limits=httpx.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_connections
            ),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw bytes -----------------------------------------------------------------------

    def _get(self, url: str, max_bytes: int, accept: str) -> tuple[bytes, str]:
        """GET with retries; returns (body, content type). Raises FetchError."""
        attempt = 0
        while True:
            try:
                with self.client.stream("GET", url, headers={"Accept": accept}) as response:
                    if response.status_code in RETRY_STATUSES and attempt < self.settings.retries:
                        delay = self._retry_delay(response, attempt)
                    elif response.status_code >= 400:
                        reason = response.reason_phrase or ""
                        raise FetchError(f"HTTP {response.status_code} {reason}".strip())
                    else:
                        return self._read_limited(response, max_bytes), response.headers.get(
                            "content-type", ""
                        )
            except (httpx.TimeoutException, httpx.TransportError) as error:
                if isinstance(error, httpx.TooManyRedirects) or attempt >= self.settings.retries:
                    raise FetchError(describe_http_error(error)) from error
                delay = self.settings.backoff * 2**attempt
            attempt += 1
            time.sleep(delay)

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            return min(float(retry_after), 60.0)
        return self.settings.backoff * 2**attempt

    @staticmethod
    def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(f"response of {int(declared):,} bytes exceeds the {max_bytes:,} limit")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"response exceeds the {max_bytes:,} byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- documents and images ------------------------------------------------------------

    def document(self, source: str) -> Document:
        """A JSON document from a URL or a local file. Raises SourceError naming the source."""
        if is_url(source):
            try:
                body, content_type = self._get(
                    source,
                    self.settings.max_document_bytes,
                    "application/ld+json, application/json",
                )
            except FetchError as error:
                raise SourceError(source, str(error)) from error
        else:
            path = Path(source)
            if not path.is_file():
                raise SourceError(source, "no such file (nor an http(s) URL)")
            body, content_type = path.read_bytes(), ""
        return Document(parse_json(source, body, content_type), hashlib.sha256(body).hexdigest())

    def image(self, url: str) -> bytes:
        body, content_type = self._get(url, self.settings.max_image_bytes, "image/*")
        if not body:
            raise FetchError("empty response (0 bytes)")
        if content_type.startswith(("text/html", "application/json", "text/plain")):
            raise FetchError(f"not an image: the server sent {content_type.split(';')[0]}")
        return body


def parse_json(source: str, body: bytes, content_type: str) -> Any:
    if not body.strip():
        raise NotIIIFError(source, "the response is empty (0 bytes)")
    head = body.lstrip()[:100].lower()
    if head.startswith((b"<!doctype html", b"<html")) or "text/html" in content_type:
        raise NotIIIFError(source, "is an HTML page, not a IIIF JSON document")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotIIIFError(source, f"is not valid JSON ({error})") from error
