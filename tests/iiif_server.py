"""A real local IIIF server for the tests and the offline demo (no network needed).

It serves:

- the fixture documents of ``tests/fixtures/iiif/`` at ``/fixtures/{relpath}``, and each
  also at its own id, rewritten; every absolute http(s) URL in them (ids and links, not
  the vocabulary: @context, profile, type, rights, labels ...) is rewritten to point here:
  ``https://iiif.bodleian.ox.ac.uk/x/y`` -> ``{base}/h/iiif.bodleian.ox.ac.uk/x/y``, so
  the whole graph (collection -> manifest -> image service -> image) is fetched from here;
- Image API requests under every image service id found in the served documents:
  ``{service}/info.json`` (the version and size stated for that image; the fixture's own
  document for the services of ``image-info/``) and
  ``{service}/{region}/{size}/{rotation}/{quality}.{format}`` with the region and size
  syntax of versions 1 to 3, answered with a generated picture of exactly the size asked.
  Strict where real servers are: a level 0 service serves only full/max and its listed
  sizes; one that lists tiles is a static tree (vips dzsave --layout iiif), which holds
  those tiles too, and answers 404 for any other path; version 3 refuses to upscale
  without "^";
- plain image URLs (painted or thumbnail resources) at their declared size;
- the generated shapes collection (see `tests.iiif_shapes`): ``/shapes/manifest.json``,
  ``/shapes/v2/manifest.json``, ``/shapes/collection.json``, services ``/shapes/iiif/..``.

Sizes: an image with no stated size is 1200 x 900. Whole images ("full"/"max" and plain
URLs) larger than `max_pixels` (4 MP by default) come scaled down to it, as from a server
that states ``maxArea`` (which generated info.json documents then state); other requests
get exactly the size asked for, up to 25 MP.

Test hooks: `requests` counts requests per path (decoded, query included) and `count()`
reads it; `max_in_flight` is the most requests answered at once and `user_agents` who
asked; `fail()` makes matching paths misbehave (see `FAILURE_MODES`); `latency` adds a
delay to every request; `add_document()` serves any JSON; `reset()` undoes all of these.
`add_image_service()` serves a picture a test made under a service id at a chosen level
(the same picture may be served by several, e.g. level 0 and level 2); like the services
of added documents, it stays served after `reset()`. An added document never changes the
picture of a service already served: the generated shapes stay shapes when a test serves
a copy of their manifest, for the rest of the session too.

Run alone: ``python -m tests.iiif_server --port 8765 [--shapes-per-pair N]``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from indexer.errors import NotIIIFError
from indexer.imageapi import ImageService, parse_info, parse_service
from models.shapes import collection
from tests import iiif_shapes
from tests.iiif_failures import FAILURE_MODES, Answer, Failure, json_answer, misbehave
from tests.iiif_images import (
    BitmapPicture,
    NotServed,
    PatternPicture,
    RequestError,
    ServedImage,
    ShapePicture,
)

FIXTURES = Path(__file__).parent / "fixtures" / "iiif"
DEFAULT_SIZE = (1200, 900)

# Keys whose values are vocabulary or text, never links to fetch: left as they are.
_KEEP_KEYS = frozenset(
    {
        "@context", "profile", "protocol", "@type", "type", "motivation", "format",
        "rights", "license", "conformsTo", "label", "value", "metadata", "summary",
        "description", "attribution", "requiredStatement", "navDate", "language",
        "viewingHint", "behavior", "viewingDirection",
    }
)  # fmt: skip

# Fixtures that name each other by the address of the test server they came from
# (IIIF-Commons/manifesto served them on localhost:3001).
ALIASES = {
    "/h/localhost:3001/nested-middle.json": "collections/villanova_nested-middle.json",
    "/h/localhost:3001/nested-bottom.json": "collections/villanova_nested-bottom.json",
}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many concurrent harvest connections, none refused

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that leaves a page drops the pictures it was loading: the client's
        # going, not a fault of the server, and no traceback in the tests' output.
        if isinstance(sys.exc_info()[1], ConnectionError):  # reset, broken pipe, aborted
            return
        super().handle_error(request, client_address)


def key_of(url_or_path: str) -> str:
    """The lookup key of a URL or request target: decoded path, query kept, no trailing /."""
    parts = urlsplit(url_or_path)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return unquote(path).rstrip("/") or "/"


def rewrite_urls(node: Any, base: str) -> Any:
    """A copy of `node` whose absolute http(s) links point at `base` under ``/h/``."""
    if isinstance(node, dict):
        return {k: v if k in _KEEP_KEYS else rewrite_urls(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [rewrite_urls(v, base) for v in node]
    if isinstance(node, str) and re.match(r"https?://", node) and not node.startswith(base):
        return f"{base}/h/{node.split('://', 1)[1]}"
    return node


def _keep(registry: dict[str, ServedImage], key: str, candidate: ServedImage) -> None:
    """Register `candidate` unless an image with a stated size is already there: the
    same service often appears first without a size (a thumbnail), then with one."""
    existing = registry.get(key)
    if existing is None or (not existing.stated and candidate.stated):
        registry[key] = candidate


def _dims(node: dict[str, Any]) -> tuple[int, int] | None:
    w, h = node.get("width"), node.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return (w, h)
    return None


def _is_image_resource(node: dict[str, Any]) -> bool:
    kinds = [str(t).lower() for t in (node.get("@type"), node.get("type")) if t]
    fmt = node.get("format")
    return any(k.endswith("image") for k in kinds) or (
        isinstance(fmt, str) and fmt.startswith("image/")
    )


class IIIFTestServer:
    """The server, its registry of documents and images, and its test hooks."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fixtures: Path = FIXTURES,
        shapes_per_pair: int = 3,
        shapes_seed: int = 0,
        twins: list[str] | None = None,
        max_pixels: int = 4_000_000,
    ):
        self.fixtures = fixtures
        self.shapes_defaults: dict[str, Any] = {
            "per_pair": shapes_per_pair,
            "seed": shapes_seed,
            "twins": list(twins or []),
        }
        self.max_pixels = max_pixels
        self.latency = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.user_agents: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.log: list[tuple[str, str, int]] = []
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._documents: dict[str, bytes] = {}  # key -> JSON body
        self._fixture_documents: dict[str, bytes] = {}
        self._services: dict[str, ServedImage] = {}
        self._images: dict[str, ServedImage] = {}
        self._httpd = _HTTPServer((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None
        bound_port = self._httpd.server_address[1]
        # Links must name an address clients can reach: not the "any address" wildcard.
        public_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.base_url = f"http://{public_host}:{bound_port}"
        self._load_fixtures()

    # --- life -------------------------------------------------------------------------

    def start(self) -> IIIFTestServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the command-line entry point)."""
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()

    def __enter__(self) -> IIIFTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- URLs ---------------------------------------------------------------------------

    def url(self, fixture_relpath: str) -> str:
        """The URL of a served fixture, e.g. ``url("v2/loc_loc.json")``."""
        if not (self.fixtures / fixture_relpath).is_file():
            raise FileNotFoundError(f"no fixture {fixture_relpath!r} in {self.fixtures}")
        return f"{self.base_url}/fixtures/{quote(fixture_relpath)}"

    def rewrite(self, url: str) -> str:
        """Where an original http(s) URL is served here."""
        return rewrite_urls(url, self.base_url)

    def fixture_paths(self, under: str = "") -> list[str]:
        """Relative paths of the served fixture documents (optionally under a folder)."""
        root = self.fixtures / under if under else self.fixtures
        return sorted(str(p.relative_to(self.fixtures)) for p in root.rglob("*.json"))

    def shapes_manifest_url(
        self,
        per_pair: int | None = None,
        seed: int | None = None,
        twins: list[str] | None = None,
        version: int = 3,
    ) -> str:
        """The generated shapes manifest; `twins` names specs (e.g. "red-circle-0") whose
        picture is also served under a second image id, as an extra canvas."""
        path = "/shapes/manifest.json" if version == 3 else "/shapes/v2/manifest.json"
        return self._shapes_url(path, per_pair, seed, twins)

    def shapes_collection_url(self, per_pair: int | None = None, seed: int | None = None) -> str:
        return self._shapes_url("/shapes/collection.json", per_pair, seed, [])

    def shapes_objects_url(self, per_pair: int | None = None, seed: int | None = None) -> str:
        """A collection of one manifest per image."""
        return self._shapes_url("/shapes/objects.json", per_pair, seed, [])

    def _shapes_url(
        self, path: str, per_pair: int | None, seed: int | None, twins: list[str] | None
    ) -> str:
        defaults = self.shapes_defaults
        query = iiif_shapes.query(
            defaults["per_pair"] if per_pair is None else per_pair,
            defaults["seed"] if seed is None else seed,
            defaults["twins"] if twins is None else list(twins),
        )
        return f"{self.base_url}{path}?{query}"

    def shapes_service_url(self, name: str, version: int = 3) -> str:
        """The Image API service of one shape ("red-circle-0" or "twin-of-red-circle-0")."""
        return f"{self.base_url}/shapes/{'iiif' if version == 3 else 'iiif2'}/{name}"

    # --- hooks --------------------------------------------------------------------------

    def fail(
        self,
        pattern: str,
        mode: str,
        *,
        status: int = 500,
        times: int | None = None,
        delay: float = 1.0,
        retry_after: int = 1,
    ) -> None:
        """Make requests matching `pattern` (a URL or path, fnmatch wildcards allowed)
        misbehave in `mode` (one of `FAILURE_MODES`); the latest rule added wins."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; one of {sorted(FAILURE_MODES)}")
        rule = Failure(key_of(pattern), mode, status, times, delay, retry_after)
        with self._lock:
            self._failures.insert(0, rule)

    def count(self, url_or_path: str) -> int:
        """How many requests this path (or fnmatch pattern) has had since the last reset."""
        key = key_of(url_or_path)
        with self._lock:
            if any(c in key for c in "*?["):
                return sum(n for k, n in self.requests.items() if fnmatch.fnmatchcase(k, key))
            return self.requests[key]

    def add_document(self, path: str, doc: Any, *, rewrite: bool = True) -> str:
        """Serve `doc` as JSON at `path` (e.g. "/docs/big.json", rewriting its URLs unless
        told not to); its image services are served too. Returns its URL."""
        served = rewrite_urls(doc, self.base_url) if rewrite else doc
        self._register_images(served)
        self._documents[key_of(path)] = json.dumps(served, ensure_ascii=False).encode("utf-8")
        return self.base_url + path

    def add_collection(self, path: str, members: list[Any], **extra: Any) -> str:
        """Serve a Presentation 3 collection at `path` listing `members` (manifest URLs, or
        member objects as they are), with any `extra` properties. Returns its URL."""
        items = [
            {"id": m, "type": "Manifest", "label": {"en": [m]}} if isinstance(m, str) else m
            for m in members
        ]
        doc = {
            "@context": "http://iiif.io/api/presentation/3/context.json",
            "id": self.base_url + path,
            "type": "Collection",
            "label": {"en": [path]},
            "items": items,
            **extra,
        }
        return self.add_document(path, doc, rewrite=False)

    def add_image_service(
        self,
        path: str,
        picture: BitmapPicture,
        *,
        level: int = 2,
        version: int = 2,
        sizes: list[tuple[int, int]] | None = None,
        tiles: dict[str, Any] | None = None,
    ) -> str:
        """Serve `picture` at its own size as an Image API service at `path` (e.g.
        "/sheets/static/a"), at `level`, listing `sizes` and `tiles` (one entry of
        info.json's "tiles": width, height, scaleFactors) in its info.json. Returns its
        id. A document added later that names this id does not replace it. At level 0,
        tiles make it a static tree: its tiles, whole image and sizes, 404 for all else."""
        service_id = self.base_url + path
        listed = list(sizes or [])
        described: dict[str, Any] = {}
        if listed:
            described["sizes"] = [{"width": w, "height": h} for w, h in listed]
        if tiles:
            described["tiles"] = [tiles]
        width, height = picture.image.size
        self._services[key_of(path)] = ServedImage(
            width, height, picture, version, level, listed, described, url=service_id
        )
        return service_id

    def reset(self) -> None:
        """Forget counts, log, failures, latency and added documents."""
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0
            self.user_agents.clear()
            self.log.clear()
            self._failures.clear()
            self.latency = 0.0
            self._documents = dict(self._fixture_documents)

    # --- registry -----------------------------------------------------------------------

    def _load_fixtures(self) -> None:
        for relpath in self.fixture_paths():
            doc = json.loads((self.fixtures / relpath).read_text(encoding="utf-8"))
            served = rewrite_urls(doc, self.base_url)
            body = json.dumps(served, ensure_ascii=False).encode("utf-8")
            self._fixture_documents[key_of(f"/fixtures/{relpath}")] = body
            own_id = (served.get("@id") or served.get("id")) if isinstance(served, dict) else None
            if isinstance(own_id, str) and own_id.startswith(self.base_url):
                self._fixture_documents.setdefault(key_of(own_id), body)
            if relpath.startswith("image-info/"):
                self._register_info(served)
            else:
                self._register_images(served)
        for alias, relpath in ALIASES.items():
            self._fixture_documents[alias] = self._fixture_documents[key_of(f"/fixtures/{relpath}")]
        self._documents = dict(self._fixture_documents)

    def _register_info(self, info: dict[str, Any]) -> None:
        try:
            service = parse_info(info)
        except NotIIIFError:
            return  # a version 1.0 info.json names no id: nothing to serve it under
        _keep(self._services, key_of(service.id), self._served(service, info, None, info=info))

    def _served(
        self,
        service: ImageService,
        described: dict[str, Any],
        dims: tuple[int, int] | None,
        info: dict[str, Any] | None = None,
    ) -> ServedImage:
        stated = _dims(described) or dims
        width, height = stated or DEFAULT_SIZE
        return ServedImage(
            width=width,
            height=height,
            picture=PatternPicture(key_of(service.id)),
            version=service.version,
            level=service.level,
            sizes=list(service.sizes),
            described=described,
            info=info,
            url=service.id,
            stated=stated is not None,
        )

    def _register_images(self, node: Any, dims: tuple[int, int] | None = None) -> None:
        """Every image service and image resource in a document, with the size stated
        nearest to it (its own, else its resource's or canvas's)."""
        if isinstance(node, list):
            for element in node:
                self._register_images(element, dims)
            return
        if not isinstance(node, dict):
            return
        dims = _dims(node) or dims
        services = node.get("service")
        identity: str | None = None
        for entry in services if isinstance(services, list) else [services]:
            if not isinstance(entry, dict):
                continue
            service = parse_service(entry)
            if service is not None and service.id.startswith(self.base_url):
                key = key_of(service.id)
                # A generated shape is drawn as it is, never as a pattern in its place.
                if iiif_shapes.service_spec(key) is None:
                    _keep(self._services, key, self._served(service, entry, dims))
                identity = identity or key
        raw_id = node.get("@id") or node.get("id")
        if _is_image_resource(node) and isinstance(raw_id, str):
            if raw_id.startswith(self.base_url) and key_of(raw_id) not in self._services:
                width, height = dims or DEFAULT_SIZE
                # The picture of its service: the resource's URL is often a request to
                # it (".../full/full/0/default.jpg"), and must show the same image.
                own = self.lookup_service(identity) if identity else None
                picture = own.picture if own else PatternPicture(key_of(raw_id))
                image = ServedImage(width, height, picture, stated=dims is not None)
                _keep(self._images, key_of(raw_id), image)
        for name, value in node.items():
            if name != "service":
                self._register_images(value, dims)

    def lookup_service(self, key: str) -> ServedImage | None:
        if key in self._services:
            return self._services[key]
        found = iiif_shapes.service_spec(key)
        if found is None:
            return None
        version, spec = found
        size = iiif_shapes.SHAPE_SIZE
        picture = ShapePicture(spec)
        return ServedImage(size, size, picture, version, 2, url=self.base_url + key)

    # --- answers ------------------------------------------------------------------------

    def document_bytes(self, key: str, params: dict[str, str]) -> bytes | None:
        if key in self._documents:
            return self._documents[key]
        path = key.split("?", 1)[0]
        doc = iiif_shapes.document(self.base_url, path, params, self.shapes_defaults)
        return None if doc is None else json.dumps(doc, ensure_ascii=False).encode("utf-8")

    def answer(self, key: str, params: dict[str, str]) -> Answer:
        """The normal answer to a GET of `key`, before any failure rule applies."""
        if key == "/":
            index = {
                "fixtures": [self.url(p) for p in self.fixture_paths()],
                "shapes": self.shapes_manifest_url(),
            }
            return json_answer(200, index)
        try:
            body = self.document_bytes(key, params)
        except ValueError as error:  # a bad shapes parameter (twin name, number)
            return json_answer(400, {"error": str(error)})
        if body is not None:
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            return Answer(200, body, "application/json", {"ETag": etag})
        if key.endswith("/info.json"):
            image = self.lookup_service(key[: -len("/info.json")])
            if image is not None:
                return json_answer(200, image.info_document(self.max_pixels))
        if key in self._images:
            return Answer(200, *self._images[key].whole(self.max_pixels))
        image = self.lookup_service(key)
        if image is not None:  # the base URI of a service: Image API says redirect
            return Answer(303, b"", "text/plain", {"Location": image.url + "/info.json"})
        parts = key.split("/")
        image = self.lookup_service("/".join(parts[:-4])) if len(parts) > 5 else None
        if image is not None:
            try:
                return Answer(200, *image.answer(parts[-4:], self.max_pixels))
            except NotServed as error:
                return json_answer(404, {"error": str(error)})
            except RequestError as error:
                return json_answer(400, {"error": str(error)})
        return json_answer(404, {"error": f"nothing is served at {key}"})

    def failure_for(self, key: str) -> Failure | None:
        with self._lock:
            for rule in self._failures:
                if fnmatch.fnmatchcase(key, rule.pattern):
                    if rule.times is not None:
                        if rule.times <= 0:
                            continue
                        rule.times -= 1
                    return rule
        return None

    def enter(self, user_agent: str) -> None:
        """A request begins: track how many are in flight at once, and who asks."""
        with self._lock:
            self.user_agents.add(user_agent)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def record(self, method: str, key: str, status: int) -> None:
        with self._lock:
            self.requests[key] += 1
            self.log.append((method, key, status))


