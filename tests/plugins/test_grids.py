"""Grid images (webui.services.grids) and infotext extras for grids (infotext.with_extra)."""

from __future__ import annotations

import pytest
from PIL import Image

from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img
from webui.services.grids import image_grid, labelled_grid, titled_row

COLOURS = ["red", "green", "blue", "yellow", "white"]


def cells(count: int, size: tuple[int, int] = (40, 30)) -> list[Image.Image]:
    return [Image.new("RGB", size, colour) for colour in COLOURS[:count]]


def test_image_grid_places_images_row_by_row():
    grid = image_grid(cells(5), cols=2, margin=4)
    assert grid.size == (2 * 40 + 4, 3 * 30 + 2 * 4)
    assert grid.getpixel((10, 10)) == (255, 0, 0) and grid.getpixel((50, 10)) == (0, 128, 0)
    assert grid.getpixel((10, 45)) == (0, 0, 255) and grid.getpixel((10, 80)) == (255, 255, 255)
    assert grid.getpixel((60, 80)) == (255, 255, 255)  # the empty spot stays background


def test_labelled_grid_adds_label_bands_with_text():
    images = cells(4)
    grid = labelled_grid(images, 2, ["Seed: 1", "Seed: 2"], ["Steps: 1", "Steps: 2"])
    top, left = grid.height - 60, grid.width - 80
    assert top > 0 and left > 0
    assert grid.crop((left, top, left + 40, top + 30)).getcolors() == [(1200, (255, 0, 0))]
    band = grid.crop((left, 0, grid.width, top))
    assert len(band.getcolors(10_000)) > 1  # some text was drawn above the cells
    assert labelled_grid(images, 2).size == (80, 60)  # no labels: no bands
    with pytest.raises(InvalidParameter, match="3 column labels for 2 columns"):
        labelled_grid(images, 2, ["a", "b", "c"])


def test_titled_row_puts_grids_side_by_side():
    row = titled_row(
        [image_grid(cells(2), 2), image_grid(cells(1), 1)], ["CFG Scale: 5", "CFG Scale: 7"], margin=6
    )
    assert row.width == 80 + 6 + 40 and row.height > 30


def test_with_extra_adds_fields_before_version():
    text = infotext.build(Txt2Img(prompt="a, b", negative_prompt="c", steps=3), seed=9, version="v1")
    extended = infotext.with_extra(text, {"Script": "X/Y/Z plot", "X Values": "1, 2", "Steps": 4})
    fields = infotext.parse(extended)
    assert (fields["Prompt"], fields["Negative prompt"], fields["Seed"]) == ("a, b", "c", "9")
    assert (fields["Script"], fields["X Values"], fields["Steps"]) == ("X/Y/Z plot", "1, 2", "4")
    assert list(fields)[-1] == "Version"


def test_extension_extra_params_are_written_into_the_infotext():
    params = Txt2Img(prompt="p", extra_generation_params=(("Watermark", "hi, there"), ("Strength", 0.5)))
    fields = infotext.parse(infotext.build(params, seed=1))
    assert (fields["Watermark"], fields["Strength"]) == ("hi, there", "0.5")
