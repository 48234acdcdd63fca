"""Procedural, seeded training data: one coloured shape on a plain background, with captions.

A scene is a `Combo` (what the caption says: shape, colour, background, position, size) plus a little
jitter in place and size, so the model learns the words rather than 1,680 fixed pictures. A fixed,
seeded share of the combos is held out: training never sees those captions, evaluation uses only them.
Everything is deterministic per seed (Python's `random.Random`, no global state).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
_SUPERSAMPLE = 4  # shapes are drawn 4x larger and box-filtered down: smooth edges at 64x64

# Plain saturated tones, far apart in RGB so that the scorer can name them by nearest colour.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 20, 20),
    "green": (20, 170, 30),
    "blue": (20, 50, 220),
    "yellow": (245, 220, 20),
    "white": (245, 245, 245),
    "black": (12, 12, 12),
    "orange": (250, 130, 0),
    "purple": (140, 30, 190),
}
SHAPES = ("circle", "square", "triangle")
# centre of the shape for each position word (pixels, x then y)
ANCHORS: dict[str, tuple[float, float]] = {
    "left": (18.0, 32.0),
    "right": (46.0, 32.0),
    "top": (32.0, 18.0),
    "bottom": (32.0, 46.0),
    "center": (32.0, 32.0),
}
# radius of the circle of the same area: every shape of one size covers the same number of pixels
RADII = {"small": 6.0, "large": 11.0}
POSITION_JITTER = 2.0  # pixels, uniform in each axis
SIZE_JITTER = 0.08  # relative, uniform

Style = Literal["plain", "pastel"]

_WHERE = {
    "left": ("on the left", "at the left", "to the left"),
    "right": ("on the right", "at the right", "to the right"),
    "top": ("at the top", "near the top", "on top"),
    "bottom": ("at the bottom", "near the bottom", "along the bottom"),
    "center": ("in the center", "in the middle", "centered"),
}
# {a}: "a"/"an" for the word after it; every template names all five attributes
_TEMPLATES = (
    "{a} {size} {color} {shape} {where}, {bg} background",
    "{size} {color} {shape} {where} on {a_bg} {bg} background",
    "{a_bg} {bg} background with {a} {size} {color} {shape} {where}",
    "{where}, {a} {size} {color} {shape} on {bg}",
    "{a_color} {color} {shape}, {size}, {where}, {bg} background",
    "{size} {color} {shape} {where}, {bg} backdrop",
)


@dataclass(frozen=True, order=True)
class Combo:
    """What a caption says about a scene."""

    shape: str
    color: str
    background: str
    position: str
    size: str


@dataclass(frozen=True)
class Scene:
    """A combo with its exact geometry (after jitter)."""

    combo: Combo
    x: float
    y: float
    radius: float  # radius of the equal-area circle


@dataclass(frozen=True)
class Split:
    train: tuple[Combo, ...]
    held_out: tuple[Combo, ...]


def all_combos() -> list[Combo]:
    """Every combo with a shape colour different from the background (8 x 7 x 3 x 5 x 2 = 1,680)."""
    return [
        Combo(shape, color, background, position, size)
        for shape, color, background, position, size in product(SHAPES, PALETTE, PALETTE, ANCHORS, RADII)
        if color != background
    ]


def split_combos(seed: int = 0, held_out_fraction: float = 0.1) -> Split:
    """A seeded held-out share of the combos; the rest is for training."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be between 0 and 1, not {held_out_fraction}")
    combos = all_combos()
    random.Random(seed).shuffle(combos)
    cut = round(len(combos) * held_out_fraction)
    return Split(train=tuple(sorted(combos[cut:])), held_out=tuple(sorted(combos[:cut])))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption_variants(combo: Combo) -> list[str]:
    """All phrasings of the combo's caption (templates x position phrases), in a fixed order."""
    words = {
        "size": combo.size,
        "color": combo.color,
        "shape": combo.shape,
        "bg": combo.background,
        "a": _article(combo.size),
        "a_bg": _article(combo.background),
        "a_color": _article(combo.color),
    }
    captions = []
    for template in _TEMPLATES:
        for where in _WHERE[combo.position]:
            text = template.format(where=where, **words)
            captions.append(text[0].lower() + text[1:])
    return captions


