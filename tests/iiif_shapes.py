"""The generated shapes collection served by the test IIIF server.

One canvas per `models.shapes.ShapeSpec`, each with its own Image API service, so that a
test knows the right answers ("red circle" must rank red circles first). URL scheme,
relative to the server's base URL; every document takes ``per_pair``, ``seed`` and
``twins`` query parameters, and its id is its own URL, query included:

- ``/shapes/manifest.json``: Presentation 3, Image API 3 level 2 services
  ``/shapes/iiif/{name}``; each twin adds a canvas whose service is
  ``/shapes/iiif/twin-of-{name}``: the very same picture under another image id;
- ``/shapes/v2/manifest.json``: Presentation 2, Image API 2 level 2 services
  ``/shapes/iiif2/{name}``;
- ``/shapes/collection.json``: Presentation 3 collection of one manifest per (colour,
  shape) pair, ``/shapes/pair/{colour}-{shape}/manifest.json``;
- ``/shapes/canvas/{name}``: each Presentation 3 canvas on its own, at its id (as a
  viewer's "canvas" link follows it);
- ``/shapes/objects.json``: Presentation 3 collection of one manifest per shape image,
  ``/shapes/object/{name}/manifest.json``, as a museum publishes one per object.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from models.shapes import COLOURS, FRENCH_COLOURS, FRENCH_SHAPES, SHAPES, ShapeSpec, collection

SHAPE_SIZE = 1024  # full size of every shape image; requests scale it down
TWIN_PREFIX = "twin-of-"
_SERVICE = re.compile(r"^/shapes/(?P<kind>iiif|iiif2)/(?P<name>[a-z]+-[a-z]+-\d+|twin-of-.+)$")
_PAIR = re.compile(r"^/shapes/pair/(?P<colour>[a-z]+)-(?P<shape>[a-z]+)/manifest\.json$")
_CANVAS = re.compile(r"^/shapes/canvas/(?P<name>(twin-of-)?[a-z]+-[a-z]+-\d+)$")
_OBJECT = re.compile(r"^/shapes/object/(?P<name>[a-z]+-[a-z]+-\d+)/manifest\.json$")


def query(per_pair: int, seed: int, twins: list[str]) -> str:
    return urlencode({"per_pair": per_pair, "seed": seed, "twins": ",".join(twins)})


def service_spec(path: str) -> tuple[int, ShapeSpec] | None:
    """(Image API version, spec) for a shapes service path, twins included; else None."""
    match = _SERVICE.match(path)
    if not match:
        return None
    try:
        spec = ShapeSpec.from_name(match.group("name").removeprefix(TWIN_PREFIX))
    except ValueError:
        return None
    return (3 if match.group("kind") == "iiif" else 2), spec


def _labels(spec: ShapeSpec, twin: bool) -> dict[str, list[str]]:
    noun, gender = FRENCH_SHAPES[spec.shape]
    adjective = FRENCH_COLOURS[spec.colour][1 if gender == "f" else 0]
    english, french = f"{spec.colour} {spec.shape} {spec.seed}", f"{noun} {adjective} {spec.seed}"
    if twin:
        english, french = f"twin of {english}", f"jumeau de {french}"
    return {"en": [english], "fr": [french]}


def _metadata(spec: ShapeSpec) -> list[dict[str, Any]]:
    return [
        {"label": {"en": ["shape"], "fr": ["forme"]}, "value": {"en": [spec.shape]}},
        {"label": {"en": ["colour"], "fr": ["couleur"]}, "value": {"en": [spec.colour]}},
    ]


def _canvas_v3(base: str, spec: ShapeSpec, twin: bool) -> dict[str, Any]:
    name = TWIN_PREFIX + spec.name if twin else spec.name
    canvas_id = f"{base}/shapes/canvas/{name}"
    service_id = f"{base}/shapes/iiif/{name}"
    return {
        "id": canvas_id,
        "type": "Canvas",
        "label": _labels(spec, twin),
        "metadata": _metadata(spec),
        "width": SHAPE_SIZE,
        "height": SHAPE_SIZE,
        "items": [
            {
                "id": f"{canvas_id}/page",
                "type": "AnnotationPage",
                "items": [
                    {
                        "id": f"{canvas_id}/page/painting",
                        "type": "Annotation",
                        "motivation": "painting",
                        "target": canvas_id,
                        "body": {
                            "id": f"{service_id}/full/max/0/default.jpg",
                            "type": "Image",
                            "format": "image/jpeg",
                            "width": SHAPE_SIZE,
                            "height": SHAPE_SIZE,
                            "service": [
                                {
                                    "id": service_id,
                                    "type": "ImageService3",
                                    "profile": "level2",
                                    "width": SHAPE_SIZE,
                                    "height": SHAPE_SIZE,
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def manifest_v3(
    base: str, url: str, specs: list[ShapeSpec], twins: list[str], label: str = "Shapes"
) -> dict[str, Any]:
    twin_specs = [ShapeSpec.from_name(name) for name in twins]
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": url,
        "type": "Manifest",
        "label": {"en": [label], "fr": ["Formes"]},
        "summary": {"en": ["Generated coloured shapes, for tests and the offline demo."]},
        "rights": "http://creativecommons.org/publicdomain/zero/1.0/",
        "items": [_canvas_v3(base, spec, False) for spec in specs]
        + [_canvas_v3(base, spec, True) for spec in twin_specs],
    }


def manifest_v2(base: str, url: str, specs: list[ShapeSpec]) -> dict[str, Any]:
    canvases = []
    for spec in specs:
        canvas_id = f"{base}/shapes/v2/canvas/{spec.name}"
        service_id = f"{base}/shapes/iiif2/{spec.name}"
        labels = _labels(spec, False)
        canvases.append(
            {
                "@id": canvas_id,
                "@type": "sc:Canvas",
                "label": [{"@value": labels["en"][0], "@language": "en"}],
                "width": SHAPE_SIZE,
                "height": SHAPE_SIZE,
                "images": [
                    {
                        "@type": "oa:Annotation",
                        "motivation": "sc:painting",
                        "on": canvas_id,
                        "resource": {
                            "@id": f"{service_id}/full/full/0/default.jpg",
                            "@type": "dctypes:Image",
                            "format": "image/jpeg",
                            "width": SHAPE_SIZE,
                            "height": SHAPE_SIZE,
                            "service": {
                                "@context": "http://iiif.io/api/image/2/context.json",
                                "@id": service_id,
                                "profile": "http://iiif.io/api/image/2/level2.json",
                                "width": SHAPE_SIZE,
                                "height": SHAPE_SIZE,
                            },
                        },
                    }
                ],
            }
        )
    return {
        "@context": "http://iiif.io/api/presentation/2/context.json",
        "@id": url,
        "@type": "sc:Manifest",
        "label": "Shapes (Presentation 2)",
        "sequences": [{"@type": "sc:Sequence", "canvases": canvases}],
    }


def collection_v3(base: str, url: str, per_pair: int, seed: int) -> dict[str, Any]:
    items = [
        {
            "id": f"{base}/shapes/pair/{colour}-{shape}/manifest.json?" + query(per_pair, seed, []),
            "type": "Manifest",
            "label": {"en": [f"{colour} {shape}s"]},
        }
        for shape in SHAPES
        for colour in COLOURS
    ]
    return _collection_v3(url, "Shapes, one manifest per colour and shape", items)


def objects_v3(base: str, url: str, specs: list[ShapeSpec]) -> dict[str, Any]:
    """A collection of one manifest per shape image."""
    items = [
        {
            "id": f"{base}/shapes/object/{spec.name}/manifest.json",
            "type": "Manifest",
            "label": _labels(spec, False),
        }
        for spec in specs
    ]
    return _collection_v3(url, "Shapes, one manifest per image", items)


def _collection_v3(url: str, label: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": url,
        "type": "Collection",
        "label": {"en": [label]},
        "items": items,
    }


def document(base: str, path: str, params: dict[str, str], defaults: dict[str, Any]) -> Any:
    """The generated document at `path`, or None when `path` is not a shapes document."""
    per_pair = int(params.get("per_pair", defaults["per_pair"]))
    seed = int(params.get("seed", defaults["seed"]))
    twins_param = params.get("twins")
    twins = defaults["twins"] if twins_param is None else [t for t in twins_param.split(",") if t]
    url = f"{base}{path}?{query(per_pair, seed, twins)}"
    specs = collection(per_pair, seed)
    if path == "/shapes/manifest.json":
        return manifest_v3(base, url, specs, twins)
    if path == "/shapes/v2/manifest.json":
        return manifest_v2(base, url, specs)
    if path == "/shapes/collection.json":
        return collection_v3(base, url, per_pair, seed)
    if path == "/shapes/objects.json":
        return objects_v3(base, url, specs)
    if match := _OBJECT.match(path):
        try:
            spec = ShapeSpec.from_name(match.group("name"))
        except ValueError:
            return None
        return manifest_v3(base, f"{base}{path}", [spec], [], label=_labels(spec, False)["en"][0])
    if match := _CANVAS.match(path):
        name = match.group("name")
        try:
            spec = ShapeSpec.from_name(name.removeprefix(TWIN_PREFIX))
        except ValueError:
            return None
        canvas = _canvas_v3(base, spec, twin=name.startswith(TWIN_PREFIX))
        return {"@context": "http://iiif.io/api/presentation/3/context.json", **canvas}
    if match := _PAIR.match(path):
        colour, shape = match.group("colour"), match.group("shape")
        chosen = [s for s in specs if (s.colour, s.shape) == (colour, shape)]
        return manifest_v3(base, url, chosen, [], label=f"{colour} {shape}s") if chosen else None
    return None
