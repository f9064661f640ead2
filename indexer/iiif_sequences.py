"""Which canvases a manifest has, in order, each once; what is painted on them is read by
`iiif_canvas.CanvasReader`.

Presentation 2: every sequence embedded in the manifest. The first gives the canvas order
(and `canvas_index`); a later one adds the canvases the earlier ones lack, numbered after
them (e-codices' "Reader-friendly" sequence holds pages the standard one does not). A
canvas met again (same id) is the same canvas, read once, so alternative orderings add
nothing. Presentation 3: the canvases of ``items``.

Nothing here is fetched: a sequence or canvas given only by reference, and a manifest
with no canvases at all, are recorded as skipped with the reason.
"""

from __future__ import annotations

from typing import Any

from indexer.iiif_canvas import (
    AV_CONTENT,
    NOT_EMBEDDED,
    PLACEHOLDER,
    CanvasReader,
    as_list,
    canvas_id_of,
    node_id,
)

NO_CANVAS = "manifest has no canvases"
CANVAS_REFERENCE = "canvas given by reference only, not embedded"
SEQUENCE_REFERENCE = "sequence given by reference only, not embedded (not fetched)"

_PAINTING = {"painting", "sc:painting", "oa:painting"}
# Keys only an embedded node has; a node with none of them only names its target.
_SEQUENCE_CONTENT = ("canvases",)
_V2_CANVAS_CONTENT = ("images", "otherContent", "width", "height")
_V3_CANVAS_CONTENT = ("items", "annotations", "width", "height", "duration")


def read_canvases(reader: CanvasReader, doc: dict[str, Any], version: int) -> int:
    """Read the manifest's canvases into `reader`; returns how many distinct canvases it
    has (each gave an image or was skipped with a reason)."""
    if version == 2 or "sequences" in doc:
        count = read_v2_canvases(reader, doc)
    else:
        count = read_v3_canvases(reader, doc)
    if count == 0 and not reader.skipped:
        reader.skip(reader.manifest_id, NO_CANVAS)
    return count


def is_painting(annotation: dict[str, Any]) -> bool:
    """Painting, or no motivation at all (v3 pages in `items` are painting by definition)."""
    motivations = [m for m in as_list(annotation.get("motivation")) if isinstance(m, str)]
    return not motivations or any(m in _PAINTING for m in motivations)


def _is_reference(node: Any, content: tuple[str, ...]) -> bool:
    if isinstance(node, str):
        return True
    return bool(node_id(node)) and not any(key in node for key in content)


def read_v2_canvases(reader: CanvasReader, doc: dict[str, Any]) -> int:
    """Presentation 2: every embedded sequence (see the module's docstring).

    A sequence marked ``compatibilityHint: displayIfContentUnsupported`` (the ixif
    extension) holds a placeholder picture shown in place of audio or video: its canvases
    are skipped, and so are the media elements it stands for.
    """
    sequences = [s for s in as_list(doc.get("sequences")) if isinstance(s, dict | str)]
    embedded = [
        s for s in sequences if isinstance(s, dict) and not _is_reference(s, _SEQUENCE_CONTENT)
    ]
    for sequence in sequences:
        if _is_reference(sequence, _SEQUENCE_CONTENT):
            reader.skip(node_id(sequence) or reader.manifest_id, SEQUENCE_REFERENCE)
    real = [s for s in embedded if s.get("compatibilityHint") != "displayIfContentUnsupported"]
    for media in as_list(doc.get("mediaSequences")):
        for element in as_list(media.get("elements") if isinstance(media, dict) else None):
            if isinstance(element, dict):
                reader.skip(node_id(element) or reader.manifest_id, AV_CONTENT)
    canvases = _distinct_canvases(real or embedded, reader.manifest_id)
    for index, canvas_id, canvas in canvases:
        if not real:
            reader.skip(canvas_id, PLACEHOLDER, index)
        elif _is_reference(canvas, _V2_CANVAS_CONTENT):
            reader.skip(canvas_id, CANVAS_REFERENCE, index)
        else:
            bodies = [
                annotation.get("resource", annotation.get("body"))
                for annotation in as_list(canvas.get("images"))
                if isinstance(annotation, dict) and is_painting(annotation)
            ]
            reader.read_canvas(index, canvas, bodies)
    return len(canvases)


def _distinct_canvases(
    sequences: list[dict[str, Any]], manifest_id: str
) -> list[tuple[int, str, Any]]:
    """(index, id, node) of the canvases: the first sequence's in its order (a canvas it
    repeats stays, to be noted as a duplicate), then those of later sequences not met
    before. An embedded copy met later stands in for a bare reference."""
    found: list[tuple[int, str, Any]] = []
    where: dict[str, int] = {}
    for number, sequence in enumerate(sequences):
        for node in as_list(sequence.get("canvases")):
            if not isinstance(node, dict | str):
                continue
            index = len(found)
            canvas_id = canvas_id_of(node, manifest_id, index)
            if number > 0 and canvas_id in where:
                known = where[canvas_id]
                if _is_reference(found[known][2], _V2_CANVAS_CONTENT):
                    found[known] = (known, canvas_id, node)
                continue
            where.setdefault(canvas_id, index)
            found.append((index, canvas_id, node))
    return found


def read_v3_canvases(reader: CanvasReader, doc: dict[str, Any]) -> int:
    """Presentation 3: items (Canvas) -> items (AnnotationPage) -> items (Annotation).body."""
    canvases = [c for c in as_list(doc.get("items")) if isinstance(c, dict | str)]
    for index, canvas in enumerate(canvases):
        if not isinstance(canvas, dict) or _is_reference(canvas, _V3_CANVAS_CONTENT):
            canvas_id = canvas_id_of(canvas, reader.manifest_id, index)
            reader.skip(canvas_id, CANVAS_REFERENCE, index)
            continue
        bodies = []
        reasons = []
        for page in as_list(canvas.get("items")):
            if not isinstance(page, dict):
                continue
            if "items" not in page and node_id(page):
                reasons.append(NOT_EMBEDDED)
            for annotation in as_list(page.get("items")):
                if isinstance(annotation, dict) and is_painting(annotation):
                    bodies.append(annotation.get("body"))
        reader.read_canvas(index, canvas, bodies, reasons)
    return len(canvases)
