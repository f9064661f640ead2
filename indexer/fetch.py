"""HTTP and file fetching, with errors a person can act on.

One `Fetcher` per run: a pooled httpx client that names Regard in its User-Agent,
follows a bounded number of redirects, retries what is worth retrying, and refuses
responses larger than a limit before reading them whole.

Local files are read only under `local_refusal`'s rule: a remote document never makes
Regard read a file of this machine.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import __version__
from .errors import NotIIIFError, SourceError
from .folders import load_file_image
from .validators import Validators

RETRY_STATUSES = {429, 500, 502, 503, 504}


class FetchError(Exception):
    """An image could not be had; the message is the reason recorded for the item.

    `transient`: the server was down or slow (5xx, 429, a timeout, a lost connection)
    after the retries: asking again later may well succeed, unlike a 404."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


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
    per_host: int = 4
    max_retry_after: float = 120.0

    @property
    def user_agent(self) -> str:
        contact = f"; {self.contact}" if self.contact else ""
        return f"Regard/{__version__} (IIIF image indexer{contact})"


@dataclass(frozen=True)
class Document:
    data: Any
    content_hash: str
    validators: Validators = Validators(None, None)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


LOCAL_FROM_REMOTE = "not an http(s) URL: local files are not read from remote documents"
NOT_HTTP_FROM_REMOTE = "not an http(s) URL: only http(s) is read from remote documents"


def local_refusal(url: str, *, named_locally: bool) -> str | None:
    """Why `url` must not be read, or None: the one rule for local files.

    `named_locally`: the operator named `url` (a source on the command line), or a local
    file read under this rule names it. Anything else, i.e. whatever a document fetched
    over HTTP(S) names, must be HTTP(S) too, or a remote document could make Regard read
    (and the service then serve) any file of this machine.
    """
    if is_url(url) or named_locally:
        return None
    local = urlsplit(url).scheme.lower() in ("", "file")
    return LOCAL_FROM_REMOTE if local else NOT_HTTP_FROM_REMOTE


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


class HostLimiter:
    """At most `per_host` requests in flight to any one host, and `overall` in all.

    Museums' image servers are often small: a harvest must never hammer one of them,
    however many hosts it reads from at once.
    """

    def __init__(self, per_host: int, overall: int):
        self.per_host = per_host
        self._overall = threading.BoundedSemaphore(overall)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        with self._host_semaphore(urlsplit(url).netloc.lower()), self._overall:
            yield

    def _host_semaphore(self, host: str) -> Any:
        with self._lock:
            return self._hosts.setdefault(host, threading.BoundedSemaphore(self.per_host))


