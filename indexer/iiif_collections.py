"""Walking IIIF collections: every manifest reachable from the sources, once each.

`walk(sources, load)` reads each source (a manifest or a collection), follows the
collections it names to any depth, and the pages of paged collections (``first`` /
``next``, as strings or objects with an id), and yields one `Found` per manifest:
`FoundManifest`, `UnchangedManifest` (when `load` returned None) or `FailedSource`.
`walk_in_groups` yields the same in lists: what finished while the consumer was busy
with the last list, so that it can save several manifests at once.

- Each URL is loaded at most once, which also stops cycles (a collection that lists
  itself, A → B → A); a collection met again under another URL (its id) is not walked
  twice.
- Manifests come out in document order (the order their URLs were met), whatever order
  their loads end in, so that the outcome never depends on thread timing: when a second
  document claims the id of a manifest already yielded in this walk (a copy at another
  URL, or the same wrong id in two manifests), it is a `FailedSource` "same id as
  <first URL>, already read in this run". An unchanged manifest claims the id `known`
  gives for its URL (its id at the last harvest). Waiting for a slow load holds at most
  ``16 * workers`` finished manifests; then only that load goes on.
- A manifest embedded whole in its collection (it has canvases) is used as it is,
  without a request; its content hash is that of its canonical JSON.
- Manifests (and the sources) are loaded by `workers` daemon threads; collection pages
  one at a time, a page ahead of need. At most ``2 * workers`` loads are queued or
  running, so memory stays bounded whatever the size of the collection: only the
  members of the pages read so far and the set of URLs seen are kept.
- Closing the generator (or an exception such as KeyboardInterrupt in the consumer)
  drops the queued loads; loads already running end on their own and their results are
  dropped. The threads are daemons: none can keep the process alive.

Local files: a source may be a path (the operator named it), and so may a member or
page named by a document read from a local file; one named by a document fetched over
HTTP(S) is never read but reported as a `FailedSource` (`fetch.local_refusal`). `local`
on a found manifest says it was read from a local file: only then may the file:// images
it names be read.

`parents` are the URLs of the collections above a manifest (or a failed page), the
source first; pages are not parents: the members of every page, and the page itself,
belong to the collection that was listed (the URL its first document was loaded from).

Contract for `load`: return None only for a URL it already knows as a manifest (a
conditional request found it unchanged). A collection must always be returned in full:
a page that comes back as None is reported as a `FailedSource`, since its members could
not be listed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Any, Literal

from indexer.errors import SourceError
from indexer.fetch import Document, is_url, local_refusal
from indexer.iiif import Collection, Manifest, parse_document
from indexer.iiif_canvas import as_list, node_id, node_types

Load = Callable[[str], Document | None]


@dataclass(frozen=True)
class FoundManifest:
    url: str
    manifest: Manifest
    content_hash: str
    parents: tuple[str, ...] = ()
    local: bool = False  # read from a local file: its file:// images may be read


@dataclass(frozen=True)
class UnchangedManifest:
    """`load` said the manifest has not changed since the last harvest."""

    url: str
    parents: tuple[str, ...] = ()
    local: bool = False
    manifest_id: str | None = None  # its id as last read, where the walk was told (`known`)


@dataclass(frozen=True)
class FailedSource:
    """A manifest or collection page that could not be read or is not IIIF."""

    url: str
    reason: str
    parents: tuple[str, ...] = ()


Found = FoundManifest | UnchangedManifest | FailedSource

# "source": a URL given to walk(), of either kind; "manifest": a member listed as one;
# "collection": a member collection; "page": a `first`/`next` page of a collection.
Kind = Literal["source", "manifest", "collection", "page"]
_PAGES: frozenset[Kind] = frozenset({"collection", "page"})


@dataclass(frozen=True)
class _Task:
    url: str
    kind: Kind
    parents: tuple[str, ...]  # for a page, they end with the collection it is a page of
    place: int = -1  # a manifest's or source's place in document order; -1 for pages

    @property
    def members_parents(self) -> tuple[str, ...]:
        return self.parents if self.kind == "page" else (*self.parents, self.url)


@dataclass(frozen=True)
class _Page:
    """A collection document read by a worker, with its embedded manifests parsed."""

    collection: Collection
    embedded: dict[str, tuple[Manifest, str]]


def walk(
    sources: Sequence[str],
    load: Load,
    *,
    workers: int = 4,
    known: Callable[[str], str | None] | None = None,
) -> Generator[Found, None, None]:
    """Every manifest reachable from `sources`, in document order. `known(url)`: the
    manifest id a URL had when `load` last read it, for those it finds unchanged."""
    return _one_by_one(walk_in_groups(sources, load, workers=workers, known=known))


def _one_by_one(groups: Generator[list[Found], None, None]) -> Generator[Found, None, None]:
    with closing(groups):  # closing this closes the walk at once, as a generator should
        for group in groups:
            yield from group


def walk_in_groups(
    sources: Sequence[str],
    load: Load,
    *,
    workers: int = 4,
    known: Callable[[str], str | None] | None = None,
) -> Generator[list[Found], None, None]:
    """`walk`, a list at a time: what the workers finished while the consumer was busy
    with the last list, in document order (so that it can save them all at once)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    return _walk(sources, load, workers, known)


