"""What the two outpainting scripts ("Outpainting mk2", "Poor man's outpainting") share: their arguments
read and checked (a clear InvalidParameter naming the script and the control), and how many pixels each
side of the picture grows by.

A1111's rule for the margins: the grown picture is rounded up to a multiple of 64 on each axis that
grows, and the rounding goes to the chosen sides (split in proportion when both sides of an axis grow).
So 64 px wide grown "right" by 32 becomes 128 wide: right gets 64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from webui.core.errors import InvalidParameter
from webui.core.params import MASKED_CONTENT, MAX_SIDE

DIRECTIONS = ("left", "right", "up", "down")
ROUND_TO = 64  # the grown picture's sides are multiples of this (A1111)


@dataclass(frozen=True)
class Margins:
    """Pixels added on each side."""

    left: int
    right: int
    up: int
    down: int

    def grown(self, size: tuple[int, int]) -> tuple[int, int]:
        return size[0] + self.left + self.right, size[1] + self.up + self.down

    def amount(self, direction: str) -> int:
        return int(getattr(self, direction))


def number(value: object, label: str, minimum: float, maximum: float, script: str) -> float:
    """`value` as a number within [minimum, maximum], or InvalidParameter naming `label`."""
    try:
        result = float(value)  # type: ignore[arg-type]  # anything else is refused just below
    except (TypeError, ValueError):
        raise InvalidParameter(f"{script}: {label} must be a number, got {value!r}") from None
    if not minimum <= result <= maximum:
        raise InvalidParameter(
            f"{script}: {label} must be between {minimum:g} and {maximum:g}, got {value!r}"
        )
    return result


def pixels(value: object, script: str) -> int:
    """ "Pixels to expand": 1 to MAX_SIDE (A1111's slider goes 8 to 256; its API takes any)."""
    return int(number(value, "Pixels to expand", 1, MAX_SIDE, script))


def directions(value: object, script: str) -> tuple[str, ...]:
    """ "Outpainting direction": the chosen sides, in A1111's order; at least one."""
    chosen = [value] if isinstance(value, str) else value
    if not isinstance(chosen, Sequence):
        raise InvalidParameter(f"{script}: Outpainting direction must be a list of sides, got {value!r}")
    names = [str(item).strip().lower() for item in chosen]
    unknown = [name for name in names if name not in DIRECTIONS]
    if unknown:
        raise InvalidParameter(
            f"{script}: unknown Outpainting direction {unknown[0]!r}; valid: {', '.join(DIRECTIONS)}"
        )
    if not names:
        raise InvalidParameter(
            f"{script}: choose at least one Outpainting direction ({', '.join(DIRECTIONS)})"
        )
    return tuple(side for side in DIRECTIONS if side in names)


def masked_content(value: object, script: str) -> int:
    """ "Masked content" as A1111's index (its radio sends the index; a name is accepted too)."""
    if isinstance(value, str) and value.strip().lower() in MASKED_CONTENT:
        return MASKED_CONTENT.index(value.strip().lower())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(MASKED_CONTENT):
        return value
    raise InvalidParameter(
        f"{script}: unknown Masked content {value!r}; valid: {', '.join(MASKED_CONTENT)} (or 0-3)"
    )


def margins(size: tuple[int, int], amount: int, sides: Sequence[str]) -> Margins:
    """The pixels each side of a picture of `size` grows by (the module docstring's rule)."""
    width, height = size
    left, right = _split(width, amount if "left" in sides else 0, amount if "right" in sides else 0)
    up, down = _split(height, amount if "up" in sides else 0, amount if "down" in sides else 0)
    return Margins(left, right, up, down)


def _split(length: int, before: int, after: int) -> tuple[int, int]:
    if before == after == 0:
        return 0, 0
    extra = math.ceil((length + before + after) / ROUND_TO) * ROUND_TO - length
    first = before * extra // (before + after)
    return first, extra - first