class SharedHostLimiter(HostLimiter):
    """HostLimiter's rule kept across processes (indexer.picture_processes): semaphores
    made by a multiprocessing context, handed to each process as it starts.

    Hosts are not known in advance, so each is held by one of a fixed set of semaphores,
    chosen by a hash of its name: two hosts that share one are held to `per_host` together,
    which is gentler, never more."""

    def __init__(self, per_host: int, overall: Any, hosts: Sequence[Any]):
        self.per_host = per_host
        self._overall = overall
        self._shared_hosts = list(hosts)

    @classmethod
    def made_by(
        cls, context: Any, per_host: int, overall: int, buckets: int = 64
    ) -> SharedHostLimiter:
        """A limiter whose semaphores `context` (multiprocessing) made: one for all, and
        `buckets` that hosts share by hash."""
        hosts = [context.BoundedSemaphore(per_host) for _ in range(buckets)]
        return cls(per_host, context.BoundedSemaphore(overall), hosts)

    def _host_semaphore(self, host: str) -> Any:
        return self._shared_hosts[zlib.crc32(host.encode()) % len(self._shared_hosts)]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: httpx.Headers

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class Fetcher:
    def __init__(self, settings: FetchSettings | None = None, limiter: HostLimiter | None = None):
        """`limiter`: one shared with other processes' fetchers; else this one's own, from
        `settings`."""
        self.settings = settings or FetchSettings()
        s = self.settings
        self.limiter = limiter or HostLimiter(s.per_host, s.max_connections)
        self.client = httpx.Client(
            follow_redirects=True,
            max_redirects=s.max_redirects,
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            headers={"User-Agent": s.user_agent},
            limits=httpx.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_connections
            ),
        )
        # Image URLs and service ids that are not http(s) yet may be read: see
        # allow_local_images and allow_local_services.
        self._local_images: set[str] = set()
        self._local_services: set[str] = set()

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def allow_local_images(self, urls: Iterable[str]) -> None:
        """Let `image()` read these file URLs: they come from a folder or a local file
        the operator named (the harvest knows; a URL alone does not say)."""
        self._local_images.update(url for url in urls if not is_url(url))

    def allow_local_services(self, service_ids: Iterable[str]) -> None:
        """Let these Image API services that are not http(s) have their info.json read
        (`service_refusal`): named by a local file the operator named, as for images."""
        self._local_services.update(s for s in service_ids if not is_url(s))

    def local_names(
        self, image_url: str | None, service_id: str | None
    ) -> tuple[list[str], list[str]]:
        """Of an item's image URL and service id, those this fetcher was allowed to read
        as local files (images, services): for a fetcher in another process, which the
        harvest does not tell (indexer.picture_processes), to be allowed the same."""
        images = [image_url] if image_url in self._local_images else []
        services = [service_id] if service_id in self._local_services else []
        return images, services

    def service_refusal(self, service_id: str) -> str | None:
        """Why the info.json of this service must not be read, or None (`local_refusal`):
        a service that a remote document names at a path is never read from this machine."""
        return local_refusal(service_id, named_locally=service_id in self._local_services)

    # -- raw bytes -----------------------------------------------------------------------

    def _get(self, url: str, max_bytes: int, headers: dict[str, str]) -> Answer:
        """GET with retries on timeouts, connection errors, 429 and 5xx (honouring
        Retry-After). Returns the answer (2xx or 304); raises FetchError otherwise."""
        attempt = 0
        while True:
            try:
                with self.limiter.slot(url), self.client.stream("GET", url, headers=headers) as r:
                    if r.status_code in RETRY_STATUSES and attempt < self.settings.retries:
                        self._drain(r)
                        delay = self._retry_delay(r, attempt)
                    elif r.status_code >= 400:
                        self._drain(r)
                        reason = f"HTTP {r.status_code} {r.reason_phrase or ''}".strip()
                        raise FetchError(reason, transient=r.status_code in RETRY_STATUSES)
                    else:
                        return Answer(r.status_code, self._read_limited(r, max_bytes), r.headers)
            except httpx.TooManyRedirects as error:
                raise FetchError(describe_http_error(error)) from error
            except (httpx.TimeoutException, httpx.TransportError) as error:
                if attempt >= self.settings.retries:
                    raise FetchError(describe_http_error(error), transient=True) from error
                delay = self.settings.backoff * 2**attempt
            attempt += 1
            time.sleep(delay)

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        """Retry-After (seconds or an HTTP date) when the server gives it, else backoff."""
        retry_after = response.headers.get("retry-after", "").strip()
        delay = self.settings.backoff * 2**attempt
        if retry_after.isdigit():
            delay = float(retry_after)
        elif retry_after:
            try:
                when = parsedate_to_datetime(retry_after)
                delay = max(0.0, (when - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
        return min(delay, self.settings.max_retry_after)

    @staticmethod
    def _drain(response: httpx.Response, limit: int = 65536) -> None:
        """Read a small error body, so the connection can be reused rather than reset."""
        try:
            Fetcher._read_limited(response, limit)
        except (FetchError, httpx.HTTPError):
            pass

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

    def document(self, source: str, known: Validators | None = None) -> Document | None:
        """A JSON document from a URL or a local file; raises SourceError naming the source.
        A path is read as given: whoever names it applies `local_refusal` first.

        With `known` validators from an earlier harvest, the request is conditional and
        None means "not modified" (304, or the same bytes as last time).
        """
        if is_url(source):
            headers = {"Accept": "application/ld+json, application/json"}
            if known and known.etag:
                headers["If-None-Match"] = known.etag
            if known and known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
            try:
                answer = self._get(source, self.settings.max_document_bytes, headers)
            except FetchError as error:
                raise SourceError(source, str(error)) from error
            if answer.status == 304:
                return None
            body, content_type = answer.body, answer.content_type
            validators = Validators(answer.headers.get("etag"), answer.headers.get("last-modified"))
        else:
            path = Path(source)
            if not path.is_file():
                raise SourceError(source, "no such file (nor an http(s) URL)")
            body, content_type, validators = path.read_bytes(), "", Validators(None, None)
        content_hash = hashlib.sha256(body).hexdigest()
        if known and known.content_hash == content_hash:
            return None
        data = parse_json(source, body, content_type)
        return Document(data, content_hash, validators)

    def image(self, url: str) -> bytes:
        if not is_url(url):
            refusal = local_refusal(url, named_locally=url in self._local_images)
            if refusal:
                raise FetchError(refusal)
            try:
                return load_file_image(url, self.settings.max_image_bytes)
            except OSError as error:
                raise FetchError(str(error)) from error
        answer = self._get(url, self.settings.max_image_bytes, {"Accept": "image/*"})
        if not answer.body:
            raise FetchError("empty response (0 bytes)")
        # Servers mislabel images often enough that the bytes decide, not the header:
        # only a body that is text is refused here, with what it looked like.
        if looks_like_text(answer.body):
            kind = answer.content_type.split(";")[0] or "text"
            raise FetchError(f"not an image: the server sent {kind} (an error page?)")
        return answer.body


def looks_like_text(body: bytes) -> bool:
    head = body.lstrip()[:64].lower()
    return head.startswith((b"<", b"{", b"["))


def parse_json(source: str, body: bytes, content_type: str) -> Any:
    """Parse a IIIF document; the content type is only a hint (servers mislabel JSON)."""
    if not body.strip():
        raise NotIIIFError(source, "the response is empty (0 bytes)")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        head = body.lstrip()[:100].lower()
        if head.startswith((b"<!doctype html", b"<html")) or "text/html" in content_type:
            raise NotIIIFError(source, "is an HTML page, not a IIIF JSON document") from error
        raise NotIIIFError(source, f"is not valid JSON ({error})") from error