def _walk(
    sources: Sequence[str], load: Load, workers: int, known: Callable[[str], str | None] | None
) -> Generator[list[Found], None, None]:
    walker = _Walker(sources, load, workers, known)
    try:
        yield from walker.run()
    finally:
        walker.close()


class _Walker:
    def __init__(
        self,
        sources: Iterable[str],
        load: Load,
        workers: int,
        known: Callable[[str], str | None] | None = None,
    ):
        self._sources = iter(sources)
        self._known = known
        self._limit = 2 * workers  # loads queued or running: keeps every worker busy
        self._hold = 16 * workers  # finished manifests waiting for an earlier one, at most
        self._manifests: deque[_Task] = deque()  # FIFO: document order
        self._pages: list[_Task] = []  # LIFO: a subtree is finished before the next
        self._seen: set[str] = set()  # URLs queued or known: never loaded again
        self._walked: set[str] = set()  # ids of the collections walked
        self._claims: dict[str, str] = {}  # manifest id -> URL of the one yielded
        self._places = itertools.count()
        self._order: deque[int] = deque()  # places not yet yielded, in document order
        self._ready: dict[int, Found | None] = {}  # finished, waiting for their turn
        self._refused: set[str] = set()  # local paths named by remote documents
        self._in_flight = 0
        self._page_in_flight = False
        self._pool = _Pool(workers, lambda task: _read(task, load))

    def close(self) -> None:
        self._pool.close()

    def run(self) -> Iterator[list[Found]]:
        while True:
            self._fill()
            if self._in_flight == 0:
                return
            found: list[Found] = []
            for task, outcome in self._finished():
                found += self._took(task, outcome)
                found += self._release()
            self._fill()  # the workers go on while the consumer deals with these
            if found:
                yield found

    def _finished(self) -> Iterator[tuple[_Task, Any]]:
        """The next load to finish (waiting for it), then every other finished by now."""
        yield self._pool.results.get()
        while True:
            try:
                yield self._pool.results.get_nowait()
            except queue.Empty:
                return

    def _took(self, task: _Task, outcome: Any) -> Iterator[Found]:
        """What a finished load leads to at once: the failures a page's members meet, or
        its own failure (manifests wait for their turn: `_release`)."""
        self._in_flight -= 1
        if task.kind in _PAGES:
            self._page_in_flight = False
        if isinstance(outcome, BaseException):
            raise outcome  # not raised by load (those are caught): a bug, not a source
        if task.place >= 0:
            # A source (or member) that is a collection yields nothing in its place.
            self._ready[task.place] = None if isinstance(outcome, _Page) else outcome
        if isinstance(outcome, _Page):
            yield from self._expand(task, outcome)
        elif task.place < 0:
            yield outcome  # a collection or page that failed

    def _release(self) -> Iterator[Found]:
        """Yield what has finished, in document order, up to the first still loading."""
        while self._order and self._order[0] in self._ready:
            outcome = self._ready.pop(self._order.popleft())
            if outcome is not None:
                yield self._claim(outcome)

    def _claim(self, found: Found) -> Found:
        """`found`, or a failure when an earlier manifest of this walk has its id."""
        if isinstance(found, FoundManifest):
            doc_id: str | None = found.manifest.id
        elif isinstance(found, UnchangedManifest) and self._known is not None:
            doc_id = self._known(found.url)
            found = replace(found, manifest_id=doc_id)
        else:
            return found
        if doc_id is None:
            return found
        first = self._claims.setdefault(doc_id, found.url)
        if first == found.url:
            return found
        return FailedSource(
            found.url, f"same id as {first}, already read in this run", found.parents
        )

    def _fill(self) -> None:
        """Start loads up to the limit: the next page once the queue of manifests runs
        low, manifests in order, and a new source only when nothing else is left."""
        while self._in_flight < self._limit:
            if len(self._ready) >= self._hold:
                # Enough is waiting for the oldest load: start only that one, if queued.
                if self._manifests and self._manifests[0].place == self._order[0]:
                    self._submit(self._manifests.popleft())
                    continue
                return
            if self._pages and not self._page_in_flight and len(self._manifests) < self._limit:
                self._submit(self._pages.pop())
            elif self._manifests:
                self._submit(self._manifests.popleft())
            elif self._pages or self._page_in_flight:
                return  # the page being read will say what comes next
            elif (source := next(self._sources, None)) is not None:
                self._queue(source, "source", ())
            else:
                return

    def _submit(self, task: _Task) -> None:
        self._in_flight += 1
        self._page_in_flight = self._page_in_flight or task.kind in _PAGES
        self._pool.submit(task)

    def _queue(self, url: str, kind: Kind, parents: tuple[str, ...]) -> None:
        if url in self._seen:
            return
        self._seen.add(url)
        if kind in _PAGES:
            self._pages.append(_Task(url, kind, parents))
        else:
            self._manifests.append(_Task(url, kind, parents, self._place()))

    def _place(self) -> int:
        place = next(self._places)
        self._order.append(place)
        return place

    def _first_walk(self, collection_id: str) -> bool:
        """False when a collection with this id was already walked (met under another
        URL); else remembers it, so that its id is not loaded again either. Pages are read
        one at a time, in a fixed order: this never depends on timing. (Manifest ids are
        not marked seen: when a load ends decides nothing.)"""
        if collection_id in self._walked:
            return False
        self._walked.add(collection_id)
        self._seen.add(collection_id)
        return True

    def _expand(self, task: _Task, page: _Page) -> Iterator[Found]:
        collection = page.collection
        # A page's id may be that of its collection: only whole collections count here.
        if task.kind != "page" and not self._first_walk(collection.id):
            return
        members_parents = task.members_parents
        local = not is_url(task.url)  # what this document names may be local too
        for ref in collection.manifests:
            if ref.id in page.embedded and ref.id not in self._seen:
                self._seen.add(ref.id)
                manifest, content_hash = page.embedded[ref.id]
                found = FoundManifest(ref.id, manifest, content_hash, members_parents, local)
                self._ready[self._place()] = found
            else:
                yield from self._named(ref.id, "manifest", members_parents, local)
        # Pushed on a stack: the next page last, so that it is read first; then the
        # member collections, in document order.
        for ref in reversed(collection.collections):
            yield from self._named(ref.id, "collection", members_parents, local)
        for link in (collection.next, collection.first):
            if link:
                yield from self._named(link, "page", members_parents, local)

    def _named(
        self, url: str, kind: Kind, parents: tuple[str, ...], named_locally: bool
    ) -> Iterator[FailedSource]:
        """Queue a URL a document names, unless it is a local path a remote one names:
        that is reported (once), never read, and not marked seen, so that a local source
        naming the same path still reads it."""
        refusal = local_refusal(url, named_locally=named_locally)
        if refusal is None:
            self._queue(url, kind, parents)
        elif url not in self._refused:
            self._refused.add(url)
            yield FailedSource(url, refusal, parents)


