"""Folders of image files read as pseudo-manifests, and file:// images loaded."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from contextlib import closing
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngImageFile

from indexer import folders
from indexer.errors import SourceError
from indexer.folders import (
    BAD_NAME,
    FOLDER_VERSION,
    SYMLINK_LOOP,
    FileImageError,
    load_file_image,
    read_folder,
)
from indexer.iiif import Manifest
from indexer.store import Store
from tests.regard_fixtures import index

REPO = Path(__file__).resolve().parent.parent

SIZES = {
    "B.PNG": (40, 30),
    "a.jpg": (64, 48),
    "sub/c.tiff": (20, 10),
    "sub/deeper/d.webp": (33, 17),
}


def write_image(
    path: Path, size: tuple[int, int], colour: str = "red", orientation: int = 1
) -> None:
    """A picture of one colour, stored at `size`, with an EXIF orientation unless 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".tiff": "TIFF", ".webp": "WEBP"}[path.suffix.lower()]
    exif = Image.Exif()
    exif[0x0112] = orientation
    options = {"exif": exif} if orientation != 1 else {}
    Image.new("RGB", size, colour).save(path, fmt, **options)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "scans"
    for relpath, size in SIZES.items():
        write_image(root / relpath, size)
    write_image(root / ".hidden.jpg", (8, 8))
    write_image(root / ".thumbs" / "e.jpg", (8, 8))
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "corrupt.jpg").write_bytes(b"\xff\xd8 this is no JPEG")
    return root


def relpaths(manifest: Manifest) -> list[str]:
    return [image.canvas_label["none"][0] for image in manifest.images]


def ids_by_path(manifest: Manifest) -> dict[str, str]:
    return {image.canvas_label["none"][0]: image.item_id for image in manifest.images}


def test_images_listed_in_relative_path_order(tree):
    manifest = read_folder(tree)

    expected = sorted([*SIZES, "sub/corrupt.jpg"])  # code point order: "B" before "a"
    assert relpaths(manifest) == expected
    assert [image.canvas_index for image in manifest.images] == list(range(len(expected)))
    assert manifest.canvas_count == len(expected)


def test_pseudo_manifest_fields(tree):
    manifest = read_folder(tree)

    assert manifest.id == tree.resolve().as_uri()
    assert manifest.version == FOLDER_VERSION == 0
    assert manifest.label == {"none": ["scans"]}
    first = manifest.images[0]
    assert first.canvas_id == first.image_url == (tree / "B.PNG").resolve().as_uri()
    assert first.manifest_id == manifest.id
    assert first.service is None and first.image_index == 0
    formats = {image.canvas_label["none"][0]: image.format for image in manifest.images}
    assert formats == {
        "B.PNG": "image/png",
        "a.jpg": "image/jpeg",
        "sub/c.tiff": "image/tiff",
        "sub/corrupt.jpg": "image/jpeg",
        "sub/deeper/d.webp": "image/webp",
    }


def test_sizes_from_headers_and_corrupt_files_still_listed(tree):
    sizes = {
        image.canvas_label["none"][0]: (image.width, image.height)
        for image in read_folder(tree).images
    }
    assert sizes == {**SIZES, "sub/corrupt.jpg": (None, None)}


def test_sizes_are_those_of_the_picture_as_shown(tmp_path):
    # Stored 64 x 48; 6 and 8 are shown turned a quarter, 3 half a turn.
    shown = {3: (64, 48), 6: (48, 64), 8: (48, 64)}
    for orientation in shown:
        write_image(tmp_path / f"{orientation}.jpg", (64, 48), orientation=orientation)
        write_image(tmp_path / f"{orientation}.webp", (64, 48), orientation=orientation)
    sizes = {i.canvas_label["none"][0]: (i.width, i.height) for i in read_folder(tmp_path).images}
    assert sizes == {f"{o}.{ext}": size for o, size in shown.items() for ext in ("jpg", "webp")}


def test_sizes_are_read_without_decoding_pixels(tree, monkeypatch):
    # Pillow's getexif() would decode a PNG to look for an EXIF chunk after its pixels.
    decoded: list[str] = []
    load = PngImageFile.load

    def recorded_load(image: PngImageFile):
        decoded.append(image.filename)
        return load(image)

    monkeypatch.setattr(PngImageFile, "load", recorded_load)
    sizes = {i.canvas_label["none"][0]: (i.width, i.height) for i in read_folder(tree).images}
    assert sizes["B.PNG"] == SIZES["B.PNG"] and decoded == []


