"""The Extras tab's request building and its Batch from Directory run (without a browser): the folder rule
of img2img's batch (only inside the data folder when the UI is reachable from other machines), files saved
under their own names in the output folder, unreadable files skipped with a warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import make_app, make_data_dir
from webui.core.errors import InvalidParameter, UserError
from webui.services.extras import ExtrasRequest
from webui.services.upscalers import ExtrasResize
from webui.ui.extras_tab import MODES, Inputs, request_from


def _inputs(**changes: Any) -> Inputs:
    values: dict[str, Any] = {
        "mode": MODES[2], "image": None, "files": None, "input_dir": "", "output_dir": "",
        "show_results": False, "resize_mode": 0, "scale": 2.0, "width": 512, "height": 512, "crop": True,
        "upscaler_1": "Nearest", "upscaler_2": "None", "upscaler_2_visibility": 0.0, "gfpgan_visibility": 0.0,
        "codeformer_visibility": 0.0, "codeformer_weight": 0.0, "upscale_first": False,
    }  # fmt: skip
    values.update(changes)
    return Inputs(**values)


@pytest.fixture
def listening_app(tmp_path: Path) -> Any:
    app = make_app(make_data_dir(tmp_path / "data"), "--listen")
    yield app
    app.jobs.stop()


def test_folders_outside_the_data_dir_are_refused_when_exposed(listening_app: Any, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "a.png")
    with pytest.raises(InvalidParameter, match="outside the data folder"):
        request_from(listening_app, _inputs(input_dir=str(outside)))
    with pytest.raises(UserError, match="Upload an image first"):
        request_from(listening_app, _inputs(mode=MODES[0]))


def test_batch_from_directory_saves_under_the_input_names(listening_app: Any) -> None:
    data = listening_app.paths.data_dir
    source = data / "inputs"
    source.mkdir()
    Image.new("RGB", (8, 16), (200, 10, 10)).save(source / "red.png")
    Image.new("RGB", (16, 8), (10, 10, 200)).save(source / "blue.jpg")
    (source / "notes.txt").write_text("not an image")
    request = request_from(listening_app, _inputs(input_dir="inputs", output_dir="upscaled"))
    assert request.names == ("blue", "notes", "red") and request.save and not request.keep_results
    result = listening_app.extras.process(request)
    assert result.images == ()  # "Show result images" off: nothing sent back
    assert sorted(path.name for path in result.paths) == ["blue.png", "red.png"]
    assert result.warnings == ("notes.txt: not an image",)
    with Image.open(data / "upscaled" / "red.png") as red:
        assert red.size == (16, 32) and red.getpixel((3, 3)) == (200, 10, 10)
        assert red.text["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: Nearest"


def test_numbered_saves_never_overwrite(listening_app: Any) -> None:
    picture = Image.new("RGB", (8, 8), (1, 2, 3))
    request = ExtrasRequest((picture,), ExtrasResize(upscaler_1="Nearest", scale=2), save=True)
    first = listening_app.extras.process(request).paths
    second = listening_app.extras.process(request).paths
    assert [path.name for path in (*first, *second)] == ["00000.png", "00001.png"]