def _read(task: _Task, load: Load) -> FoundManifest | UnchangedManifest | FailedSource | _Page:
    """Load and parse one document (in a worker thread)."""
    local = not is_url(task.url)  # a path only the operator or a local file named
    try:
        document = load(task.url)
        if document is None:
            if task.kind in _PAGES:
                reason = "collection came back as not modified: its members cannot be listed"
                return FailedSource(task.url, reason, task.parents)
            return UnchangedManifest(task.url, task.parents, local)
        parsed = parse_document(document.data, task.url)
    except SourceError as error:
        return FailedSource(task.url, error.problem, task.parents)
    except Exception as error:  # a run of 100,000 manifests goes on past one odd error
        return FailedSource(task.url, f"{type(error).__name__}: {error}", task.parents)
    if isinstance(parsed, Manifest):
        return FoundManifest(task.url, parsed, document.content_hash, task.parents, local)
    return _Page(parsed, _embedded_manifests(document.data))


def _embedded_manifests(doc: Any) -> dict[str, tuple[Manifest, str]]:
    """Members given whole in the collection (with canvases), parsed, by id."""
    found: dict[str, tuple[Manifest, str]] = {}
    for key in ("manifests", "members", "items"):
        for entry in as_list(doc.get(key)):
            entry_id = node_id(entry)
            if not entry_id or not isinstance(entry, dict) or not _has_canvases(entry):
                continue
            try:
                parsed = parse_document(entry, entry_id)
            except SourceError:
                continue  # fetched by its id instead
            # One whose id is not its own URL (a template) is not taken: named, it fails.
            if isinstance(parsed, Manifest) and parsed.id == entry_id:
                found.setdefault(entry_id, (parsed, _json_hash(entry)))
    return found


def _has_canvases(entry: dict[str, Any]) -> bool:
    if "collection" in node_types(entry):
        return False
    for sequence in as_list(entry.get("sequences")):
        if isinstance(sequence, dict) and as_list(sequence.get("canvases")):
            return True
    items = as_list(entry.get("items"))
    return any(isinstance(item, dict) and "canvas" in node_types(item) for item in items)


def _json_hash(node: Any) -> str:
    canonical = json.dumps(node, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _Pool:
    """Daemon worker threads: a stopped walk never keeps the process alive waiting for
    a slow server (a ThreadPoolExecutor's threads are joined at interpreter exit)."""

    def __init__(self, workers: int, work: Callable[[_Task], Any]):
        self._work = work
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[_Task, Any]] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self.threads = [
            threading.Thread(target=self._serve, name=f"regard-walk-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, task: _Task) -> None:
        self._tasks.put(task)

    def close(self) -> None:
        self._stopped.set()
        try:
            while True:
                self._tasks.get_nowait()
        except queue.Empty:
            pass
        for _ in self.threads:
            self._tasks.put(None)

    def _serve(self) -> None:
        while (task := self._tasks.get()) is not None and not self._stopped.is_set():
            try:
                outcome = self._work(task)
            except BaseException as error:  # handed to the consumer, never lost
                outcome = error
            if self._stopped.is_set():
                return
            self.results.put((task, outcome))
