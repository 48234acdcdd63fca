"""Read a scene back from pixels alone, to score generated images against what their caption asked.

- every pixel is named by its nearest palette colour;
- background colour: the name most of the border pixels have;
- shape: the largest solid region of pixels named otherwise (an opening first drops the lone off-colour
  pixels of a textured background), grown back by one pixel onto its blended edge;
- shape colour: the name most of the shape's pixels have (the dominant non-background colour);
- position: the anchor nearest to the shape's centroid; size: the shape's area against the two sizes;
- shape kind: how much of its bounding box it fills (square ~1, circle ~0.79, triangle ~0.5).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from tools.demo_model.data import ANCHORS, PALETTE, RADII, Combo

_NAMES = tuple(PALETTE)
_RGB = np.array([PALETTE[n] for n in _NAMES], dtype=np.float32)
BORDER = 2  # pixels of the image's edge that count as background
MIN_AREA = 12  # pixels; a smaller region is noise, not a shape
# between the areas of the two sizes (geometric mean), in pixels
SIZE_THRESHOLD = math.pi * RADII["small"] * RADII["large"]
SQUARE_FILL, TRIANGLE_FILL = 0.94, 0.64  # bounding-box fill above: square; below: triangle


@dataclass(frozen=True)
class Reading:
    background: str
    color: str | None  # None (and the rest too) when no shape was found
    position: str | None
    size: str | None
    shape: str | None
    mask: np.ndarray  # the shape's pixels (bool, H x W)


def nearest_colors(pixels: np.ndarray) -> np.ndarray:
    """Index into the palette of the nearest colour of each RGB pixel (..., 3) -> (...)."""
    distance = np.linalg.norm(pixels[..., None, :].astype(np.float32) - _RGB, axis=-1)
    return distance.argmin(axis=-1)


def _majority(indices: np.ndarray) -> str:
    return _NAMES[Counter(indices.ravel().tolist()).most_common(1)[0][0]]


def _border(pixels: np.ndarray) -> np.ndarray:
    ring = np.ones(pixels.shape[:2], dtype=bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    return pixels[ring]


def _largest_region(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(sizes.argmax())


def _shape_kind(mask: np.ndarray) -> str:
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    fill = mask.sum() / box
    return "square" if fill >= SQUARE_FILL else "triangle" if fill < TRIANGLE_FILL else "circle"


def _nearest_anchor(x: float, y: float) -> str:
    return min(ANCHORS, key=lambda name: math.dist((x, y), ANCHORS[name]))


def read_image(image: Image.Image | np.ndarray) -> Reading:
    """What a 64x64 RGB image shows, by the rules in the module docstring."""
    pixels = np.asarray(image, dtype=np.float32)[..., :3]
    names = nearest_colors(pixels)
    background = _majority(_border(names))
    foreign = names != _NAMES.index(background)
    solid = _largest_region(ndimage.binary_opening(foreign))
    if solid.sum() < MIN_AREA:
        return Reading(background, None, None, None, None, np.zeros_like(foreign))
    # the anti-aliased edge pixels the opening took off (more than half covered: not background-named)
    mask = ndimage.binary_fill_holes(ndimage.binary_dilation(solid) & foreign)
    rows, cols = np.nonzero(mask)
    return Reading(
        background=background,
        color=_majority(names[solid]),
        position=_nearest_anchor(cols.mean() + 0.5, rows.mean() + 0.5),
        size="large" if mask.sum() > SIZE_THRESHOLD else "small",
        shape=_shape_kind(mask),
        mask=mask,
    )


def judge(reading: Reading, combo: Combo) -> dict[str, bool]:
    """Which of the caption's attributes the image shows."""
    return {
        "color": reading.color == combo.color,
        "background": reading.background == combo.background,
        "position": reading.position == combo.position,
        "size": reading.size == combo.size,
        "shape": reading.shape == combo.shape,
    }


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def accuracy(marks: list[Mapping[str, bool]]) -> dict[str, float]:
    """Share of images right, per attribute."""
    if not marks:
        raise ValueError("no images were scored")
    return {key: sum(m[key] for m in marks) / len(marks) for key in marks[0]}


def saturation(image: Image.Image | np.ndarray) -> float:
    """Mean HSV saturation (0-1): pastel images score about half of plain ones."""
    pixels = np.asarray(image, dtype=np.float32)[..., :3]
    high, low = pixels.max(axis=-1), pixels.min(axis=-1)
    return float(np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0).mean())
