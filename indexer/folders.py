"""Folders of image files, for collections that have no IIIF: read as a pseudo-manifest.

`read_folder(root)` lists the JPEG, PNG, TIFF and WebP files under `root` (by extension,
any case) as a `Manifest` the rest of the indexer takes like any other:

- `Manifest.version` is 0, meaning "not IIIF: a folder"; its id is the folder's
  ``file://`` URI (absolute, resolved), its label the folder's name;
- one `ImageRef` per file, in the order of their paths relative to the folder (sorted
  by code point, "/" separated): canvas id and image URL are the file's ``file://`` URI,
  the canvas label its relative path, no Image API service, width and height from the
  image header, as the picture is shown (EXIF orientation applied, as the decoding
  does), None when the header cannot be read: the file is still listed, so that the
  fetch-and-decode step records why it failed;
- `ImageRef.id_key` is ``"folder:" + relative path``: item ids depend on nothing else,
  so they survive moving or renaming the folder (two folders indexed into one store
  must therefore not share relative paths: see `overlap`);
- `ImageRef.version` is ``"{size}-{mtime_ns}"``: rewriting a file changes it, and the
  store re-embeds the image. A deleted file is simply absent.

Hidden files and folders (name starting with ".") and other files are left out.
Symbolic links are followed, except a link to a folder that is already on the path
from the root (a loop), which is recorded in `Manifest.skipped` with folders that could
not be read.

`load_file_image(url, max_bytes)` reads the bytes of a ``file://`` image URL for the
fetcher; its errors are `OSError`s whose message is the reason recorded for the item.

`overlap(manifest, folders, owners)` says why a folder must not join a store that holds
these other folders: it is inside one of them (its files would be stored twice), or
files at the same relative paths as another's that still holds them (they would take
each other's items). A folder that no longer exists was moved or renamed: its items
follow.

A folder that holds folders of the store (`folders_inside`: say a box indexed first as
a trial, then the whole archive) takes over their items instead of storing their files
twice: `renamed_into` names each item as the outer folder's listing names its file (id
and label of the path relative to the outer folder), and the store keeps its key and
vector (`Store.save_folder`). The items' ids change with their relative paths.

`is_folder_item(item_id, manifest_id, image_url)` says whether a stored item is a file
of a folder read here (its id is that of its relative path): the service serves the
files of those items only, whatever other file:// URLs a store may hold.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from indexer.errors import SourceError
from indexer.iiif import Manifest
from indexer.iiif_canvas import ImageRef, Skipped, stable_id
from indexer.iiif_labels import LanguageMap
from indexer.images import open_header, shown_size
from indexer.store import ItemRecord, KnownSizes
from indexer.store_takeover import ItemName

FOLDER_VERSION = 0  # Manifest.version of a folder: not a IIIF Presentation version

FORMATS = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
}

SYMLINK_LOOP = "symbolic link loop: the folder is already on this path"
BAD_NAME = "file name is not valid UTF-8"


class FileImageError(OSError):
    """A ``file://`` image that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class _File:
    relpath: str  # "/" separated
    stat: os.stat_result


@dataclass(frozen=True)
class _Listing:
    files: list[_File]  # sorted by relative path
    skipped: list[Skipped]


def folder_manifest_id(root: Path) -> str:
    """The id `read_folder` gives the folder at `root`."""
    return Path(root).expanduser().resolve().as_uri()


def read_folder(root: Path, known: KnownSizes | None = None) -> Manifest:
    """The image files under `root` as a pseudo-manifest (see the module's docstring).

    `known`: the sizes read by an earlier run (`Store.folder_sizes`). A file whose
    version (size and time) is the same is not opened again: a folder of hundreds of
    thousands of scans, read again each run, would open every one of them."""
    folder = Path(root).expanduser().resolve()
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "no such folder"
        raise SourceError(str(root), problem)
    listing = _list_images(folder)
    known = known or {}
    images = [_image_ref(folder, file, index, known) for index, file in enumerate(listing.files)]
    return Manifest(
        id=folder.as_uri(),
        version=FOLDER_VERSION,
        label={"none": [folder.name]},
        images=images,
        skipped=listing.skipped,
        canvas_count=len(images),
    )


