"""What an earlier harvest saw of a document: enough to ask only for a changed one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Validators:
    etag: str | None
    last_modified: str | None
    content_hash: str | None = None
