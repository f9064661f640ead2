"""An item named in a request, found in the store, or the error that says why not."""

from __future__ import annotations

from indexer.store import ItemRecord

from .context import ServiceContext
from .errors import NotFound


def why_no_vector(item: ItemRecord) -> str:
    if item.state == "failed":
        return (
            f"its image failed ({item.failure_reason}); `regard index` tries it again, "
            "and `regard failures` lists every failure (an image over the pixel limit "
            "needs a larger --max-pixels)"
        )
    if item.state == "removed":
        return "it has left its collection (removed), so it is no longer searched"
    return "it is not embedded yet: run (or finish) `regard index` on its collection"


def find_item(ctx: ServiceContext, item_id: str) -> ItemRecord:
    item = ctx.store.get_item(item_id)
    if item is None:
        raise NotFound(
            f"no item with id {item_id!r} in this collection: ids come from /api/search",
            code="unknown_item",
        )
    return item