def listing_hash(manifest: Manifest) -> str:
    """What a folder's pseudo-manifest holds, as a hash: the same listing, the same hash,
    and nothing to save again."""
    digest = hashlib.sha256(manifest.label["none"][0].encode())
    for ref in manifest.images:
        digest.update(f"\n{ref.canvas_id}\t{ref.version}\t{ref.width}\t{ref.height}".encode())
    for skip in manifest.skipped:
        digest.update(f"\nskipped\t{skip.canvas_id}\t{skip.reason}".encode())
    return "sha256:" + digest.hexdigest()


def _list_images(folder: Path) -> _Listing:
    files: list[_File] = []
    skipped: list[Skipped] = []
    # (directory, its relative path with a trailing "/", the real folders above it)
    stack: list[tuple[Path, str, frozenset[tuple[int, int]]]] = [(folder, "", frozenset())]
    while stack:
        directory, prefix, above = stack.pop()
        try:
            info = directory.stat()
            entries = list(os.scandir(directory))
        except OSError as error:
            skipped.append(Skipped(directory.as_uri(), f"folder not read ({error.strerror})"))
            continue
        identity = (info.st_dev, info.st_ino)
        if identity in above:
            skipped.append(Skipped(directory.as_uri(), SYMLINK_LOOP))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relpath = prefix + entry.name
            try:
                if entry.is_dir():  # follows links; loops are caught on the way in
                    stack.append((Path(entry.path), relpath + "/", above | {identity}))
                elif entry.is_file() and Path(entry.name).suffix.lower() in FORMATS:
                    relpath.encode("utf-8")  # ids and labels are stored as UTF-8
                    files.append(_File(relpath, entry.stat()))
            except UnicodeEncodeError:
                skipped.append(Skipped(Path(entry.path).as_uri(), BAD_NAME))
            except OSError:
                continue  # vanished or unreadable entry: not listed
    return _Listing(sorted(files, key=lambda file: file.relpath), skipped)


def _image_ref(folder: Path, file: _File, index: int, known: KnownSizes) -> ImageRef:
    relpath = file.relpath
    path = folder / relpath
    uri = path.as_uri()
    version = f"{file.stat.st_size}-{file.stat.st_mtime_ns}"
    size = known.get((uri, version))
    width, height = size if size is not None else _header_size(path)
    return ImageRef(
        manifest_id=folder.as_uri(),
        canvas_id=uri,
        canvas_index=index,
        image_index=0,
        canvas_label=folder_label(relpath),
        image_url=uri,
        service=None,
        width=width,
        height=height,
        format=FORMATS[path.suffix.lower()],
        version=version,
        id_key=folder_id_key(relpath),
    )


def folder_id_key(relpath: str) -> str:
    return f"folder:{relpath}"


def folder_label(relpath: str) -> LanguageMap:
    return {"none": [relpath]}


def overlap(manifest: Manifest, folders: Set[str], owners: Mapping[str, str]) -> str | None:
    """Why the folder `manifest` must not join a store, or None.

    `folders`: the store's other folders with items (manifest ids); `owners`: the
    folder's item ids that the store holds for another manifest, with that manifest.
    The folders inside it are no obstacle: it takes over their items (their ids, which
    may be those of its own files, change).
    """
    here = file_url_path(manifest.id)
    for other in sorted(file_url_path(folder) for folder in folders):
        if other.is_dir() and here.is_relative_to(other):  # else moved: its items may follow
            return (
                f"it is inside {other}, already in this store, so its files would be "
                f"there twice: index {other} again instead"
            )
    inside = set(folders_inside(manifest, folders))
    clashes: Counter[str] = Counter()
    for ref in manifest.images:
        owner = owners.get(ref.item_id)
        if owner is not None and owner in folders and owner not in inside:
            relpath = file_url_path(ref.canvas_id).relative_to(here)
            if (file_url_path(owner) / relpath).exists():  # else moved there from it
                clashes[owner] += 1
    if not clashes:
        return None
    owner, count = clashes.most_common(1)[0]
    return (
        f"{count} of its files have the same relative paths as files of "
        f"{file_url_path(owner)}, already in this store: index each folder into a store "
        "of its own, or their common parent folder as one source into a new store"
    )


