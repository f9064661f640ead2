"""Walking IIIF collections against the local test server: nesting, paging, cycles,
duplicates, ids claimed twice, embedded manifests, failures, unchanged manifests, and
stopping early."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing

import httpx
import pytest

from indexer.errors import SourceError
from indexer.fetch import Document, Fetcher, FetchSettings
from indexer.iiif_collections import (
    FailedSource,
    Found,
    FoundManifest,
    UnchangedManifest,
    walk,
    walk_in_groups,
)
from indexer.store import Store
from tests.iiif_server import FIXTURES, IIIFTestServer
from tests.regard_fixtures import index

V3 = "http://iiif.io/api/presentation/3/context.json"


@pytest.fixture(scope="module")
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchSettings(retries=0, per_host=16, max_connections=16)) as client:
        yield client


def load_with(fetcher: Fetcher) -> Callable[[str], Document | None]:
    return lambda url: fetcher.document(url)


def manifest_url(server: IIIFTestServer, seed: int) -> str:
    """A real generated manifest (one picture per colour and shape), distinct per seed."""
    return server.shapes_manifest_url(per_pair=1, seed=seed)


def child(url: str) -> dict[str, str]:
    return {"id": url, "type": "Collection"}


def by_kind(results: list[Found]) -> dict[str, list[Found]]:
    kinds: dict[str, list[Found]] = {}
    for found in results:
        kinds.setdefault(type(found).__name__, []).append(found)
    return kinds


def walk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("regard-walk")]


def wait_for_no_walk_threads(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while walk_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not walk_threads()


# -- the fixtures of real publishers -------------------------------------------------------


def test_nested_collection_reaches_the_bottom_with_its_parents(server, fetcher):
    top = server.url("collections/villanova_nested-top.json")
    middle = server.rewrite("http://localhost:3001/nested-middle.json")
    bottom = server.rewrite("http://localhost:3001/nested-bottom.json")
    listed = json.loads((FIXTURES / "collections/villanova_nested-bottom.json").read_text())

    results = list(walk([top], load_with(fetcher)))

    # The bottom's manifests are not served here: each is reached, and fails alone.
    assert {r.url for r in results} == {server.rewrite(m["@id"]) for m in listed["manifests"]}
    assert all(isinstance(r, FailedSource) and "404" in r.reason for r in results)
    assert {r.parents for r in results} == {(top, middle, bottom)}
    assert server.count(middle) == server.count(bottom) == 1


def test_paged_collection_follows_first_and_next(server, fetcher):
    top = server.url("collections/bsb_paginated-collection.json")
    page = json.loads((FIXTURES / "collections/bsb_paginated-collection-page.json").read_text())

    results = list(walk([top], load_with(fetcher), workers=8))

    manifests = {server.rewrite(m["@id"]) for m in page["manifests"]}
    next_page = server.rewrite(page["next"])
    assert {r.url for r in results} == manifests | {next_page}
    # Members of every page, and the page that could not be read, belong to the top.
    assert {r.parents for r in results} == {(top,)}
    failed_page = next(r for r in results if r.url == next_page)
    assert isinstance(failed_page, FailedSource) and "404" in failed_page.reason
    assert server.count(server.rewrite(page["@id"])) == 1


def test_paging_links_given_as_objects(server, fetcher):
    base = server.base_url
    page2 = server.add_collection("/paged/2.json", [manifest_url(server, 2)])
    next_link = {"id": page2, "type": "CollectionPage"}
    page1 = server.add_collection("/paged/1.json", [manifest_url(server, 1)], next=next_link)
    first = {"id": page1, "type": "CollectionPage"}
    top = server.add_collection("/paged/top.json", [], first=first, total=2)
    assert top == base + "/paged/top.json"

    results = list(walk([top], load_with(fetcher)))

    assert all(isinstance(r, FoundManifest) for r in results)
    assert {r.url for r in results} == {manifest_url(server, 1), manifest_url(server, 2)}
    assert {r.parents for r in results} == {(top,)}


def test_v3_cookbook_collection(server, fetcher):
    raw = (FIXTURES / "collections/iiifcookbook_0032-collection_collection.json").read_text()
    as_published = server.url("collections/iiifcookbook_0032-collection_collection.json")

    # As published, its ids are templates: each member fails with the reason (not URLs,
    # so never read as local paths: they come from a remote document).
    results = list(walk([as_published], load_with(fetcher)))
    assert {r.url for r in results} == {
        "{{ id.path }}/manifest-01.json",
        "{{ id.path }}/manifest-02.json",
    }
    assert all(
        isinstance(r, FailedSource) and "not read from remote documents" in r.reason
        for r in results
    )

    # With its templates filled in, both manifests are harvested.
    filled = raw.replace("{{ id.url }}", server.base_url + "/cookbook/collection.json")
    filled = filled.replace("{{ id.path }}/manifest-01.json", manifest_url(server, 1))
    filled = filled.replace("{{ id.path }}/manifest-02.json", manifest_url(server, 2))
    url = server.add_document("/cookbook/collection.json", json.loads(filled))
    found = list(walk([url], load_with(fetcher)))
    assert all(isinstance(r, FoundManifest) for r in found)
    assert {r.url for r in found} == {manifest_url(server, 1), manifest_url(server, 2)}
    assert all(len(r.manifest.images) > 0 for r in found)


def test_empty_collection_yields_nothing(server, fetcher):
    url = server.url("collections/villanova_empty-collection.json")
    assert list(walk([url], load_with(fetcher))) == []
    assert server.count(url) == 1


# -- cycles and duplicates -----------------------------------------------------------------


def test_collection_that_contains_itself_is_read_once(server, fetcher):
    url = server.base_url + "/cycle/self.json"
    server.add_collection("/cycle/self.json", [child(url), manifest_url(server, 1), url])

    results = list(walk([url], load_with(fetcher)))

    assert [r.url for r in results] == [manifest_url(server, 1)]
    assert isinstance(results[0], FoundManifest)
    assert server.count(url) == 1


def test_a_b_a_cycle_visits_each_collection_once(server, fetcher):
    a = server.base_url + "/cycle/a.json"
    b = server.base_url + "/cycle/b.json"
    server.add_collection("/cycle/a.json", [child(b), manifest_url(server, 1)])
    server.add_collection("/cycle/b.json", [child(a), manifest_url(server, 2)])

    results = {r.url: r for r in walk([a], load_with(fetcher))}

    assert results[manifest_url(server, 1)].parents == (a,)
    assert results[manifest_url(server, 2)].parents == (a, b)
    assert len(results) == 2
    assert server.count(a) == server.count(b) == 1


def test_a_collection_met_again_under_another_url_is_not_walked_twice(server, fetcher):
    # The fixture is served at /fixtures/... and at its own id: the same collection.
    fixture_url = server.url("collections/villanova_nested-bottom.json")
    listed = json.loads((FIXTURES / "collections/villanova_nested-bottom.json").read_text())
    own_id = server.rewrite(listed["@id"])
    wrapper = server.add_collection("/dup/wrapper.json", [child(fixture_url), child(own_id)])

    results = list(walk([wrapper], load_with(fetcher)))

    assert len(results) == len({r.url for r in results}) == 9


def test_same_manifest_listed_twice_is_harvested_once(server, fetcher):
    one = manifest_url(server, 1)
    inner = server.add_collection("/dup/inner.json", [one])
    outer = server.add_collection("/dup/outer.json", [one, child(inner), one])
    # The same manifest under a second URL: the fixture path and its own id.
    fixture = server.url("v3/bodleian_bodleian.json")
    fixture_id = parse_id(fetcher, fixture)
    assert fixture_id != fixture

    results = list(walk([outer, one, fixture, fixture_id], load_with(fetcher)))

    # Once each; the copy at its own id is read, and said to be one (never dropped).
    read, copy = results[:2], results[2]
    assert [(r.url, r.manifest.id) for r in read] == [(one, one), (fixture, fixture_id)]
    assert copy == FailedSource(fixture_id, f"same id as {fixture}, already read in this run")
    assert server.count(one) == 1


GAU, GAU_EXCERPT = "v2/ecodices_gau.json", "edge/ecodices_multipleSequences.json"  # one id


@pytest.mark.parametrize("slow_first", [False, True])
@pytest.mark.parametrize("order", [(GAU, GAU_EXCERPT), (GAU_EXCERPT, GAU)])
def test_a_second_document_with_the_same_id_fails_naming_the_first(
    server, fetcher, order, slow_first
):
    first, second = (server.url(relpath) for relpath in order)
    if slow_first:  # the second is loaded first: the order listed still decides
        server.fail(first, "slow", delay=0.5)
    url = server.add_collection("/same-id/c.json", [first, second])

    found, failed = list(walk([url], load_with(fetcher)))

    assert isinstance(found, FoundManifest) and found.url == first
    reason = f"same id as {first}, already read in this run"
    assert failed == FailedSource(second, reason, (url,))


def test_every_manifest_fixture_listed_is_read_or_said_unread(server, fetcher):
    relpaths = [p for p in server.fixture_paths() if p.split("/")[0] in ("v2", "v3", "edge")]
    members = [server.url(relpath) for relpath in relpaths]
    url = server.add_collection("/all/c.json", members)

    results = list(walk([url], load_with(fetcher), workers=8))

    assert [r.url for r in results] == members  # 52 named, 52 accounted for
    failed = [r for r in results if isinstance(r, FailedSource)]
    first = server.url(min(GAU, GAU_EXCERPT, key=relpaths.index))
    second = server.url(max(GAU, GAU_EXCERPT, key=relpaths.index))
    reason = f"same id as {first}, already read in this run"
    assert failed == [FailedSource(second, reason, (url,))]
    ids = [r.manifest.id for r in results if isinstance(r, FoundManifest)]
    assert len(ids) == len(set(ids)) == 51


def test_template_ids_become_the_urls_they_were_read_from(server, fetcher):
    recipes = [
        server.url("edge/iiifcookbook_0283-missing-image_manifest.json"),
        server.url("edge/iiifcookbook_0006-text-language_manifest.json"),
    ]
    url = server.add_collection("/recipes/c.json", recipes)

    results = list(walk([url], load_with(fetcher)))

    assert all(isinstance(r, FoundManifest) for r in results)
    assert [(r.url, r.manifest.id) for r in results] == [(u, u) for u in recipes]


def test_finished_manifests_wait_for_a_slow_earlier_one_a_bounded_number(server, fetcher):
    members = [manifest_url(server, seed) for seed in range(60)]
    url = server.add_collection("/hold/c.json", members)
    server.fail(members[0], "slow", delay=1.5)
    started_while_slow: list[int] = []
    loads: list[str] = []

    def load(source: str) -> Document | None:
        loads.append(source)
        document = fetcher.document(source)
        if source == members[0]:
            started_while_slow.append(len(loads))
        return document

    results = list(walk([url], load, workers=2))  # 4 loads at once, 32 finished held

    assert [r.url for r in results] == members  # in document order
    # The collection, the slow one, 32 held and at most 3 more already started.
    assert 1 + 1 + 32 <= started_while_slow[0] <= 1 + 1 + 32 + 3


def test_every_run_reads_the_same_one_of_two_documents_with_one_id(tmp_path, server, capsys):
    gau, excerpt = server.url(GAU), server.url(GAU_EXCERPT)
    recipes = [
        server.url("edge/iiifcookbook_0283-missing-image_manifest.json"),
        server.url("edge/iiifcookbook_0006-text-language_manifest.json"),
    ]
    url = server.add_collection("/runs/c.json", [gau, excerpt, *recipes])
    store = tmp_path / "store"
    unread = [{"source": excerpt, "reason": f"same id as {gau}, already read in this run"}]

    # The second run finds gau unchanged: its id, known from the first, is still claimed.
    for unchanged in (0, 3):
        assert index(url, store=store) == 1  # a source was not read
        with closing(Store.open(store)) as opened:
            stats = opened.stats()
        with closing(sqlite3.connect(store / "store.sqlite")) as db:
            ids = {row[0] for row in db.execute("SELECT id FROM manifests")}
        summary = stats["last_run"]["summary"]
        assert summary["source_failures"] == unread
        assert summary["unchanged_manifests"] == unchanged and summary["removed"] == 0
        assert ids == {fetched_id(gau), *recipes}
        assert stats["items"] == 25 + 3 + 1  # gau's two sequences, and the recipes
        assert f"{excerpt}: same id as {gau}" in capsys.readouterr().err


def fetched_id(url: str) -> str:
    return json.loads(httpx.get(url).content)["@id"]


def parse_id(fetcher: Fetcher, url: str) -> str:
    document = fetcher.document(url)
    assert document is not None
    return document.data["id"]


# -- size, concurrency and stopping --------------------------------------------------------


def test_a_page_of_1000_members(server, fetcher):
    members = [manifest_url(server, seed) for seed in range(1000)]
    url = server.add_collection("/big/collection.json", members)

    results = list(walk([url], load_with(fetcher), workers=16))

    assert len(results) == 1000
    assert all(isinstance(r, FoundManifest) for r in results)
    assert {r.url for r in results} == set(members)
    assert server.count("/shapes/manifest.json*") == 1000


def test_manifests_load_concurrently_within_the_worker_limit(server, fetcher):
    url = server.add_collection("/conc/c.json", [manifest_url(server, s) for s in range(12)])
    load = fetcher.document
    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def counting_load(source: str) -> Document | None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        try:
            time.sleep(0.05)  # a slow server: loads overlap if they can
            return load(source)
        finally:
            with lock:
                running[0] -= 1

    results = list(walk([url], counting_load, workers=3))

    assert len(results) == 12
    assert running[1] == 3


def test_what_finished_while_the_consumer_was_busy_comes_at_once_in_order(server, fetcher):
    members = [manifest_url(server, seed) for seed in range(6)]
    url = server.add_collection("/groups/c.json", members)
    held = threading.Event()
    returned: list[str] = []

    def load(source: str) -> Document | None:
        if source not in (url, members[0]):
            held.wait(30)  # the rest finish while the consumer has the first
        document = fetcher.document(source)
        returned.append(source)
        return document

    groups = walk_in_groups([url], load, workers=4)  # all six loads at once
    first = next(groups)
    held.set()
    deadline = time.monotonic() + 30
    while len(returned) < 1 + len(members) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # their results handed over by the workers
    rest = next(groups)
    assert [found.url for found in first] == members[:1]
    assert [found.url for found in rest] == members[1:]  # one list, in document order
    assert all(isinstance(found, FoundManifest) for found in rest)
    assert next(groups, None) is None
    wait_for_no_walk_threads()


def test_stopping_early_cancels_pending_work_and_ends_the_threads(server, fetcher):
    url = server.add_collection("/stop/c.json", [manifest_url(server, s) for s in range(500)])
    calls: list[str] = []

    def counting_load(source: str) -> Document | None:
        calls.append(source)
        return fetcher.document(source)

    workers = 4
    walker = walk([url], counting_load, workers=workers)
    taken = [next(walker) for _ in range(10)]
    assert len(taken) == 10
    # Bounded: the collection page, what was taken, and at most 2 * workers ahead.
    assert len(calls) <= 1 + 10 + 2 * workers
    walker.close()
    wait_for_no_walk_threads()
    settled = len(calls)
    time.sleep(0.1)
    assert len(calls) == settled < 50


def test_keyboard_interrupt_in_the_consumer_stops_the_walk(server, fetcher):
    url = server.add_collection("/stop/ki.json", [manifest_url(server, s) for s in range(200)])
    with pytest.raises(KeyboardInterrupt):
        for _ in walk([url], load_with(fetcher)):
            raise KeyboardInterrupt
    wait_for_no_walk_threads()


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        walk(["x"], lambda url: None, workers=0)


# -- failures, unchanged and embedded manifests --------------------------------------------


def test_a_member_that_404s_fails_alone(server, fetcher):
    missing = server.base_url + "/nothing/here.json"
    ok = [manifest_url(server, 1), manifest_url(server, 2)]
    url = server.add_collection("/fail/404.json", [ok[0], missing, ok[1]])

    kinds = by_kind(list(walk([url], load_with(fetcher))))

    assert {r.url for r in kinds["FoundManifest"]} == set(ok)
    [failed] = kinds["FailedSource"]
    assert failed == FailedSource(missing, "HTTP 404 Not Found", (url,))


@pytest.mark.parametrize(
    ("mode", "reason"), [("html", "HTML page"), ("invalid_json", "not valid JSON")]
)
def test_a_member_that_is_not_json_fails_with_the_reason(server, fetcher, mode, reason):
    bad = server.base_url + "/bad/member.json"
    server.fail("/bad/member.json", mode)
    url = server.add_collection("/fail/bad.json", [bad, manifest_url(server, 1)])

    kinds = by_kind(list(walk([url], load_with(fetcher))))

    assert len(kinds["FoundManifest"]) == 1
    [failed] = kinds["FailedSource"]
    assert failed.url == bad and reason in failed.reason and failed.parents == (url,)


def test_a_member_collection_that_is_not_iiif_fails(server, fetcher):
    odd = server.add_document("/odd/info.json", {"hello": "world"})
    url = server.add_collection("/fail/odd.json", [child(odd), manifest_url(server, 1)])

    kinds = by_kind(list(walk([url], load_with(fetcher))))

    [failed] = kinds["FailedSource"]
    assert failed.url == odd and "not a IIIF" in failed.reason
    assert len(kinds["FoundManifest"]) == 1


def test_unexpected_errors_from_load_are_failures_not_crashes(server, fetcher):
    boom = manifest_url(server, 2)
    url = server.add_collection("/fail/boom.json", [manifest_url(server, 1), boom])

    def load(source: str) -> Document | None:
        if source == boom:
            raise RuntimeError("bad luck")
        return fetcher.document(source)

    kinds = by_kind(list(walk([url], load)))

    assert kinds["FailedSource"] == [FailedSource(boom, "RuntimeError: bad luck", (url,))]
    assert len(kinds["FoundManifest"]) == 1


def test_load_returning_none_means_unchanged(server, fetcher):
    same = manifest_url(server, 1)
    url = server.add_collection("/unchanged/c.json", [same, manifest_url(server, 2)])

    def load(source: str) -> Document | None:
        return None if source == same else fetcher.document(source)

    kinds = by_kind(list(walk([url], load)))

    assert kinds["UnchangedManifest"] == [UnchangedManifest(same, (url,))]
    assert len(kinds["FoundManifest"]) == 1
    # Told what each URL's manifest was, the walk says which one is unchanged.
    told = by_kind(list(walk([url], load, known={same: "https://ex.org/m1"}.get)))
    assert told["UnchangedManifest"] == [
        UnchangedManifest(same, (url,), False, "https://ex.org/m1")
    ]


def test_a_collection_returned_as_unchanged_cannot_be_walked(server, fetcher):
    inner = server.add_collection("/unchanged/inner.json", [manifest_url(server, 3)])
    outer = server.add_collection("/unchanged/outer.json", [child(inner)])

    def load(source: str) -> Document | None:
        return None if source == inner else fetcher.document(source)

    [result] = list(walk([outer], load))

    assert isinstance(result, FailedSource) and result.url == inner
    assert "not modified" in result.reason


def test_embedded_manifest_with_canvases_is_used_without_fetching(server, fetcher):
    shapes = fetcher.document(manifest_url(server, 7))
    assert shapes is not None
    embedded = {**shapes.data, "id": server.base_url + "/embedded/never-fetched.json"}
    stub = {"id": manifest_url(server, 8), "type": "Manifest", "items": []}
    url = server.add_collection("/embedded/c.json", [embedded, stub])

    results = {r.url: r for r in walk([url], load_with(fetcher))}

    inline = results[embedded["id"]]
    assert isinstance(inline, FoundManifest) and inline.parents == (url,)
    assert len(inline.manifest.images) == len(shapes.data["items"])
    assert server.count(embedded["id"]) == 0
    # A member without canvases is only a reference: fetched by its id.
    assert isinstance(results[manifest_url(server, 8)], FoundManifest)
    assert server.count(manifest_url(server, 8)) == 1


def test_a_source_may_be_a_manifest(server, fetcher):
    source = manifest_url(server, 4)
    [result] = list(walk([source], load_with(fetcher)))
    assert isinstance(result, FoundManifest) and result.parents == ()
    assert result.content_hash == fetcher.document(source).content_hash


def test_a_failing_source_is_reported_and_the_next_goes_on(server, fetcher):
    missing = server.base_url + "/nothing/source.json"
    results = {r.url: r for r in walk([missing, manifest_url(server, 5)], load_with(fetcher))}
    assert results[missing] == FailedSource(missing, "HTTP 404 Not Found", ())
    assert isinstance(results[manifest_url(server, 5)], FoundManifest)


def test_source_errors_keep_the_problem_without_the_url(server):
    def load(source: str) -> Document | None:
        raise SourceError(source, "could not connect")

    assert list(walk(["http://example.invalid/m"], load)) == [
        FailedSource("http://example.invalid/m", "could not connect", ())
    ]
