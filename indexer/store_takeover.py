"""A folder taking over the items of folders of the store inside it (a box indexed
first as a trial, then the whole archive): SQL run inside `Store.save_folder`'s
transaction, so that a crash leaves the store as it was or as it is after.

Each item taken over keeps its key, state and vector, and gets the id, label and
manifest the outer folder's listing gives its file (`folders.renamed_into`); the inner
folders' own records go. Items that can neither keep nor take an id are deleted.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from .iiif_labels import LanguageMap


@dataclass(frozen=True)
class ItemName:
    """An item's key, with its id and canvas label: what changes when a folder takes
    over the items of a folder of the store inside it (see `take_over`)."""

    key: int
    id: str
    canvas_label: LanguageMap


def take_over(
    conn: sqlite3.Connection,
    manifest_id: str,
    listed: Sequence[str],
    taking_over: Mapping[str, Sequence[ItemName]],
    stamp: str,
) -> int:
    """Make the items of the folders `taking_over` the manifest's, under their new
    names, and forget those folders; returns how many items not removed before
    were deleted (nothing could find them again)."""
    folders = list(taking_over)
    _fill_taken(conn, set(listed), taking_over)
    deleted = _delete_unplaced(conn, folders)
    _rename_taken(conn, manifest_id, stamp)
    _forget_folders(conn, folders)
    return deleted


def _fill_taken(
    conn: sqlite3.Connection, listed: Set[str], taking_over: Mapping[str, Sequence[ItemName]]
) -> None:
    """The temporary table `taken`: each item taken over, its folder, its old and
    new id and label, and whether the folder saved lists its file."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS taken (key INTEGER PRIMARY KEY, "
        "folder TEXT NOT NULL, old_id TEXT NOT NULL, id TEXT NOT NULL UNIQUE, "
        "label TEXT NOT NULL, listed INTEGER NOT NULL)"
    )
    conn.execute("DELETE FROM taken")
    conn.executemany(
        "INSERT INTO taken SELECT key, manifest_id, id, ?, ?, ? FROM items "
        "WHERE key = ? AND manifest_id = ?",
        [
            (
                name.id,
                json.dumps(name.canvas_label, ensure_ascii=False),
                name.id in listed,
                name.key,
                folder,
            )
            for folder, names in taking_over.items()
            for name in names
        ],
    )


def _delete_unplaced(conn: sqlite3.Connection, folders: Sequence[str]) -> int:
    """Delete the items that cannot keep or take a new id; returns how many of them
    were not removed."""
    marks = ",".join("?" * len(folders))
    not_taken = "key NOT IN (SELECT key FROM taken)"
    # Items of the folders with no name in this one (their label is not their path).
    deleted = _delete_items(
        conn, f"SELECT key FROM items WHERE manifest_id IN ({marks}) AND {not_taken}", folders
    )
    # A file the folder lists is the taken item's; another item with its id is a
    # stale record (overlap refuses a folder whose file another folder still holds).
    deleted += _delete_items(
        conn,
        f"SELECT key FROM items WHERE id IN (SELECT id FROM taken WHERE listed) AND {not_taken}",
    )
    # A taken item whose file is gone yields its new id to an item that holds it.
    deleted += _delete_items(
        conn,
        f"SELECT t.key FROM taken t WHERE NOT t.listed AND EXISTS (SELECT 1 FROM items i "
        f"WHERE i.id = t.id AND i.{not_taken})",
    )
    conn.execute("DELETE FROM taken WHERE key NOT IN (SELECT key FROM items)")
    return deleted


def _rename_taken(conn: sqlite3.Connection, manifest_id: str, stamp: str) -> None:
    """Give the items `taken` their new ids, labels and manifest; their failures
    follow them. Keys, states and vectors stay."""
    conn.execute(
        "UPDATE failures SET item_id = (SELECT id FROM taken WHERE old_id = failures.item_id) "
        "WHERE item_id IN (SELECT old_id FROM taken)"
    )
    # In two steps: one folder's new id may be the old id of another's item.
    conn.execute("UPDATE items SET id = 'taking over ' || key WHERE key IN (SELECT key FROM taken)")
    conn.execute(
        "UPDATE items SET id = (SELECT id FROM taken t WHERE t.key = items.key), "
        "canvas_label = (SELECT label FROM taken t WHERE t.key = items.key), "
        "manifest_id = ?, updated_at = ? WHERE key IN (SELECT key FROM taken)",
        (manifest_id, stamp),
    )


def _forget_folders(conn: sqlite3.Connection, folders: Sequence[str]) -> None:
    """The folders taken over are no longer sources of the store: nothing of theirs
    may make a later run mark items removed, or refuse a folder."""
    marks = ",".join("?" * len(folders))
    conn.execute(f"DELETE FROM skips WHERE manifest_id IN ({marks})", folders)
    conn.execute(f"DELETE FROM source_manifests WHERE manifest_id IN ({marks})", folders)
    conn.execute(f"DELETE FROM sources WHERE manifest_id IN ({marks})", folders)
    conn.execute(f"DELETE FROM manifests WHERE id IN ({marks})", folders)


def _delete_items(conn: sqlite3.Connection, keys_sql: str, params: Sequence[Any] = ()) -> int:
    """Delete the items that `keys_sql` selects, with their vectors, failures, term
    decisions and places on the map (nothing can find those items again); returns how
    many were not removed."""
    keys = json.dumps([key for (key,) in conn.execute(keys_sql, params)])
    chosen = "IN (SELECT value FROM json_each(?))"
    live = conn.execute(
        f"SELECT COUNT(*) FROM items WHERE state != 'removed' AND key {chosen}", (keys,)
    ).fetchone()[0]
    conn.execute(
        f"DELETE FROM failures WHERE item_id IN (SELECT id FROM items WHERE key {chosen})",
        (keys,),
    )
    conn.execute(f"DELETE FROM vectors WHERE item_key {chosen}", (keys,))
    conn.execute(f"DELETE FROM term_decisions WHERE item_key {chosen}", (keys,))
    conn.execute(f"DELETE FROM map_points WHERE item_key {chosen}", (keys,))
    conn.execute(f"DELETE FROM items WHERE key {chosen}", (keys,))
    return live


def kept_searchable(conn: sqlite3.Connection) -> dict[str, int]:
    """Per folder taken over, its items searchable now: with the vectors they had."""
    rows = conn.execute(
        "SELECT t.folder, COUNT(i.key) FROM taken t LEFT JOIN items i "
        "ON i.key = t.key AND i.state = 'indexed' GROUP BY t.folder"
    )
    return dict(rows.fetchall())


def _label_json(name: ItemName) -> str:
    return json.dumps(name.canvas_label, ensure_ascii=False)  # as the store writes labels
