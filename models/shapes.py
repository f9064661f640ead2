"""Generated pictures of coloured shapes, with captions in English and French.

They are the training data of the `regard-test` model and the images of the offline
demo and the test IIIF server: a collection whose right answers are known, so that a
test can check that "red circle" really ranks red circles first.
Everything here is deterministic: the same (shape, colour, seed) gives the same pixels.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = ("red", "green", "blue", "yellow")

RGB = {
    "red": (215, 38, 38),
    "green": (34, 160, 60),
    "blue": (40, 70, 210),
    "yellow": (240, 205, 30),
}

# French nouns with their grammatical gender, and colour adjectives by gender.
FRENCH_SHAPES = {
    "circle": ("cercle", "m"),
    "square": ("carré", "m"),
    "triangle": ("triangle", "m"),
    "star": ("étoile", "f"),
}
FRENCH_COLOURS = {
    "red": ("rouge", "rouge"),
    "green": ("vert", "verte"),
    "blue": ("bleu", "bleue"),
    "yellow": ("jaune", "jaune"),
}

ENGLISH_TEMPLATES = (
    "a {colour} {shape}",
    "{colour} {shape}",
    "a drawing of a {colour} {shape}",
    "a picture of a {colour} {shape}",
    "the {colour} {shape}",
)
FRENCH_TEMPLATES = (
    "{article} {shape} {colour}",
    "{shape} {colour}",
    "un dessin d'{article} {shape} {colour}",
    "une image d'{article} {shape} {colour}",
    "{definite} {shape} {colour}",
)


@dataclass(frozen=True)
class ShapeSpec:
    shape: str
    colour: str
    seed: int

    @property
    def name(self) -> str:
        """A stable name, usable in a URL path: "red-circle-7"."""
        return f"{self.colour}-{self.shape}-{self.seed}"

    @classmethod
    def from_name(cls, name: str) -> ShapeSpec:
        colour, shape, seed = name.split("-")
        if colour not in COLOURS or shape not in SHAPES:
            raise ValueError(f"not a shape name: {name!r}")
        return cls(shape=shape, colour=colour, seed=int(seed))


def english_caption(shape: str, colour: str, variant: int = 0) -> str:
    template = ENGLISH_TEMPLATES[variant % len(ENGLISH_TEMPLATES)]
    return template.format(shape=shape, colour=colour)


def french_caption(shape: str, colour: str, variant: int = 0) -> str:
    noun, gender = FRENCH_SHAPES[shape]
    masculine, feminine = FRENCH_COLOURS[colour]
    adjective = feminine if gender == "f" else masculine
    indefinite = "une" if gender == "f" else "un"
    definite = "l'" if noun[0] in "aeiouéè" else ("la" if gender == "f" else "le")
    template = FRENCH_TEMPLATES[variant % len(FRENCH_TEMPLATES)]
    text = template.format(article=indefinite, definite=definite, shape=noun, colour=adjective)
    return text.replace("l' ", "l'")


def captions(shape: str, colour: str) -> list[str]:
    """Every caption of a (shape, colour) pair, English first."""
    english = [english_caption(shape, colour, i) for i in range(len(ENGLISH_TEMPLATES))]
    french = [french_caption(shape, colour, i) for i in range(len(FRENCH_TEMPLATES))]
    return english + french


def shape_captions(shape: str) -> list[str]:
    """Captions that name the shape only, English first: "a circle", …, "une étoile"."""
    noun, gender = FRENCH_SHAPES[shape]
    article = "une" if gender == "f" else "un"
    return [
        shape,
        f"a {shape}",
        f"a drawing of a {shape}",
        noun,
        f"{article} {noun}",
        f"un dessin d'{article} {noun}",
    ]


def colour_captions(colour: str) -> list[str]:
    """Captions that name the colour only, English first: "red", …, "une forme verte"."""
    masculine, feminine = FRENCH_COLOURS[colour]
    french = [masculine, feminine, f"une forme {feminine}", f"quelque chose de {masculine}"]
    english = [colour, f"a {colour} shape", f"something {colour}"]
    return english + list(dict.fromkeys(french))  # "rouge" and "jaune" have one form


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == "square":
        corners = 4
        radii = [r] * corners
        angle += math.pi / 4
    elif kind == "triangle":
        corners = 3
        radii = [r] * corners
        angle -= math.pi / 2
    else:  # star: ten points, alternating outer and inner radius
        corners = 10
        radii = [r if i % 2 == 0 else r * 0.45 for i in range(corners)]
        angle -= math.pi / 2
    return [
        (
            cx + radii[i] * math.cos(angle + 2 * math.pi * i / corners),
            cy + radii[i] * math.sin(angle + 2 * math.pi * i / corners),
        )
        for i in range(corners)
    ]


def render(spec: ShapeSpec, size: int | tuple[int, int] = 256) -> Image.Image:
    """Draw one shape on a light, slightly noisy background; deterministic per spec."""
    width, height = (size, size) if isinstance(size, int) else size
    rng = random.Random(f"{spec.shape}/{spec.colour}/{spec.seed}")
    shade = rng.randint(215, 250)
    tint = [max(0, min(255, shade + rng.randint(-12, 12))) for _ in range(3)]
    image = Image.new("RGB", (width, height), tuple(tint))
    draw = ImageDraw.Draw(image)

    # A few faint lines, as on a sheet of paper, so that backgrounds are not all alike.
    for _ in range(rng.randint(0, 3)):
        grey = shade - rng.randint(20, 50)
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = rng.uniform(0, width), rng.uniform(0, height)
        draw.line([(x0, y0), (x1, y1)], fill=(grey, grey, grey), width=max(1, width // 128))

    side = min(width, height)
    r = side * rng.uniform(0.22, 0.38)
    cx = width / 2 + rng.uniform(-0.12, 0.12) * width
    cy = height / 2 + rng.uniform(-0.12, 0.12) * height
    base = RGB[spec.colour]
    colour = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in base)
    if spec.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        draw.polygon(_polygon(spec.shape, cx, cy, r, rng.uniform(-0.25, 0.25)), fill=colour)
    return image


def collection(per_pair: int = 3, seed: int = 0) -> list[ShapeSpec]:
    """A small collection: `per_pair` pictures of every (shape, colour) pair."""
    return [
        ShapeSpec(shape=shape, colour=colour, seed=seed + i)
        for shape in SHAPES
        for colour in COLOURS
        for i in range(per_pair)
    ]
