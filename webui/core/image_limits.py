"""Bounds on every image size the server accepts or derives, checked before any pixel is allocated.

A tiny upload can ask for a huge array: a 64×1 PNG processed at a ControlNet resolution of 2048 is
2048×131072 pixels, an upscale by 1e308 overflows. Each such size goes through `check_size` first, so the
request fails with a 4xx naming the size instead of the server spending gigabytes (or a 500).
"""

from __future__ import annotations

import math

from webui.core.errors import InvalidParameter

# 16384 px per side and 64 megapixels (8192×8192): above any size the models here make or the UI offers
# (2048 per side; 4× upscales of that), far below what would exhaust a workstation's memory.
MAX_SIDE = 16384
MAX_PIXELS = 8192 * 8192


def check_size(width: float, height: float, what: str) -> tuple[int, int]:
    """(width, height) as ints when they are finite, at least 1 and within the bounds; InvalidParameter
    naming `what` (say, "ControlNet processing size") otherwise."""
    if not (math.isfinite(width) and math.isfinite(height)):
        raise InvalidParameter(f"{what} is not a finite size ({width} x {height})")
    w, h = int(width), int(height)
    if w < 1 or h < 1:
        raise InvalidParameter(f"{what} {w}x{h} is empty: each side must be at least 1 pixel")
    if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        raise InvalidParameter(
            f"{what} {w}x{h} is too large: at most {MAX_SIDE} pixels per side and "
            f"{MAX_PIXELS // 1_000_000} megapixels in all"
        )
    return w, h


def scaled_to_short_side(size: tuple[int, int], short_side: float, what: str) -> tuple[int, int]:
    """`size` scaled so its shorter side is `short_side` (how ControlNet modules process), bounded."""
    width, height = size
    if min(width, height) < 1:
        raise InvalidParameter(f"{what}: the image {width}x{height} is empty")
    factor = short_side / min(width, height)
    return check_size(width * factor, height * factor, what)