def _make_handler(server: IIIFTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real IIIF servers do
        # Headers and body go out in two writes: without this, Nagle's algorithm and
        # delayed ACKs add about 40 ms to every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the counters and `log` say what happened

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def _serve(self, send_body: bool) -> None:
            server.enter(self.headers.get("User-Agent", ""))
            try:
                self._answer(send_body)
            finally:
                server.leave()

        def _answer(self, send_body: bool) -> None:
            key = key_of(self.path)
            params = dict(parse_qsl(urlsplit(self.path).query))
            if server.latency:
                time.sleep(server.latency)
            rule = server.failure_for(key)
            if rule is not None and rule.mode == "reset":
                server.record(self.command, key, 0)
                self.close_connection = True
                return
            if rule is not None and rule.mode == "slow":
                time.sleep(rule.delay)
            answer = server.answer(key, params)
            if rule is not None:
                answer = misbehave(rule, answer)
            etag = answer.headers.get("ETag")
            if etag and self.headers.get("If-None-Match") == etag and answer.status == 200:
                answer = Answer(304, b"", answer.content_type, {"ETag": etag})
            if answer.headers.get("Location") == "SELF":
                answer.headers["Location"] = self.path
            server.record(self.command, key, answer.status)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if send_body:
                self.wfile.write(answer.body)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve IIIF fixtures and generated shapes.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on")
    parser.add_argument("--shapes-per-pair", type=int, default=3, help="pictures per pair")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shapes collection")
    parser.add_argument("--twins", default="", help="comma-separated shape names to twin")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    args = parser.parse_args(argv)
    server = IIIFTestServer(
        args.host,
        args.port,
        shapes_per_pair=args.shapes_per_pair,
        shapes_seed=args.seed,
        twins=[t for t in args.twins.split(",") if t],
    )
    server.latency = args.latency
    count = len(collection(args.shapes_per_pair, args.seed))
    print(f"IIIF test server on {server.base_url}")
    print(f"  shapes manifest ({count} images): {server.shapes_manifest_url()}")
    print(f"  shapes collection: {server.shapes_collection_url()}")
    print(f"  fixtures: {server.base_url}/fixtures/<relpath>, index at {server.base_url}/")
    sys.stdout.flush()  # a parent process reads these lines to know the server is up
    server.serve_forever()


if __name__ == "__main__":
    main()
