"""Read a scene back from pixels alone, to score generated images against what their caption asked.

- every pixel is named by its nearest palette colour;
- background colour: the name most of the border pixels have;
- shape: the largest solid region of pixels named otherwise (an opening first drops the lone off-colour
  pixels of a textured background), grown back by one pixel onto its blended edge;
- shape colour: the name most of the shape's pixels have (the dominant non-background colour);
- position: the anchor nearest to the shape's centroid; size: the shape's area against the two sizes;
- shape kind: the ideal circle, square and triangle (as data.py draws them) of the shape's area at its
  centroid are laid over its mask; the kind whose mask overlaps best (IoU) is the reading, unless even
  that one overlaps less than KIND_MIN_IOU (a blob of no recognisable kind). Bounding-box fill, used
  before, called a square with rounded corners a circle, although it reads as a square by eye;
- edge error: how far the image's outer 2-pixel ring is from its background colour (the median of the
  other background pixels): frames and lines along the edges show up there.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from tools.demo_model.data import ANCHORS, PALETTE, RADII, SHAPES, Combo, Scene, shape_mask

_NAMES = tuple(PALETTE)
_RGB = np.array([PALETTE[n] for n in _NAMES], dtype=np.float32)
BORDER = 2  # pixels of the image's edge that count as background
MIN_AREA = 12  # pixels; a smaller region is noise, not a shape
# between the areas of the two sizes (geometric mean), in pixels
SIZE_THRESHOLD = math.pi * RADII["small"] * RADII["large"]
# IoU with the best-fitting ideal shape below which no kind is read: ground-truth renders score >= 0.91,
# a circle against the square of its area ~0.85, so a shape must at least look like one of the three
KIND_MIN_IOU = 0.75


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


def kind_overlaps(mask: np.ndarray) -> dict[str, float]:
    """IoU of a non-empty mask with each ideal shape of its area, centred on its centroid."""
    rows, cols = np.nonzero(mask)
    x, y, radius = cols.mean() + 0.5, rows.mean() + 0.5, math.sqrt(mask.sum() / math.pi)
    # only the kind and the geometry matter to shape_mask; the other words are placeholders
    ideal = {kind: Scene(Combo(kind, "red", "blue", "center", "small"), x, y, radius) for kind in SHAPES}
    return {kind: iou(mask, shape_mask(scene)) for kind, scene in ideal.items()}


def _shape_kind(mask: np.ndarray) -> str | None:
    overlaps = kind_overlaps(mask)
    best = max(overlaps, key=overlaps.__getitem__)
    return best if overlaps[best] >= KIND_MIN_IOU else None


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


def edge_error(image: Image.Image | np.ndarray, shape: np.ndarray) -> float:
    """Mean absolute difference (0-255, over pixels and channels) between the image's outer BORDER-pixel
    ring and its background colour: the per-channel median of the pixels that are neither in the ring
    nor in `shape` (the shape's mask, dilated by two pixels to leave out its blended edge); of the ring's
    own pixels when the shape leaves none (a shape filling the picture)."""
    pixels = np.asarray(image, dtype=np.float32)[..., :3]
    ring = np.ones(pixels.shape[:2], dtype=bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    inside = ~ring & ~ndimage.binary_dilation(shape, iterations=2)
    background = np.median(pixels[inside if inside.any() else ring], axis=0)
    return float(np.abs(pixels[ring] - background).mean())


def saturation(image: Image.Image | np.ndarray) -> float:
    """Mean HSV saturation (0-1): pastel images score about half of plain ones."""
    pixels = np.asarray(image, dtype=np.float32)[..., :3]
    high, low = pixels.max(axis=-1), pixels.min(axis=-1)
    return float(np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0).mean())
