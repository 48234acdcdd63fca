"""The outpainting scripts' shared arguments and margins (webui/core/outpaint.py): A1111's rounding of
the grown picture to multiples of 64, and clear errors for arguments that cannot work."""

from __future__ import annotations

import pytest

from webui.core import outpaint
from webui.core.errors import InvalidParameter

SCRIPT = "Outpainting mk2"


@pytest.mark.parametrize(
    ("size", "amount", "sides", "expected"),
    [
        ((96, 64), 32, ["right"], (0, 32, 0, 0)),  # 128: already a multiple of 64
        ((64, 64), 32, ["right"], (0, 64, 0, 0)),  # 96 rounds up to 128, the rounding goes right
        ((64, 64), 32, ["left", "right"], (32, 32, 0, 0)),
        ((100, 64), 8, ["left", "right"], (14, 14, 0, 0)),  # 116 → 128: 28 split evenly
        ((64, 100), 128, ["up"], (0, 0, 156, 0)),  # 228 → 256
        ((64, 64), 128, list(outpaint.DIRECTIONS), (128, 128, 128, 128)),
    ],
)
def test_margins_round_the_grown_picture_to_64_as_a1111(size, amount, sides, expected):
    margins = outpaint.margins(size, amount, sides)
    assert (margins.left, margins.right, margins.up, margins.down) == expected
    width, height = margins.grown(size)
    assert width % 64 == 0 if margins.left or margins.right else width == size[0]
    assert height % 64 == 0 if margins.up or margins.down else height == size[1]


def test_directions_are_read_in_a1111_order_and_checked():
    assert outpaint.directions(["down", "Left"], SCRIPT) == ("left", "down")
    assert outpaint.directions("right", SCRIPT) == ("right",)
    with pytest.raises(InvalidParameter, match="Outpainting mk2: choose at least one Outpainting direction"):
        outpaint.directions([], SCRIPT)
    with pytest.raises(InvalidParameter, match="unknown Outpainting direction 'sideways'"):
        outpaint.directions(["left", "sideways"], SCRIPT)
    with pytest.raises(InvalidParameter, match="must be a list of sides"):
        outpaint.directions(5, SCRIPT)


def test_pixels_and_numbers_are_checked():
    assert outpaint.pixels(32.0, SCRIPT) == 32
    with pytest.raises(InvalidParameter, match="Pixels to expand must be between 1 and 2048, got 0"):
        outpaint.pixels(0, SCRIPT)
    with pytest.raises(InvalidParameter, match="Pixels to expand must be a number, got 'many'"):
        outpaint.pixels("many", SCRIPT)
    with pytest.raises(InvalidParameter, match="Color variation must be between 0 and 1"):
        outpaint.number(1.5, "Color variation", 0, 1, SCRIPT)


def test_masked_content_by_index_or_name():
    assert outpaint.masked_content(2, SCRIPT) == 2
    assert outpaint.masked_content("latent nothing", SCRIPT) == 3
    for bad in (4, "noise", True, None):
        with pytest.raises(InvalidParameter, match="unknown Masked content"):
            outpaint.masked_content(bad, SCRIPT)