def folders_inside(manifest: Manifest, folders: Set[str]) -> list[str]:
    """The folders of the store (manifest ids, of `folders`) inside the folder
    `manifest`: it takes over their items. One that no longer exists is left out: it was
    moved or renamed, and its items follow it where it is indexed next."""
    here = file_url_path(manifest.id)
    return sorted(
        folder
        for folder in folders
        if (path := file_url_path(folder)).is_dir() and path.is_relative_to(here)
    )


def renamed_into(manifest: Manifest, inner: str, names: Sequence[ItemName]) -> list[ItemName]:
    """The items `names` of the folder `inner` (inside the folder `manifest`), named as
    `read_folder` names their files in `manifest`: id and label of the path relative to
    it. An item whose label is not the relative path its id comes from (not as
    `read_folder` wrote it) is left out: nothing tells where its file lies."""
    prefix = file_url_path(inner).relative_to(file_url_path(manifest.id)).as_posix() + "/"
    renamed = []
    for name in names:
        relpath = _relpath_of(name)
        if relpath is not None:
            key = folder_id_key(prefix + relpath)
            renamed.append(ItemName(name.key, stable_id(key), folder_label(prefix + relpath)))
    return renamed


def _relpath_of(name: ItemName) -> str | None:
    """The item's path relative to its folder: its label, checked against its id."""
    values = name.canvas_label.get("none", [])
    if len(values) == 1 and stable_id(folder_id_key(values[0])) == name.id:
        return values[0]
    return None


def is_folder_item(item_id: str, manifest_id: str, image_url: str | None) -> bool:
    """Whether the item is the file at `image_url`, listed by `read_folder` from the
    folder `manifest_id`: the URL is that folder's, in canonical form, and the id is the
    one of its relative path. A remote document cannot give an item that id (it is a
    digest of other things), so a store filled before remote documents were kept from
    file:// URLs holds no other item that passes."""
    if not image_url:
        return False
    try:
        folder, path = file_url_path(manifest_id), file_url_path(image_url)
    except FileImageError:
        return False
    if not (folder.is_absolute() and path.is_absolute()) or path.as_uri() != image_url:
        return False  # not as read_folder writes them (e.g. "." or "//" in the URL)
    try:
        relpath = path.relative_to(folder)
    except ValueError:
        return False
    if not relpath.parts or ".." in relpath.parts:
        return False
    return stable_id(folder_id_key(relpath.as_posix())) == item_id


def _header_size(path: Path) -> tuple[int | None, int | None]:
    """Width and height as shown (turned upright), from the header alone. Large scans
    are the norm here: `open_header` leaves the pixel limit to the decode step."""
    try:
        with open_header(path) as image:
            return shown_size(image)
    except Exception:  # Pillow raises many types on a bad header: no size, then
        return None, None


def file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL (as made by `Path.as_uri`)."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise FileImageError(f"not a local file:// URL: {url}")
    # Bytes, then the file system's decoding: names that are not UTF-8 round-trip.
    return Path(os.fsdecode(unquote_to_bytes(parts.path)))


def load_file_image(url: str, max_bytes: int) -> bytes:
    """The bytes of the image file at a ``file://`` URL, at most `max_bytes` of them.
    Errors do not name the file: the failure is recorded with its URL, and reasons that
    do not differ by file group in `regard stats`."""
    path = file_url_path(url)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a folder, or a device or pipe that never ends
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise FileImageError(f"not a file: it is {kind}")
        if info.st_size > max_bytes:
            raise FileImageError(f"file exceeds the {max_bytes:,} byte limit")
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)  # the file may have grown since
    except FileNotFoundError as error:
        raise FileImageError("no such file") from error
    except FileImageError:
        raise
    except OSError as error:
        raise FileImageError(f"cannot read the file: {error.strerror or error}") from error
    if len(body) > max_bytes:
        raise FileImageError(f"file exceeds the {max_bytes:,} byte limit")
    if not body:
        raise FileImageError("empty file (0 bytes)")
    return body


def may_read_file(item: ItemRecord) -> bool:
    """Whether the item's file:// image may be read and served: only for items of an
    indexed folder, or of a manifest read from a local file the operator named. A
    file:// URL that a remote document gave never is."""
    url = item.image_url or ""
    return url.startswith("file://") and (
        item.from_local_file or is_folder_item(item.id, item.manifest_id, url)
    )