def png_header(width: int, height: int, *chunks: bytes) -> bytes:
    """The start of an RGB PNG of this size: its IHDR chunk, then these chunks."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_header_pillow_cannot_read_is_listed_without_size(tree):
    # A PNG of 20000 x 20000 pixels whose data stops after its header.
    (tree / "huge.png").write_bytes(png_header(20000, 20000))

    [huge] = [i for i in read_folder(tree).images if i.canvas_label["none"] == ["huge.png"]]
    assert (huge.width, huge.height) == (None, None)


def test_a_huge_scan_has_its_size_when_only_the_folders_module_is_imported(tmp_path):
    # 20000 x 15000: over twice Pillow's own pixel limit, whose refusal (a bomb) would
    # leave it without size unless folders.py brings the rule that lifts it itself.
    (tmp_path / "huge.png").write_bytes(png_header(20000, 15000, png_chunk(b"IDAT", b"")))
    script = (
        "import sys; from pathlib import Path; from indexer.folders import read_folder\n"
        "print([(i.width, i.height) for i in read_folder(Path(sys.argv[1])).images])"
    )
    command = [sys.executable, "-c", script, str(tmp_path)]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[(20000, 15000)]"


def test_ids_survive_moving_and_renaming_the_folder(tree, tmp_path):
    before = read_folder(tree)
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(tree, moved)

    after = read_folder(moved)

    assert ids_by_path(after) == ids_by_path(before)
    assert len(set(ids_by_path(after).values())) == len(after.images)
    assert after.id != before.id and after.label == {"none": ["renamed"]}


def test_version_changes_when_a_file_is_rewritten(tree):
    before = {i.canvas_label["none"][0]: i for i in read_folder(tree).images}
    path = tree / "a.jpg"
    mtime = path.stat().st_mtime_ns
    write_image(path, (64, 48), colour="blue")
    os.utime(path, ns=(mtime + 5_000_000_000, mtime + 5_000_000_000))

    after = {i.canvas_label["none"][0]: i for i in read_folder(tree).images}

    assert after["a.jpg"].version != before["a.jpg"].version
    assert after["a.jpg"].item_id == before["a.jpg"].item_id
    assert after["B.PNG"].version == before["B.PNG"].version
    size = path.stat().st_size
    assert after["a.jpg"].version == f"{size}-{mtime + 5_000_000_000}"


def test_deleted_file_is_absent(tree):
    (tree / "sub" / "c.tiff").unlink()
    assert "sub/c.tiff" not in relpaths(read_folder(tree))


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges")
def test_symlink_loop_is_not_followed_and_linked_folders_are(tree, tmp_path):
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    outside = tmp_path / "outside"
    write_image(outside / "f.png", (5, 5))
    (tree / "linked").symlink_to(outside, target_is_directory=True)

    manifest = read_folder(tree)

    assert "linked/f.png" in relpaths(manifest)
    assert not any("loop" in path for path in relpaths(manifest))
    assert [s.reason for s in manifest.skipped] == [SYMLINK_LOOP]
    assert manifest.skipped[0].canvas_id == (tree.resolve() / "sub" / "loop").as_uri()


@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes only on Linux")
def test_file_name_that_is_not_utf8_is_skipped_with_the_reason(tree):
    bad = os.path.join(os.fsencode(tree), b"caf\xe9.png")
    write_image(Path(os.fsdecode(bad)), (4, 4))

    manifest = read_folder(tree)

    assert [s.reason for s in manifest.skipped] == [BAD_NAME]
    assert len(manifest.images) == len(SIZES) + 1


def test_not_a_folder(tmp_path):
    with pytest.raises(SourceError, match="no such folder"):
        read_folder(tmp_path / "missing")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(SourceError, match="not a folder"):
        read_folder(tmp_path / "file.jpg")


def test_a_truncated_jpeg_among_good_ones_fails_alone_and_the_run_goes_on(tmp_path):
    root = tmp_path / "scans"
    write_image(root / "a.jpg", (64, 48))
    write_image(root / "sub" / "b.png", (40, 30))
    (root / "corrupt.jpg").write_bytes((root / "a.jpg").read_bytes()[:300])
    store = tmp_path / "store"
    for _ in range(2):  # the rerun tries the bad one again, and still finishes
        assert index(str(root), store=store) == 0
        stats = Store.open(store).stats()
        assert stats["items"] == 2 and stats["failed"] == 1
        reason = "image data is truncated or corrupt (the data ends early)"
        assert stats["failed_by_reason"] == {reason: 1}


def test_a_folder_item_is_stored_with_the_size_of_the_picture_as_shown(tmp_path):
    root = tmp_path / "scans"
    write_image(root / "sideways.jpg", (64, 48), orientation=6)
    store = tmp_path / "store"
    assert index(str(root), store=store) == 0
    [image] = read_folder(root).images
    with closing(Store.open(store)) as opened:
        item = opened.get_item(image.item_id)
    assert item is not None and (item.width, item.height) == (48, 64)


def test_a_folder_read_again_opens_only_the_files_that_changed_and_saves_it_only_then(
    tmp_path, monkeypatch
):
    root = tmp_path / "scans"
    for n in range(4):
        write_image(root / f"dessin-{n}.jpg", (64, 48), colour=("red", "blue")[n % 2])
    opened: list[str] = []
    read_header = folders._header_size
    monkeypatch.setattr(
        folders, "_header_size", lambda path: opened.append(path.name) or read_header(path)
    )
    store = tmp_path / "store"

    def run() -> dict:
        opened.clear()
        assert index(str(root), store=store) == 0
        with closing(Store.open(store)) as kept:
            return kept.stats()["last_run"]["summary"]

    first = run()
    assert (first["manifests"], first["embedded"], len(opened)) == (1, 4, 4)
    again = run()  # nothing changed: no file opened, nothing saved, nothing embedded
    assert (again["manifests"], again["unchanged_manifests"], again["embedded"]) == (0, 1, 0)
    assert opened == []

    write_image(root / "dessin-1.jpg", (30, 40), colour="green")  # rewritten
    write_image(root / "new" / "lampe.png", (20, 10))
    (root / "dessin-3.jpg").unlink()
    changed = run()
    assert sorted(opened) == ["dessin-1.jpg", "lampe.png"]
    assert (changed["manifests"], changed["embedded"], changed["removed"]) == (1, 2, 1)
    # Each file's size as a reading of every header gives it.
    with closing(Store.open(store)) as kept:
        for image in read_folder(root).images:
            item = kept.get_item(image.item_id)
            assert item is not None and (item.width, item.height) == (image.width, image.height)
    assert len(opened) == 2 + 4  # that reading, not the run's

    # A store that never kept a listing (an older version's) opens every file once.
    with closing(Store.open(store)) as kept, kept.writing() as conn:
        conn.execute("UPDATE sources SET content_hash = NULL")
    assert run()["manifests"] == 1 and len(opened) == 4
    assert run()["unchanged_manifests"] == 1 and opened == []


# -- load_file_image -----------------------------------------------------------------------


def test_load_file_image_reads_the_bytes(tmp_path):
    path = tmp_path / "é t" / "image #1.png"  # characters that must be escaped in a URL
    write_image(path, (10, 10))
    url = read_folder(tmp_path).images[0].image_url
    assert url is not None and "%20" in url
    assert load_file_image(url, max_bytes=1_000_000) == path.read_bytes()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "not a file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"x" * 101), "exceeds the 100 byte limit"),
    ],
)
def test_load_file_image_errors(tmp_path, make, message):
    path = tmp_path / "image.jpg"
    make(path)
    with pytest.raises(FileImageError, match=message) as caught:
        load_file_image(path.as_uri(), max_bytes=100)
    assert isinstance(caught.value, OSError)  # what the fetcher catches
    # The reason does not name the file (its URL is recorded beside it): like ones group.
    assert "image.jpg" not in str(caught.value)


def test_load_file_image_refuses_other_urls():
    with pytest.raises(FileImageError, match="not a local file:// URL"):
        load_file_image("http://example.org/a.jpg", max_bytes=100)
    with pytest.raises(FileImageError, match="not a local file:// URL"):
        load_file_image("file://otherhost/a.jpg", max_bytes=100)
