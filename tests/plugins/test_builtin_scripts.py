"""The built-in scripts, written on the plugin API, through the App on the tiny SD1 checkpoint:
X/Y/Z plot, prompt matrix, prompts from file or textbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import make_app, make_data_dir
from tests.plugins.conftest import extension_module
from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img
from webui.services.outputs import read_infotext

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = Txt2Img(prompt="a cat", steps=1, width=64, height=64, sampler_name="Euler", cfg_scale=5, seed=3)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[Any]:
    """Only the built-in extensions."""
    app = make_app(make_data_dir(tmp_path_factory.mktemp("builtin-data"), tiny_sd1_file))
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


def xyz_args(
    x: tuple[str, str], y: tuple[str, str], z: tuple[str, str] = ("Nothing", ""), **options: Any
) -> tuple:
    return (*x, *y, *z, options.get("legend", True), False, options.get("sub_images", True), 0)


def test_xyz_plot_2x2_gives_four_images_and_a_labelled_grid(app):
    params = BASE.replace(script_name="X/Y/Z plot", script_args=xyz_args(("Seed", "1, 2"), ("Steps", "1-2")))
    result = app.generate(params)
    grid, *cells = result.images
    assert len(cells) == 4
    fields = [infotext.parse(text) for text in result.infotexts]
    # row by row: Y (steps) rows, X (seed) columns
    assert [(f["Seed"], f["Steps"]) for f in fields[1:]] == [("1", "1"), ("2", "1"), ("1", "2"), ("2", "2")]
    assert list(result.seeds[1:]) == [1, 2, 1, 2]
    assert all("Script" not in f and f["Prompt"] == "a cat" for f in fields[1:])
    grid_fields = fields[0]
    assert grid_fields["Script"] == "X/Y/Z plot"
    assert (grid_fields["X Type"], grid_fields["X Values"]) == ("Seed", "1, 2")
    assert (grid_fields["Y Type"], grid_fields["Y Values"]) == ("Steps", "1, 2")
    assert (grid_fields["Seed"], grid_fields["Steps"]) == ("1", "1")  # the first cell's parameters
    # labels add a band above and to the left of the 2×2 cells
    assert grid.width > 128 and grid.height > 128
    assert grid.crop((grid.width - 128, grid.height - 128, grid.width, grid.height)).getbbox() is not None
    # every cell is saved as a normal image, the grid under txt2img-grids with its own infotext
    grid_files = sorted(app.paths.outputs_dir.glob("txt2img-grids/*/*.png"))
    assert len(grid_files) == 1 and read_infotext(Image.open(grid_files[0])) == result.infotexts[0]
    assert len([p for p in result.paths if "txt2img-images" in p]) == 4
    for path in result.paths[1:]:
        assert read_infotext(Image.open(path)) in result.infotexts[1:]


def test_xyz_plot_without_sub_images_returns_the_grid_only(app):
    axes = xyz_args(("CFG Scale", "3, 9"), ("Checkpoint name", "tiny-sd1"), legend=False, sub_images=False)
    result = app.generate(BASE.replace(script_name="x/y/z plot", script_args=axes), save_images=False)
    assert len(result.images) == 1 and result.images[0].size == (128, 64)  # no legend: just the cells
    fields = infotext.parse(result.infotexts[0])
    assert (fields["X Type"], fields["Y Type"], fields["Y Values"]) == (
        "CFG Scale",
        "Checkpoint name",
        "tiny-sd1",
    )
    assert fields["Model"] == "tiny-sd1" and not result.paths


def test_xyz_values_are_checked_before_generating(app):
    xyz = extension_module(app, "X/Y/Z plot")
    steps = xyz.find_axis("Steps", False)
    assert xyz.parse_values("1-5 (+2), 8", steps) == [1, 3, 5, 8]
    assert xyz.parse_values("1-2 [3]", xyz.find_axis("CFG Scale", False)) == [1.0, 1.5, 2.0]
    assert xyz.parse_values("0, 0.7", xyz.find_axis("CFG Rescale", False)) == [0.0, 0.7]
    with pytest.raises(InvalidParameter, match="'many' is not a valid Steps value"):
        xyz.parse_values("1, many", steps)
    with pytest.raises(InvalidParameter, match="unknown axis type 'Var. sneed'"):
        xyz.find_axis("Var. sneed", False)
    assert xyz.find_axis("Denoising", False).label == "Denoising"  # txt2img's hires fix has it too
    with pytest.raises(InvalidParameter, match="steps must be between 1 and 150, got 100000"):
        xyz.parse_values("1, 100000", steps)  # the schema's limits, before the first image
    with pytest.raises(InvalidParameter, match="DPM\\+\\+ 9M"):
        app.generate(
            BASE.replace(
                script_name="X/Y/Z plot",
                script_args=xyz_args(("Sampler", "Euler, DPM++ 9M"), ("Nothing", "")),
            )
        )


def test_prompt_matrix_combines_the_parts(app):
    params = BASE.replace(prompt="a cat|in snow|at night", script_name="Prompt matrix")
    result = app.generate(params, save_images=False)
    prompts = [infotext.parse(text)["Prompt"] for text in result.infotexts[1:]]
    assert prompts == ["a cat", "a cat, in snow", "a cat, at night", "a cat, in snow, at night"]
    assert set(result.seeds) == {3}  # the same seed for every picture unless asked otherwise
    assert infotext.parse(result.infotexts[0])["Prompt matrix parts"] == "in snow | at night"
    assert result.images[0].width > 128 and result.images[0].height > 128


def test_prompts_from_textbox_one_generation_a_line(app):
    lines = 'a dog\n\n--prompt "a bird" --negative_prompt "blurry" --seed 9 --steps 2 --cfg_rescale 0.5\n'
    params = BASE.replace(
        prompt="", script_name="Prompts from file or textbox", script_args=(False, False, "start", lines)
    )
    result = app.generate(params, save_images=False)
    fields = [infotext.parse(text) for text in result.infotexts]
    assert [
        (f["Prompt"], f["Negative prompt"], f["Seed"], f["Steps"], f.get("CFG Rescale")) for f in fields
    ] == [
        ("a dog", "", "3", "1", None),
        ("a bird", "blurry", "9", "2", "0.5"),
    ]
    with pytest.raises(InvalidParameter, match="unknown option '--colour'"):
        app.generate(params.replace(script_args=(False, False, "start", "--colour red")))
