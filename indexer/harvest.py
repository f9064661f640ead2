"""Harvesting sources into the store: collections walked, manifests saved, items queued.

`Harvest.pending_items()` is a generator: it walks every source (a manifest, a
collection of any depth, or a local folder), saves each manifest as it arrives and
yields that manifest's images that still need a vector. The image pipeline pulls from
it, so images are fetched while later manifests are still being read, and every write
happens in the thread that consumes it. Beside picture processes (a GPU), the URL
sources are walked and saved in a process of their own instead (`elsewhere`:
indexer.harvest_process, through `walked`), and this generator queues what it saved.

Re-harvesting asks only for manifests that changed (ETag / Last-Modified, else the
content hash); a manifest that has left its collection has its items marked removed,
but only after a walk of that collection that met no failure. The report's `removed`
counts those and the images gone from the manifests and folders read.

A folder that overlaps another already in the store (`folders.overlap`) is refused as
a source failure before anything is written; a folder given twice is read once. A
folder that holds folders of the store takes over their items, vectors and all, as it
is saved (`folders.folders_inside`); the report's `taken_over` counts those still
searchable, per folder taken over.

Local image files (and image services' info.json) are read only for folders and
manifests read from local files (see `fetch.local_refusal`): the harvest tells the
fetcher which file URLs and service ids those name.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Protocol

from .fetch import Document, Fetcher
from .folders import (
    file_url_path,
    folder_manifest_id,
    folders_inside,
    listing_hash,
    overlap,
    read_folder,
    renamed_into,
)
from .iiif import ImageRef, Manifest
from .iiif_collections import FailedSource, FoundManifest, UnchangedManifest, walk_in_groups
from .store import (
    ImageRow,
    ManifestRow,
    ManifestSave,
    PendingItem,
    Skip,
    SourceRead,
    Store,
)
from .store_takeover import ItemName
from .validators import Validators


class HarvestProgress(Protocol):
    def manifest_read(self) -> None: ...

    def images_queued(self, count: int) -> None: ...


@dataclass
class HarvestReport:
    manifests: int = 0
    unchanged: int = 0
    images_found: int = 0
    removed: int = 0
    source_failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    # Folder taken over (its path) -> its images kept searchable, not embedded again.
    taken_over: dict[str, int] = field(default_factory=dict)

    def add(self, other: HarvestReport) -> None:
        """Count in what another part of the same run found (its sources walked in a
        process of their own: indexer.harvest_process)."""
        self.manifests += other.manifests
        self.unchanged += other.unchanged
        self.images_found += other.images_found
        self.removed += other.removed
        self.source_failures += other.source_failures
        self.skipped.update(other.skipped)
        self.taken_over.update(other.taken_over)

    def since(self, before: HarvestReport) -> HarvestReport:
        """What this report counts beyond `before`, an earlier copy of it."""
        return HarvestReport(
            self.manifests - before.manifests,
            self.unchanged - before.unchanged,
            self.images_found - before.images_found,
            self.removed - before.removed,
            self.source_failures[len(before.source_failures) :],
            self.skipped - before.skipped,
            {k: v for k, v in self.taken_over.items() if k not in before.taken_over},
        )


# A manifest saved: its id, and whether it was read from a local file or folder.
Saved = tuple[str, bool]

# At most this many manifests are saved in one transaction.
SAVE_GROUP = 64


class ElsewhereWalk(Protocol):
    """Walks and saves a run's manifests elsewhere (indexer.harvest_process): yields the
    manifests saved since it last yielded (`Saved`, in the order they were saved),
    counting what it finds `into` the run's report as it goes (an interrupted run's
    summary counts it too)."""

    def walked(self, urls: Sequence[str], into: HarvestReport) -> Iterator[list[Saved]]: ...


def manifest_row(
    manifest: Manifest, source: str, content_hash: str | None, local_file: bool = False
) -> ManifestRow:
    return ManifestRow(
        id=manifest.id,
        source=source,
        version=manifest.version,
        label=manifest.label,
        summary=manifest.summary,
        metadata=manifest.metadata,
        rights=manifest.rights,
        required_statement=manifest.required_statement,
        content_hash=content_hash,
        required_label=manifest.required_label,
        homepage=list(manifest.homepage),
        provider=list(manifest.provider),
        local_file=local_file,
    )


def image_row(ref: ImageRef) -> ImageRow:
    return ImageRow(
        id=ref.item_id,
        manifest_id=ref.manifest_id,
        canvas_id=ref.canvas_id,
        canvas_index=ref.canvas_index,
        image_index=ref.image_index,
        canvas_label=ref.canvas_label,
        image_url=ref.image_url,
        service=ref.service.to_dict() if ref.service else None,
        width=ref.width,
        height=ref.height,
        format=ref.format,
        region=ref.region,
        canvas_metadata=ref.canvas_metadata,
        version=ref.version,
        alternatives=ref.choice_alternatives,
    )


class Harvest:
    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        run_id: int,
        progress: HarvestProgress,
        manifest_workers: int = 4,
        elsewhere: ElsewhereWalk | None = None,
    ):
        self.store = store
        self.elsewhere = elsewhere
        self.fetcher = fetcher
        self.run_id = run_id
        self.progress = progress
        self.manifest_workers = manifest_workers
        self.report = HarvestReport()
        self._found: dict[str, set[str]] = defaultdict(set)  # root -> manifest ids
        self._failed_roots: set[str] = set()
        self._roots: list[str] = []
        # Filled by _load (in the walker's threads), read when the manifest is saved.
        self._validators: dict[str, Validators] = {}

    # -- walking -------------------------------------------------------------------------

    def pending_items(self, sources: Sequence[str]) -> Iterator[PendingItem]:
        urls = []
        folders: list[Path] = []  # read in this run
        for source in sources:
            if Path(source).is_dir():
                path = Path(source).resolve()
                # A folder given twice, or inside one given before, was read with it.
                if not any(path.is_relative_to(read) for read in folders):
                    folders.append(path)
                    self._roots.append(str(path))
                    if (saved := self._folder(source, str(path))) is not None:
                        yield from self._queued([(saved, True)])
            else:
                urls.append(source)
        if self.elsewhere is None:
            for saved_here in self.walked(urls):
                yield from self._queued(saved_here)
        else:  # its process records its roots, and finishes them
            for saved_there in self.elsewhere.walked(urls, into=self.report):
                yield from self._queued(saved_there)

    def walked(self, urls: Sequence[str]) -> Iterator[list[Saved]]:
        """Walk `urls` (manifests and collections, by URL or local file) and save each
        manifest that changed; yields the manifests found since the last yield, in
        document order: each one's id, and whether it was read from a local file.

        The manifests read while the last were being saved are saved together, in one
        transaction (up to SAVE_GROUP): for a collection of a manifest per object, a
        commit a manifest cost as much as the rest of its saving."""
        self._roots += urls
        known = self.store.source_manifest  # what an unchanged manifest's id is
        for group in walk_in_groups(urls, self._load, workers=self.manifest_workers, known=known):
            saved: list[Saved] = []
            changed: list[tuple[str, FoundManifest]] = []
            for found in group:
                root = found.parents[0] if found.parents else found.url
                if isinstance(found, FoundManifest):
                    changed.append((root, found))
                    saved.append((found.manifest.id, found.local))
                elif isinstance(found, UnchangedManifest):
                    saved.append((self._unchanged(root, found), found.local))
                elif isinstance(found, FailedSource):
                    self._fail(root, found.url, found.reason)
            for start in range(0, len(changed), SAVE_GROUP):
                self._save_found(changed[start : start + SAVE_GROUP])
            if saved:
                yield saved

    def _save_found(self, found: list[tuple[str, FoundManifest]]) -> None:
        """Save manifests read from URLs or local files (each with its root) at once."""
        saves = [
            self._to_save(
                root,
                each.manifest,
                each.content_hash,
                each.local,
                SourceRead(each.url, self._validators_of(each)),
            )
            for root, each in found
        ]
        self.report.removed += self.store.save_manifests(saves)
        for root, each in found:
            self._count_saved(root, each.manifest)

    def _queued(self, saved: list[Saved]) -> Iterator[PendingItem]:
        """The pending items of manifests saved one after another, in their order: one
        query for those read alike (a query a manifest cost the main process as much as
        the rest of its one picture's way, for a collection of a manifest per object)."""
        for _ in saved:
            self.progress.manifest_read()
        for local, alike in groupby(saved, key=itemgetter(1)):
            yield from self._queue([manifest_id for manifest_id, _ in alike], local)

    def _fail(self, root: str, source: str, reason: str) -> None:
        self._failed_roots.add(root)
        self.report.source_failures.append((source, reason))
        self.store.record_source_failure(self.run_id, source, reason)

    def _folder(self, source: str, root: str) -> str | None:
        """Save a folder as a manifest; its id, or None when it overlaps another.

        The listing is kept as the folder's source (`listing_hash`): a folder whose files
        are as they were is not saved again, and the files whose size and time are the
        same are not opened again for their image's size. Until a run of this version
        has kept it (or a migration has forgotten it), every file is opened."""
        folder_id = folder_manifest_id(Path(source))
        before = self.store.manifest_validators(folder_id)
        known = before is not None and before.content_hash is not None
        manifest = read_folder(Path(source), self.store.folder_sizes(folder_id) if known else None)
        folders = self.store.live_folders(manifest.id)
        # Only another folder can own these items: with none, there is nothing to look up.
        ids = [ref.item_id for ref in manifest.images] if folders else []
        problem = overlap(manifest, folders, self.store.live_owners(ids, manifest.id))
        if problem:
            self._fail(root, source, problem)
            return None
        taking_over = {
            inner: renamed_into(manifest, inner, self.store.item_names(inner))
            for inner in folders_inside(manifest, folders)
        }
        listed = Validators(None, None, listing_hash(manifest))
        if listed == before and not taking_over:  # the same files as last time
            return self._found_unchanged(root, manifest.id)
        self._save_folder(root, manifest, taking_over, SourceRead(manifest.id, listed))
        return manifest.id

    def _load(self, url: str) -> Document | None:
        """Fetch a document; conditionally when we know it as a manifest (collection pages
        are always read: their members may have changed even when they have not)."""
        document = self.fetcher.document(url, self.store.manifest_validators(url))
        if document is not None:
            self._validators[url] = dataclasses.replace(
                document.validators, content_hash=document.content_hash
            )
        return document

    def _validators_of(self, found: FoundManifest) -> Validators:
        # Inline manifests (embedded in their collection) were never loaded on their own.
        return self._validators.pop(found.url, Validators(None, None, found.content_hash))

    def _save_folder(
        self,
        root: str,
        manifest: Manifest,
        taking_over: dict[str, list[ItemName]],
        source: SourceRead,
    ) -> None:
        save = self._to_save(root, manifest, None, True, source)
        saved = self.store.save_folder(save.manifest, save.images, save.skips, taking_over, source)
        self.report.removed += saved.removed
        self._took_over(saved.kept)
        self._count_saved(root, manifest)

    @staticmethod
    def _to_save(
        root: str, manifest: Manifest, content_hash: str | None, local: bool, source: SourceRead
    ) -> ManifestSave:
        return ManifestSave(
            manifest_row(manifest, root, content_hash, local_file=local),
            [image_row(ref) for ref in manifest.images],
            [Skip(skip.canvas_id, skip.reason) for skip in manifest.skipped],
            source,
        )

    def _count_saved(self, root: str, manifest: Manifest) -> None:
        self._found[root].add(manifest.id)
        self.report.manifests += 1
        self.report.images_found += len(manifest.images)
        self.report.skipped.update(skip.reason for skip in manifest.skipped)

    def _took_over(self, kept: dict[str, int]) -> None:
        """Report the folders taken over, and forget them as roots of this run: given
        before their holder, they must not be recorded as sources again by `finish`."""
        for folder, count in kept.items():
            path = str(file_url_path(folder))
            self.report.taken_over[path] = count
            self._found.pop(path, None)
            if path in self._roots:
                self._roots.remove(path)

    def _unchanged(self, root: str, found: UnchangedManifest) -> str:
        manifest_id = found.manifest_id
        assert manifest_id is not None  # only known manifests are asked conditionally
        self.store.note_local_file(manifest_id, found.local)
        return self._found_unchanged(root, manifest_id)

    def _found_unchanged(self, root: str, manifest_id: str) -> str:
        self._found[root].add(manifest_id)
        self.report.unchanged += 1
        return manifest_id

    def _queue(self, manifest_ids: list[str], local: bool) -> list[PendingItem]:
        """The manifests' images still without a vector: new, changed, or left by an
        interrupted run. `local`: read from a folder or local file, so their file URLs
        may be read (any other is refused by the fetcher)."""
        pending = self.store.pending_items(manifest_ids)
        if local:
            self.fetcher.allow_local_images(item.image_url for item in pending if item.image_url)
            services = (item.service.get("id") for item in pending if item.service)
            self.fetcher.allow_local_services(s for s in services if isinstance(s, str))
        self.progress.images_queued(len(pending))
        return pending

    # -- after a complete walk -----------------------------------------------------------

    def finish(self) -> None:
        """Record which manifests each source led to; remove those that have left it.

        Called only after a complete run: an interrupted walk proves nothing gone.
        """
        for root in self._roots:
            found = self._found.get(root, set())
            before = self.store.root_manifests(root)
            if root in self._failed_roots:
                # Some of it could not be read: what was there is kept, not removed.
                self.store.set_root_manifests(root, before | found)
                continue
            gone = before - found - self._listed_elsewhere(root)
            self.report.removed += self.store.remove_manifests(gone)
            self.store.set_root_manifests(root, found)

    def _listed_elsewhere(self, root: str) -> set[str]:
        others: set[str] = set()
        for other in self.store.roots():
            if other != root:
                others |= self._found.get(other) or self.store.root_manifests(other)
        return others