def random_caption(combo: Combo, rng: random.Random) -> str:
    return rng.choice(caption_variants(combo))


def moved(combo: Combo, pick: int) -> Combo:
    """The combo at the `pick`-th (0-3) of the four other positions."""
    return replace(combo, position=[p for p in ANCHORS if p != combo.position][pick])


def sample_scene(combo: Combo, rng: random.Random) -> Scene:
    x, y = ANCHORS[combo.position]
    radius = RADII[combo.size] * (1 + rng.uniform(-SIZE_JITTER, SIZE_JITTER))
    return Scene(
        combo,
        x + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        y + rng.uniform(-POSITION_JITTER, POSITION_JITTER),
        radius,
    )


def sample_scenes(combos: Sequence[Combo], count: int, seed: int) -> list[Scene]:
    """`count` scenes of combos drawn uniformly (with replacement) from `combos`."""
    rng = random.Random(seed)
    return [sample_scene(rng.choice(combos), rng) for _ in range(count)]


def _outline(scene: Scene) -> list[tuple[float, float]]:
    """The shape's polygon (squares, triangles) in supersampled pixel coordinates."""
    s, x, y, r = _SUPERSAMPLE, scene.x, scene.y, scene.radius
    if scene.combo.shape == "square":
        half = r * math.sqrt(math.pi) / 2
        return [(s * (x - half), s * (y - half)), (s * (x + half), s * (y + half))]
    # equilateral, point up, centroid on (x, y); circumradius for the circle's area
    big = r * math.sqrt(math.pi / (3 * math.sqrt(3) / 4))
    return [
        (s * (x + big * math.sin(a)), s * (y - big * math.cos(a)))
        for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)
    ]


def coverage(scene: Scene) -> np.ndarray:
    """How much of each pixel the shape covers, float32 in [0, 1], shape (64, 64)."""
    size = IMAGE_SIZE * _SUPERSAMPLE
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    s, x, y, r = _SUPERSAMPLE, scene.x, scene.y, scene.radius
    if scene.combo.shape == "circle":
        draw.ellipse([s * (x - r), s * (y - r), s * (x + r), s * (y + r)], fill=255)
    elif scene.combo.shape == "square":
        draw.rectangle(_outline(scene), fill=255)
    elif scene.combo.shape == "triangle":
        draw.polygon(_outline(scene), fill=255)
    else:
        raise ValueError(f"unknown shape {scene.combo.shape!r}")
    small = canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def shape_mask(scene: Scene) -> np.ndarray:
    """Pixels at least half covered by the shape (bool, (64, 64))."""
    return coverage(scene) >= 0.5


def color_of(name: str, style: Style = "plain") -> np.ndarray:
    rgb = np.array(PALETTE[name], dtype=np.float32)
    return (rgb + 255.0) / 2 if style == "pastel" else rgb


def render(scene: Scene, style: Style = "plain") -> Image.Image:
    """The scene as a 64x64 RGB image; "pastel" mixes every colour halfway with white (the LoRA's style)."""
    cover = coverage(scene)[..., None]
    pixels = (
        color_of(scene.combo.background, style) * (1 - cover) + color_of(scene.combo.color, style) * cover
    )
    return Image.fromarray(np.round(pixels).astype(np.uint8), "RGB")


def edges(image: Image.Image | np.ndarray, threshold: float = 40.0) -> np.ndarray:
    """A small Canny-like edge map (bool, H x W): a pixel is an edge where its colour differs from its
    right or lower neighbour by more than `threshold` (RGB distance). Used instead of OpenCV's Canny,
    which is not installed; on these flat-colour images both give thin lines along the shape's outline.
    """
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    found = np.zeros(pixels.shape[:2], dtype=bool)
    right = np.linalg.norm(pixels[:, 1:] - pixels[:, :-1], axis=-1) > threshold
    down = np.linalg.norm(pixels[1:] - pixels[:-1], axis=-1) > threshold
    found[:, :-1] |= right
    found[:-1] |= down
    return found


def control_image(image: Image.Image) -> Image.Image:
    """The ControlNet hint for an image: white edge lines on black, as Canny preprocessors draw them."""
    return Image.fromarray(np.where(edges(image), 255, 0).astype(np.uint8), "L").convert("RGB")
